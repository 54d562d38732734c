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
import zipfile
from pathlib import Path

import jax
import numpy as np


class RunDirError(ValueError):
    """A run directory that lacks what a stage needs; the message says which command makes it."""


_UMASK = os.umask(0o022)
os.umask(_UMASK)


def check_out_dir(path: str | Path, flag: str = "--out") -> Path:
    """``path`` as a folder that can be written: it is one, or can be made; checked before
    any work, so that a run does not fail at its first write."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RunDirError(f"{flag} {path} is a file, not a folder; pass a folder for the run directory")
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise RunDirError(f"{flag} {path}: {probe} is a file, so no folder can be made under it; pass another path")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise RunDirError(f"{flag} {path}: {probe} is not writable by this user; pass a folder you can write")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunDirError(f"{flag} {path}: cannot make this folder ({e.strerror}); pass a folder you can "
                          "write") from None
    return path


def check_out_file(path: str | Path, flag: str = "--out") -> Path:
    """``path`` as a file that can be written (its folder is checked as :func:`check_out_dir`)."""
    path = Path(path)
    if path.is_dir():
        raise RunDirError(f"{flag} {path} is a folder; pass a file name")
    check_out_dir(path.parent, flag=f"{flag} {path}:")
    return path


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


# -- reading: every file of a run directory goes through these; damage is a RunDirError ----
# the command that writes each file (so that a message says how to regenerate it)
PRODUCERS = {
    "config.toml": "plasticity discover CONFIG --out DIR",
    "manifest.json": "plasticity discover CONFIG --out DIR",
    "meta_history.csv": "plasticity discover CONFIG --out DIR",
    "rule.json": "plasticity discover CONFIG --out DIR",
    "params.npz": "plasticity discover CONFIG --out DIR",
    "samples.npz": "plasticity distill DIR",
    "equations.csv": "plasticity distill DIR",
    "verification.csv": "plasticity verify DIR",
}
CHECKPOINT_FILES = ("state.json", "params.npz", "opt_state.npz", "best_params.npz")


def regenerate_hint(path: str | Path) -> str:
    """What rewrites ``path``: its producer's command, with the run directory filled in."""
    path = Path(path)
    if path.parent.name == "checkpoint":
        return (f"delete {path.parent} to meta-train afresh (or pass a new --out); "
                "`plasticity discover CONFIG --out DIR` rewrites it")
    run_dir = path.parent.parent if path.parent.name == "rule" else path.parent
    cmd = PRODUCERS.get(path.name, "plasticity run CONFIG --out DIR")
    return f"regenerate it with `{cmd.replace('DIR', str(run_dir))}`"


def damaged(path: str | Path, what: str) -> RunDirError:
    """The error for a run-directory file that exists but cannot be used."""
    return RunDirError(f"{path} is damaged ({what}); {regenerate_hint(path)}")


def missing(path: str | Path, needed_by: str = "this command") -> RunDirError:
    return RunDirError(f"{path} is missing, and {needed_by} needs it; {regenerate_hint(path)}")


def _short(e: Exception) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) < 160 else text[:157] + "..."


def read_text(path: str | Path) -> str:
    path = Path(path)
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise damaged(path, f"not UTF-8 text: byte 0x{e.object[e.start]:02x} at offset {e.start}") from None
    except IsADirectoryError:
        raise damaged(path, "a folder where a file should be") from None
    except OSError as e:
        raise damaged(path, e.strerror or _short(e)) from None


def read_json(path: str | Path, kind: type = dict):
    """``path`` as JSON whose top level is a ``kind``."""
    try:
        obj = json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise damaged(path, f"not valid JSON: {e}") from None
    if not isinstance(obj, kind):
        raise damaged(path, f"its top level must be a JSON {'object' if kind is dict else kind.__name__}, "
                      f"not {type(obj).__name__}")
    return obj


def read_csv(path: str | Path, columns: tuple[str, ...] = ()):
    """``path`` as a pandas DataFrame with (at least) ``columns``."""
    import pandas as pd

    text = read_text(path)
    if not text.strip():
        raise damaged(path, "it is empty")
    try:
        df = pd.read_csv(io.StringIO(text))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as e:
        raise damaged(path, f"not a CSV table: {_short(e)}") from None
    lost = [c for c in columns if c not in df.columns]
    if lost:
        raise damaged(path, f"no column {', '.join(map(repr, lost))}")
    return df


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of ``path`` (a NumPy ``.npz``; nothing is unpickled)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise missing(path) from None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
        raise damaged(path, f"not a NumPy .npz archive: {_short(e)}") from None


def load_pytree(path: str | Path, template):
    """Load arrays saved by :func:`save_pytree` into the structure of ``template``."""
    path = Path(path)
    data = read_npz(path)
    leaves, treedef = jax.tree_util.tree_flatten_with_path(template)
    out = []
    for k, v in leaves:
        name = jax.tree_util.keystr(k)
        if name not in data:
            hint = regenerate_hint(path)
            raise RunDirError(f"{path} has no array {name}; it was written for a different rule. "
                              f"{hint[:1].upper()}{hint[1:]} with the config that made it, or use a new --out")
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


def reproducibility() -> dict:
    """What a result's last bits depend on besides the seed: the processor (XLA compiles
    for its instruction set), XLA's flags, jaxlib, NumPy and the device count. Two runs
    that agree on all of these and on the seed agree bit for bit."""
    from importlib.metadata import PackageNotFoundError, version

    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        jaxlib = version("jaxlib")
    except PackageNotFoundError:
        jaxlib = None
    return {"machine": platform.machine(), "processor": model or platform.processor() or "unknown",
            "xla_flags": os.environ.get("XLA_FLAGS", ""), "jaxlib_version": jaxlib, "numpy_version": np.__version__,
            "device_count": jax.device_count(), "devices": sorted({d.device_kind for d in jax.devices()})}


def read_manifest(run_dir: str | Path) -> dict:
    """``manifest.json`` as a dict (``{}`` when absent); a damaged one is a :class:`RunDirError`."""
    path = Path(run_dir) / "manifest.json"
    if not path.exists():
        return {}
    return read_json(path)


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
            # what decides bit-identity across machines (README, "Reproducibility")
            "reproducibility": reproducibility(),
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
    A network with one rule per synapse type has one pick per type
    (:func:`selected_ids`); this is the first type's.
    """
    ids = selected_ids(run_dir)
    return ids[0] if ids else None


def selected_ids(run_dir: str | Path) -> list[str]:
    """Ids of the run's selected equations: one, or one per synapse type (in file order)."""
    run_dir = Path(run_dir)
    ver = run_dir / "verification.csv"
    if ver.is_file():
        df = read_csv(ver)
        if "selected" in df.columns:
            rules = [str(r) for r in df.loc[df["selected"].map(_truthy), "rule"]]
            ids = [r[2:] for r in rules if r.startswith("eq")]
            if ids:
                return ids
    eqs = run_dir / "equations.csv"
    if eqs.is_file():
        df = read_csv(eqs)
        if "selected" in df.columns:
            return [str(i) for i in df.loc[df["selected"].map(_truthy), "id"]]
    return []


def row_timescales(row) -> dict[str, float]:
    """``{"tau_pre": 20.0, ...}`` from an ``equations.csv`` row's ``timescales`` (JSON; empty
    where the column is absent, as in runs distilled before it existed, or blank)."""
    text = row.get("timescales")
    if not isinstance(text, str) or not text.strip():
        return {}
    try:
        out = json.loads(text)
    except ValueError:
        return {}
    return {str(k): float(v) for k, v in out.items()} if isinstance(out, dict) else {}


def selected_equation(run_dir: str | Path, equations=None):
    """The row of ``equations.csv`` (a pandas Series) of the selected equation, or ``None``.

    ``equations``: the table already read (e.g. validated by :mod:`analysis.rundir`);
    default: ``run_dir/equations.csv``.
    """

    eid = selected_id(run_dir)
    if eid is None:
        return None
    if equations is None:
        path = Path(run_dir) / "equations.csv"
        if not path.is_file():
            return None
        equations = read_csv(path)
    rows = equations[equations["id"].astype(str) == eid]
    return rows.iloc[0] if len(rows) else None
