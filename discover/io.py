"""Run-directory I/O: atomic writes, pytree files, the manifest.

Every file is written to a temporary name in its own directory and renamed into place,
so an interrupted run never leaves a half-written file behind (DESIGN.md section 5).
"""

from __future__ import annotations

import io
import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path

import jax
import numpy as np


class RunDirError(ValueError):
    """A run directory that lacks what a stage needs; the message says which command makes it."""


_UMASK = os.umask(0o022)
os.umask(_UMASK)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same directory.

    The temporary file is flushed to disk and renamed over ``path`` with ``os.replace``,
    so a reader sees either the old file or the complete new one, never half of it; it
    gets the permissions of a plainly created file (the process umask).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; see :func:`atomic_write_bytes`."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_csv(path: str | Path, df) -> Path:
    return atomic_write_text(path, df.to_csv(index=False))


def write_json(path: str | Path, obj) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=1, default=_json_default) + "\n")


def _json_default(o):
    if isinstance(o, (np.generic,)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def save_pytree(path: str | Path, tree) -> Path:
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    arrays = {jax.tree_util.keystr(k): np.asarray(v) for k, v in leaves}
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def load_pytree(path: str | Path, template):
    """Load arrays saved by :func:`save_pytree` into the structure of ``template``."""
    path = Path(path)
    with np.load(path) as data:
        leaves, treedef = jax.tree_util.tree_flatten_with_path(template)
        out = []
        for k, v in leaves:
            name = jax.tree_util.keystr(k)
            if name not in data:
                raise RunDirError(f"{path} has no array {name}; it was written for a different rule. "
                                  "Delete it or rerun `plasticity discover` with the config that made it.")
            arr = data[name]
            if arr.shape != np.shape(v):
                raise RunDirError(f"{path}: {name} has shape {arr.shape}, the rule expects {np.shape(v)}; "
                                  "the config changed since this file was written. Use a new --out directory.")
            out.append(jax.numpy.asarray(arr, dtype=getattr(v, "dtype", None)))
    return jax.tree_util.tree_unflatten(treedef, out)


def git_commit() -> str:
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except Exception:
        return "unknown"


def read_manifest(run_dir: str | Path) -> dict:
    """``manifest.json`` as a dict (``{}`` when absent); a damaged one is a :class:`RunDirError`."""
    path = Path(run_dir) / "manifest.json"
    if not path.exists():
        return {}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunDirError(f"{path} is not valid JSON ({e}); rerun `plasticity discover` into a new --out") from None
    if not isinstance(manifest, dict):
        raise RunDirError(f"{path} must hold a JSON object; rerun `plasticity discover` into a new --out")
    return manifest


def update_manifest(run_dir: str | Path, **fields) -> dict:
    """Merge ``fields`` into ``manifest.json`` (``timings_s`` merged key by key)."""
    path = Path(run_dir) / "manifest.json"
    manifest = read_manifest(run_dir)
    if not manifest:
        from importlib.metadata import PackageNotFoundError, version

        def ver(name):
            try:
                return version(name)
            except PackageNotFoundError:
                return None

        manifest = {
            "package_version": ver("plasticity-discovery"),
            "git_commit": git_commit(),
            "python": platform.python_version(),
            "jax_version": jax.__version__,
            "optax_version": ver("optax"),
            "sympy_version": ver("sympy"),
            "device_count": jax.device_count(),
            "platform": jax.default_backend(),
            "timings_s": {},
        }
    timings = fields.pop("timings_s", None)
    manifest.update(fields)
    if timings:
        manifest.setdefault("timings_s", {}).update(timings)
    write_json(path, manifest)
    return manifest


# -- the selected equation -----------------------------------------------------------------
def _truthy(v) -> bool:
    return str(v).strip().lower() in ("true", "1", "1.0")


def selected_id(run_dir: str | Path) -> str | None:
    """Id of the run's selected equation, or ``None`` when nothing is selected yet.

    Distill marks its pick in ``equations.csv`` (``selected``); under the ``verified``
    policy verification picks instead and marks the row ``eq<id>`` of ``verification.csv``
    (its own ``selected`` column), so each file has one producer. The verified pick wins.
    """
    import pandas as pd

    run_dir = Path(run_dir)
    ver = run_dir / "verification.csv"
    if ver.is_file():
        df = pd.read_csv(ver)
        if "selected" in df.columns:
            rows = df[df["selected"].map(_truthy)]
            if len(rows) and str(rows["rule"].iloc[0]).startswith("eq"):
                return str(rows["rule"].iloc[0])[2:]
    eqs = run_dir / "equations.csv"
    if eqs.is_file():
        df = pd.read_csv(eqs)
        if "selected" in df.columns:
            rows = df[df["selected"].map(_truthy)]
            if len(rows):
                return str(rows["id"].iloc[0])
    return None


def selected_equation(run_dir: str | Path, equations=None):
    """The row of ``equations.csv`` (a pandas Series) of the selected equation, or ``None``.

    ``equations``: the table already read (e.g. validated by :mod:`analysis.rundir`);
    default: ``run_dir/equations.csv``.
    """
    import pandas as pd

    eid = selected_id(run_dir)
    if eid is None:
        return None
    if equations is None:
        path = Path(run_dir) / "equations.csv"
        if not path.is_file():
            return None
        equations = pd.read_csv(path)
    rows = equations[equations["id"].astype(str) == eid]
    return rows.iloc[0] if len(rows) else None
