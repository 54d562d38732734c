"""Reading a run directory for analysis, and writing into it atomically.

Analysis talks to the earlier stages only through the files of a run directory
(DESIGN.md section 5). This module reads those files, checks them against that contract
and says, when one is missing, which command writes it. It imports neither ``discover``
nor ``distill``.

Two kinds of trouble are kept apart:

* a *missing* optional file (``meta_history.csv``, ``equations.csv``,
  ``verification.csv``, ``trajectories.npz``) is normal for a partial run: the loaders
  return ``None`` and the report carries a note from :func:`missing_note`;
* a *malformed* file (a column missing, a value that is not a number, no selected
  equation) is a bug upstream: it raises :class:`RunDirectoryError` (a ``ValueError``)
  whose message names the file, the problem and the command that regenerates it.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import tomllib
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

CONFIG = "config.toml"
MANIFEST = "manifest.json"
META_HISTORY = "meta_history.csv"
EQUATIONS = "equations.csv"
VERIFICATION = "verification.csv"
COMPARISON = "comparison.csv"
COMPARISON_WINDOWS = "comparison_windows.csv"
COMPARISON_FREQUENCY = "comparison_frequency.csv"
TRAJECTORIES = "trajectories.npz"

# The process umask, read once: files made by mkstemp are 0600, and outputs should get
# the same mode as any file this user writes.
_UMASK = os.umask(0o022)
os.umask(_UMASK)

#: The command that (re)writes each file of a run directory.
PRODUCERS: dict[str, str] = {
    CONFIG: "plasticity discover CONFIG --out DIR",
    MANIFEST: "plasticity discover CONFIG --out DIR",
    META_HISTORY: "plasticity discover CONFIG --out DIR",
    EQUATIONS: "plasticity distill DIR",
    VERIFICATION: "plasticity verify DIR",
    COMPARISON: "plasticity report DIR",
    COMPARISON_WINDOWS: "plasticity report DIR",
    COMPARISON_FREQUENCY: "plasticity report DIR",
    TRAJECTORIES: "plasticity verify DIR",
}

#: Columns analysis needs in each CSV (a subset of the contract where unused ones exist).
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    META_HISTORY: ("step", "meta_loss", "val_loss", "wall_s"),
    EQUATIONS: ("id", "backend", "complexity", "loss", "score", "equation", "latex", "selected"),
    VERIFICATION: (
        "rule",
        "kind",
        "objective_mean",
        "objective_ci_low",
        "objective_ci_high",
        "relative_to_neural",
    ),
    COMPARISON: ("canonical", "term_jaccard", "coef_distance", "behaviour_distance", "closest"),
    COMPARISON_WINDOWS: ("rule", "protocol", "dt_ms", "dw", "dw_normalized"),
    COMPARISON_FREQUENCY: ("rule", "freq_hz", "lag_ms", "dw"),
}

_NUMERIC_COLUMNS: dict[str, tuple[str, ...]] = {
    META_HISTORY: ("step", "meta_loss", "val_loss", "wall_s"),
    EQUATIONS: ("complexity", "loss", "score"),
    VERIFICATION: ("objective_mean", "objective_ci_low", "objective_ci_high", "relative_to_neural"),
    COMPARISON: ("term_jaccard", "coef_distance", "behaviour_distance"),
    COMPARISON_WINDOWS: ("dt_ms", "dw", "dw_normalized"),
    COMPARISON_FREQUENCY: ("freq_hz", "lag_ms", "dw"),
}

_NONEMPTY_COLUMNS: dict[str, tuple[str, ...]] = {
    META_HISTORY: ("step",),
    EQUATIONS: ("id", "complexity"),
    VERIFICATION: ("rule",),
    COMPARISON: ("canonical",),
    COMPARISON_WINDOWS: ("rule",),
    COMPARISON_FREQUENCY: ("rule", "freq_hz", "lag_ms"),
}

#: The kinds of rule a row of ``verification.csv`` may describe.
VERIFICATION_KINDS: tuple[str, ...] = ("neural", "equation", "canonical", "teacher")


class RunDirectoryError(ValueError):
    """A run directory, or one of its files, that analysis cannot use.

    The message names the file, what is wrong with it and the command that rewrites it.
    """


def _regenerate(name: str) -> str:
    return f"regenerate it with `{PRODUCERS[name]}`"


def missing_note(name: str) -> str:
    """A one-line note for the report saying that ``name`` is missing and what writes it.

    Args:
      name: a file name of the run directory, e.g. ``"verification.csv"``.

    Returns:
      Text such as ``"`verification.csv` is missing; `plasticity verify DIR` writes it."``
    """
    return f"`{name}` is missing; `{PRODUCERS[name]}` writes it."


# --------------------------------------------------------------------------- writing


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same directory.

    The temporary file is flushed to disk and renamed over ``path`` with ``os.replace``,
    so a reader sees either the old file or the complete new one, never half of it.

    Args:
      path: destination; its parent directory is created if needed.
      data: the bytes to write.

    Returns:
      ``path`` as a :class:`pathlib.Path`.
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


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; see :func:`atomic_write_bytes`."""
    return atomic_write_bytes(path, text.encode("utf-8"))


# --------------------------------------------------------------------------- reading


def _check_dir(run_dir: str | os.PathLike) -> Path:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirectoryError(
            f"run directory {str(run_dir)!r} does not exist or is not a directory; "
            "pass the folder that `plasticity discover CONFIG --out DIR` wrote"
        )
    return run_dir


def read_config(run_dir: str | os.PathLike) -> tuple[dict[str, Any], str]:
    """Read ``config.toml``, the resolved config the run was made with.

    Args:
      run_dir: the run directory.

    Returns:
      ``(config, text)``: the parsed TOML as nested dicts, and its text verbatim.

    Raises:
      RunDirectoryError: if the file is missing or is not valid TOML.
    """
    path = _check_dir(run_dir) / CONFIG
    if not path.is_file():
        raise RunDirectoryError(
            f"{path}: file is missing, and analysis needs it; {_regenerate(CONFIG)}"
        )
    text = path.read_text(encoding="utf-8")
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as e:
        raise RunDirectoryError(f"{path}: not valid TOML ({e}); {_regenerate(CONFIG)}") from None


def read_manifest(run_dir: str | os.PathLike) -> dict[str, Any]:
    """Read ``manifest.json`` (versions, git commit, seeds, device count, timings).

    Args:
      run_dir: the run directory.

    Returns:
      The manifest as a dict.

    Raises:
      RunDirectoryError: if the file is missing, is not valid JSON or is not an object.
    """
    path = _check_dir(run_dir) / MANIFEST
    if not path.is_file():
        raise RunDirectoryError(
            f"{path}: file is missing, and analysis needs it; {_regenerate(MANIFEST)}"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise RunDirectoryError(f"{path}: not valid JSON ({e}); {_regenerate(MANIFEST)}") from None
    if not isinstance(manifest, dict):
        raise RunDirectoryError(
            f"{path}: expected a JSON object at the top level, got {type(manifest).__name__}; "
            f"{_regenerate(MANIFEST)}"
        )
    return manifest


def _read_csv(run_dir: str | os.PathLike, name: str) -> pd.DataFrame | None:
    path = _check_dir(run_dir) / name
    if not path.is_file():
        return None
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise RunDirectoryError(f"{path}: cannot be read as CSV ({e}); {_regenerate(name)}") from None
    missing = [c for c in REQUIRED_COLUMNS[name] if c not in df.columns]
    if missing:
        raise RunDirectoryError(
            f"{path}: missing column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(c) for c in missing)} (has {', '.join(map(repr, df.columns))}); "
            f"{_regenerate(name)}"
        )
    for col in _NUMERIC_COLUMNS[name]:
        _numeric_column(df, col, path, name)
    for col in _NONEMPTY_COLUMNS[name]:
        empty = df[col].isna()
        if empty.any():
            row = int(empty.to_numpy().nonzero()[0][0])
            raise RunDirectoryError(
                f"{path}: column {col!r} is empty in row {row + 1}; {_regenerate(name)}"
            )
    return df


def read_meta_history(run_dir: str | os.PathLike) -> pd.DataFrame | None:
    """Read ``meta_history.csv`` (``step, meta_loss, val_loss, wall_s``).

    Args:
      run_dir: the run directory.

    Returns:
      The history sorted by step, numeric columns as floats (``val_loss`` is NaN on steps
      without validation), or ``None`` if the file is absent.

    Raises:
      RunDirectoryError: if a column is missing or holds something that is not a number.
    """
    df = _read_csv(run_dir, META_HISTORY)
    if df is None:
        return None
    return df.sort_values("step", kind="stable").reset_index(drop=True)


def _parse_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value)):
        if value in (0, 1):
            return bool(value)
        return None
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    return None


def parse_coefficients(text: Any) -> dict[str, dict[str, float]]:
    """Parse one cell of the ``coefficients`` column of ``equations.csv``.

    The cell is a JSON object mapping a term (``"x*y"``) to either a number or an object
    ``{"value": ..., "ci_low": ..., "ci_high": ...}`` (bootstrap confidence interval).
    After a refit on the task (``[distill] refine_steps``), ``value`` and its interval
    are the refitted ones and the object also holds the regression's ``fit_value``,
    ``fit_ci_low`` and ``fit_ci_high``.

    Args:
      text: the cell; empty or NaN means "no coefficients recorded".

    Returns:
      ``{term: {"value": v, "ci_low": lo, "ci_high": hi}}`` with NaN where a bound is
      absent, plus ``fit_value``, ``fit_ci_low``, ``fit_ci_high`` (NaN where a bound is
      absent) for terms with a non-null ``fit_value``; ``{}`` for an empty cell.

    Raises:
      ValueError: if the cell is not a JSON object of that shape.
    """
    if text is None or (isinstance(text, float) and math.isnan(text)) or str(text).strip() == "":
        return {}
    raw = json.loads(str(text))
    if not isinstance(raw, dict):
        raise ValueError(f"expected a JSON object, got {type(raw).__name__}")
    out: dict[str, dict[str, float]] = {}
    for term, v in raw.items():
        if isinstance(v, Mapping):
            if "value" not in v:
                raise ValueError(f"term {term!r}: object without a 'value' key")
            out[str(term)] = {
                "value": float(v["value"]),
                "ci_low": float(v["ci_low"]) if v.get("ci_low") is not None else math.nan,
                "ci_high": float(v["ci_high"]) if v.get("ci_high") is not None else math.nan,
            }
            if v.get("fit_value") is not None:
                out[str(term)].update({
                    "fit_value": float(v["fit_value"]),
                    "fit_ci_low": float(v["fit_ci_low"]) if v.get("fit_ci_low") is not None else math.nan,
                    "fit_ci_high": float(v["fit_ci_high"]) if v.get("fit_ci_high") is not None else math.nan,
                })
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[str(term)] = {"value": float(v), "ci_low": math.nan, "ci_high": math.nan}
        else:
            raise ValueError(f"term {term!r}: expected a number or an object, got {v!r}")
    return out


def _numeric_column(df: pd.DataFrame, col: str, path: Path, name: str) -> None:
    """Parse ``df[col]`` as floats in place (empty cells -> NaN), or raise naming the row."""
    values = pd.to_numeric(df[col], errors="coerce")
    bad = values.isna() & df[col].notna()
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise RunDirectoryError(
            f"{path}: column {col!r} must hold numbers, but row {row + 1} holds "
            f"{df[col].iloc[row]!r}; {_regenerate(name)}"
        )
    df[col] = values.astype(float)


def _bool_column(df: pd.DataFrame, col: str, path: Path, name: str) -> None:
    """Parse ``df[col]`` as booleans in place, or raise naming the row and the fix."""
    values = []
    for i, v in enumerate(df[col]):
        b = _parse_bool(v)
        if b is None:
            raise RunDirectoryError(
                f"{path}: column '{col}' must hold True or False, but row {i + 1} holds "
                f"{v!r}; {_regenerate(name)}"
            )
        values.append(b)
    df[col] = pd.Series(values, index=df.index, dtype=bool)


def read_equations(run_dir: str | os.PathLike) -> pd.DataFrame | None:
    """Read ``equations.csv``, the Pareto front of distilled equations.

    Columns follow PySR's ``equations_`` table where they overlap: ``id, backend,
    complexity, loss, score, equation, sympy, latex, coefficients, selected``.

    Args:
      run_dir: the run directory.

    Returns:
      The front with ``selected`` as booleans and, when a ``coefficients`` column exists,
      a column ``coefficients_parsed`` (see :func:`parse_coefficients`); ``None`` if the
      file is absent.

    Raises:
      RunDirectoryError: if a column is missing, a number or boolean is malformed, the
        coefficients are not valid JSON, or not exactly one row is selected.
    """
    df = _read_csv(run_dir, EQUATIONS)
    if df is None:
        return None
    path = Path(run_dir) / EQUATIONS
    _bool_column(df, "selected", path, EQUATIONS)
    if int(df["selected"].sum()) != 1:
        raise RunDirectoryError(
            f"{path}: column 'selected' must be True on exactly one row, found "
            f"{int(df['selected'].sum())}; {_regenerate(EQUATIONS)}"
        )
    for col in ("equation", "latex", "backend"):  # an all-empty column is read as float NaN
        df[col] = df[col].astype(object).where(df[col].notna(), "").astype(str)
    if "coefficients" in df.columns:
        parsed = []
        for i, cell in enumerate(df["coefficients"]):
            try:
                parsed.append(parse_coefficients(cell))
            except (ValueError, TypeError) as e:
                raise RunDirectoryError(
                    f"{path}: column 'coefficients', row {i + 1}: {e}; {_regenerate(EQUATIONS)}"
                ) from None
        df["coefficients_parsed"] = parsed
    return df


def read_verification(run_dir: str | os.PathLike) -> pd.DataFrame | None:
    """Read ``verification.csv``: each rule's meta-objective on held-out episodes.

    Columns: ``rule, kind, equation, objective_mean, objective_ci_low,
    objective_ci_high, relative_to_neural`` (``equation`` optional here); the objective is
    higher-is-better and ``relative_to_neural`` is the mean over the neural rule's.

    Args:
      run_dir: the run directory.

    Returns:
      The table in file order, or ``None`` if the file is absent.

    Raises:
      RunDirectoryError: if a column is missing, a number is malformed or a ``kind`` is
        not one of :data:`VERIFICATION_KINDS`.
    """
    df = _read_csv(run_dir, VERIFICATION)
    if df is None:
        return None
    path = Path(run_dir) / VERIFICATION
    df["rule"] = df["rule"].fillna("").astype(str)
    df["kind"] = df["kind"].fillna("").astype(str).str.strip()
    bad = ~df["kind"].isin(VERIFICATION_KINDS)
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise RunDirectoryError(
            f"{path}: column 'kind', row {row + 1} holds {df['kind'].iloc[row]!r}; "
            f"use one of {', '.join(VERIFICATION_KINDS)}; {_regenerate(VERIFICATION)}"
        )
    if "equation" in df.columns:
        df["equation"] = df["equation"].astype(object).where(df["equation"].notna(), "").astype(str)
    return df


_COMPARISON_TEXT = ("canonical", "network", "canonical_equation", "canonical_latex", "equation", "equation_latex",
                    "shared_terms", "missing_terms", "extra_terms", "coefficients_equation",
                    "coefficients_canonical", "behaviour", "behaviour_note")

#: Numeric columns of ``comparison.csv`` that older files may lack (checked when present).
_COMPARISON_OPTIONAL_NUMERIC = ("frequency_distance",)


def read_comparison(run_dir: str | os.PathLike) -> pd.DataFrame | None:
    """Read ``comparison.csv``: the selected equation against each canonical rule.

    Written by :func:`analysis.compare.run` (``plasticity report DIR``); columns in
    :data:`analysis.compare.COLUMNS` (``canonical, term_jaccard, coef_distance,
    behaviour_distance, closest`` required; ``frequency_distance``, when present,
    must hold numbers).

    Args:
      run_dir: the run directory.

    Returns:
      The table with ``closest`` as booleans and text columns as strings (empty where
      absent), or ``None`` if the file is absent.

    Raises:
      RunDirectoryError: if a column is missing, a number or boolean is malformed.
    """
    df = _read_csv(run_dir, COMPARISON)
    if df is None:
        return None
    path = Path(run_dir) / COMPARISON
    _bool_column(df, "closest", path, COMPARISON)
    for col in _COMPARISON_OPTIONAL_NUMERIC:
        if col in df.columns:
            _numeric_column(df, col, path, COMPARISON)
    for col in _COMPARISON_TEXT:
        if col in df.columns:  # an all-empty column is read as float NaN
            df[col] = df[col].astype(object).where(df[col].notna(), "").astype(str)
    if "equation_id" in df.columns:
        df["equation_id"] = df["equation_id"].map(_id_text)
    return df


def _id_text(v: Any) -> str:
    if isinstance(v, float):
        return "" if math.isnan(v) else (str(int(v)) if v.is_integer() else str(v))
    return str(v)


def read_comparison_windows(run_dir: str | os.PathLike) -> pd.DataFrame | None:
    """Read ``comparison_windows.csv`` (``rule, protocol, dt_ms, dw, dw_normalized``), or ``None``."""
    df = _read_csv(run_dir, COMPARISON_WINDOWS)
    if df is not None:
        df["rule"] = df["rule"].astype(str)
        df["protocol"] = df["protocol"].fillna("").astype(str)
    return df


def read_comparison_frequency(run_dir: str | os.PathLike) -> pd.DataFrame | None:
    """Read ``comparison_frequency.csv`` (``rule, freq_hz, lag_ms, dw``), or ``None``.

    Written by :func:`analysis.compare.run` for spiking rules: ``dw`` after repeated
    pre/post pairings at each pairing frequency (Hz) and lag ``t_post - t_pre`` (ms), for
    the selected equation (``rule == "equation"``), the neural rule (``"neural"``), the
    teacher (``"teacher"``) and each canonical rule (its name).
    """
    df = _read_csv(run_dir, COMPARISON_FREQUENCY)
    if df is not None:
        df["rule"] = df["rule"].astype(str)
    return df


#: Arrays every ``trajectories.npz`` holds; optional ones are ``W_selected``,
#: ``W_teacher``, ``pc1``, ``time_unit``, ``selected_id``, ``selected_equation``.
TRAJECTORY_ARRAYS: tuple[str, ...] = ("t", "W0", "W_neural", "synapses")


def read_trajectories(run_dir: str | os.PathLike) -> dict[str, np.ndarray] | None:
    """Read ``trajectories.npz``: weights of a few synapses over one held-out episode.

    Written by ``plasticity verify DIR`` (:func:`distill.verify.write_trajectories`):
    ``t [R]`` (time of each record), ``time_unit`` (``"steps"`` or ``"ms"``),
    ``synapses [S, 2]`` (``(post, pre)``), ``W0 [S]``, ``W_neural [R, S]`` and, when
    present, ``W_selected [R, S]`` (the selected equation), ``W_teacher [R, S]``
    (``imitate``) and ``pc1 [pre]`` (``oja_pca``). Needs numpy only.

    Args:
      run_dir: the run directory.

    Returns:
      ``{name: array}`` (0-d string arrays as ``str``; ``time_unit`` defaults to
      ``"steps"``), or ``None`` if the file is absent.

    Raises:
      RunDirectoryError: if the file is not a readable ``.npz``, an array is missing or
        the shapes disagree.
    """
    path = _check_dir(run_dir) / TRAJECTORIES
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise RunDirectoryError(f"{path}: cannot be read as .npz ({e}); {_regenerate(TRAJECTORIES)}") from None
    missing = [k for k in TRAJECTORY_ARRAYS if k not in data]
    if missing:
        raise RunDirectoryError(
            f"{path}: missing array{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))} "
            f"(has {', '.join(map(repr, sorted(data)))}); {_regenerate(TRAJECTORIES)}"
        )
    out: dict[str, Any] = {}
    for k, v in data.items():
        out[k] = str(v) if v.dtype.kind == "U" and v.ndim == 0 else v
    out.setdefault("time_unit", "steps")
    n_rec, n_syn = len(out["t"]), len(out["W0"])
    for k in ("W_neural", "W_selected", "W_teacher"):
        if k in out and out[k].shape != (n_rec, n_syn):
            raise RunDirectoryError(
                f"{path}: array {k!r} has shape {out[k].shape}, expected (len(t), len(W0)) = "
                f"{(n_rec, n_syn)}; {_regenerate(TRAJECTORIES)}"
            )
    if out["synapses"].shape != (n_syn, 2):
        raise RunDirectoryError(
            f"{path}: array 'synapses' has shape {out['synapses'].shape}, expected {(n_syn, 2)}; "
            f"{_regenerate(TRAJECTORIES)}"
        )
    return out


def missing_inputs(
    run_dir: str | os.PathLike,
    names: Sequence[str] = (META_HISTORY, EQUATIONS, VERIFICATION),
) -> list[str]:
    """Names among ``names`` that are absent from ``run_dir``."""
    run_dir = Path(run_dir)
    return [n for n in names if not (run_dir / n).is_file()]


def read_all(run_dir: str | os.PathLike) -> dict[str, Any]:
    """Read and check every input analysis uses, so errors surface before any write.

    Args:
      run_dir: the run directory.

    Returns:
      ``{"config": dict, "config_text": str, "manifest": dict, "meta_history": df | None,
      "equations": df | None, "verification": df | None, "trajectories": dict | None}``.

    Raises:
      RunDirectoryError: as the individual readers do.
    """
    config, text = read_config(run_dir)
    return {
        "config": config,
        "config_text": text,
        "manifest": read_manifest(run_dir),
        "meta_history": read_meta_history(run_dir),
        "equations": read_equations(run_dir),
        "verification": read_verification(run_dir),
        "trajectories": read_trajectories(run_dir),
    }
