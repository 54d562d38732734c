r"""Measured plasticity experiments as data: a table of protocols and the weight changes they caused.

A slice experiment imposes a pattern of pre- and postsynaptic spikes, repeats it, and
reports the fractional change of the synaptic weight (mean and SEM over cells). One row of
a protocol table (CSV, ``#`` lines are comments: keep the data's source there) is one such
experiment:

- **the pattern** of one repetition, by any of
  ``pre_ms`` and ``post_ms`` (spike times in ms, ``;``-separated, e.g. ``0;20`` and ``10``:
  a pre-post-pre triplet or a quadruplet), or ``lag_ms`` (or ``dt_ms``) = ``t_post - t_pre``
  (a pairing), or ``protocol`` = ``pre_post_pre`` / ``post_pre_post`` with ``t1_ms`` and
  ``t2_ms`` (Wang et al. 2005's triplets: ``t1 = t_post - t_pre1``, ``t2 = t_post - t_pre2``
  for pre-post-pre, ``t1 = t_post1 - t_pre``, ``t2 = t_post2 - t_pre`` for post-pre-post);
- **the repetitions**: ``freq_hz`` (repetitions per second), ``pairs`` (repetitions per
  train), ``trains`` and ``train_interval_s`` (trains of pairings, one every so many
  seconds); a column left out takes the default of the task or command;
- **the measurement**: ``dw`` (fractional change, 0 = none) or ``dw_percent``, and ``sem``
  or ``sem_percent`` (blank: no SEM, the task's ``default_sem`` weights the row).

The pattern starts at its earliest spike; repetition ``k`` of train ``j`` starts at
``j*train_interval_s + k/freq_hz``. Spike times are rounded to the simulation step.

Built-in data sets (``discover/data/``, each file's header gives its source): ``sjostrom2001``
(rat visual cortex, pairing frequency at +-10 ms), ``bipoo1998`` (hippocampal STDP window,
60 pairings at 1 Hz) and ``wang2005`` (hippocampal triplets, 60 at 1 Hz).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

DATA_DIR = Path(__file__).parent / "data"

#: built-in data sets: name -> (file, protocol defaults the paper states)
BUILTIN = {
    # Sjöström et al. 2001: repetition as Pfister & Gerstner 2006 fitted it (60 pairings at
    # freq_hz, as their public reimplementations); the paper's own (50 single pairings at
    # 0.1 Hz, 15 trains of 5 at >= 10 Hz) is the file header's, run with --set or columns
    "sjostrom2001": ("sjostrom2001_frequency.csv", {"pairs": 60}),
    # Bi & Poo 1998, Fig. 7: 60 pairings at 1 Hz (file header)
    "bipoo1998": ("bipoo1998_window.csv", {"pairs": 60, "freq_hz": 1.0}),
    # Wang et al. 2005: 60 repetitions at 1 Hz (file header)
    "wang2005": ("wang2005_triplets.csv", {"pairs": 60, "freq_hz": 1.0}),
}

REPETITION = ("freq_hz", "pairs", "trains", "train_interval_s")


class ExperimentError(ValueError):
    """A protocol table or protocol that cannot be simulated; the message says what to fix."""


@dataclass(frozen=True)
class Defaults:
    """Repetition of rows whose table leaves it out."""

    freq_hz: float = 1.0
    pairs: int = 60
    trains: int = 1
    train_interval_s: float = 10.0


def _times(v, where) -> tuple[float, ...]:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        if not math.isfinite(v):
            raise ExperimentError(f"{where}: a spike time must be a number, not {v}")
        return (float(v),)
    out = []
    for part in str(v).split(";"):
        part = part.strip()
        if not part:
            continue
        try:
            t = float(part)
        except ValueError:
            raise ExperimentError(f"{where}: {part!r} is not a spike time in ms; write times as 0;10") from None
        if not math.isfinite(t):
            raise ExperimentError(f"{where}: a spike time must be finite, not {part}")
        out.append(t)
    return tuple(out)


def _number(row: pd.Series, col: str, where: str) -> float:
    try:
        v = float(row[col])
    except (TypeError, ValueError):
        raise ExperimentError(f"{where}: {col} = {row[col]!r} is not a number") from None
    if not math.isfinite(v):
        raise ExperimentError(f"{where}: {col} = {row[col]!r} is not a finite number")
    return v


def row_pattern(row: pd.Series, where: str) -> tuple[str, tuple[float, ...], tuple[float, ...]]:
    """``(protocol, pre times, post times)`` of one repetition."""
    has = {k for k in row.index if not (isinstance(row[k], float) and math.isnan(row[k]))}
    kind = str(row["protocol"]) if "protocol" in has else "pairing"
    if {"pre_ms", "post_ms"} <= has:
        return kind, _times(row["pre_ms"], where + " pre_ms"), _times(row["post_ms"], where + " post_ms")
    for col in ("lag_ms", "dt_ms"):
        if col in has:
            return kind, (0.0,), (_number(row, col, where),)
    if kind in ("pre_post_pre", "post_pre_post") and {"t1_ms", "t2_ms"} <= has:
        t1, t2 = _number(row, "t1_ms", where), _number(row, "t2_ms", where)
        if kind == "pre_post_pre":  # post at 0, pre_i at -t_i
            return kind, (-t1, -t2), (0.0,)
        return kind, (0.0,), (t1, t2)  # post_pre_post: pre at 0, post_i at t_i
    raise ExperimentError(f"{where}: no spike pattern; give pre_ms and post_ms (e.g. 0 and 10), lag_ms "
                          "(t_post - t_pre), or protocol = pre_post_pre / post_pre_post with t1_ms and t2_ms")


def read_table(source: str | Path, defaults: Defaults | None = None) -> pd.DataFrame:
    """A protocol table as one row per experiment.

    Args:
      source: a built-in name (:data:`BUILTIN`) or a CSV path.
      defaults: repetition of rows the table leaves it out of (after the built-in data
        set's own, which come from its paper).

    Returns:
      Columns ``dataset, protocol, pre_ms, post_ms`` (tuples), ``freq_hz, pairs, trains,
      train_interval_s, dw, sem`` (NaN where the table gives none), ``label`` (for tables
      and figures) and any other columns of the file (``lag_ms``, ``t1_ms``, ...).
    """
    defaults = defaults or Defaults()
    base = {}
    if str(source) in BUILTIN:
        name = str(source)
        fname, base = BUILTIN[name]
        path = DATA_DIR / fname
    else:
        path = Path(source)
        name = path.stem
        if not path.is_file():
            raise ExperimentError(f"protocol table {str(source)!r} is neither a file nor a built-in data set "
                                  f"({', '.join(BUILTIN)})")
    try:
        df = pd.read_csv(path, comment="#")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ExperimentError(f"{path}: not a readable CSV table ({e}); write one header line and one row per "
                              "experiment (see `discover.experiments`)") from None
    df.columns = [str(c).strip() for c in df.columns]
    if df.empty:
        raise ExperimentError(f"{path}: the table has no rows")
    for pct, col in (("dw_percent", "dw"), ("sem_percent", "sem")):
        if col not in df and pct in df:
            df[col] = pd.to_numeric(df[pct], errors="coerce") / 100.0
    if "dw" not in df:
        raise ExperimentError(f"{path}: no column dw (fractional weight change) or dw_percent; its columns are "
                              f"{', '.join(df.columns)}")
    if "sem" not in df:
        df["sem"] = np.nan
    rows = []
    for i, row in df.iterrows():
        where = f"{path.name} row {i + 1}"
        kind, pre, post = row_pattern(row, where)
        if not pre or not post:
            raise ExperimentError(f"{where}: a protocol needs at least one pre- and one postsynaptic spike")
        rep = {}
        for k in REPETITION:
            v = row[k] if k in row.index else np.nan
            v = base.get(k, getattr(defaults, k)) if pd.isna(v) else _number(row, k, where)
            if k in ("pairs", "trains") and v != int(v):
                raise ExperimentError(f"{where}: {k} = {v:g} must be a whole number")
            rep[k] = int(v) if k in ("pairs", "trains") else float(v)
        dw, sem = pd.to_numeric(row["dw"], errors="coerce"), pd.to_numeric(row["sem"], errors="coerce")
        if not np.isfinite(dw):
            raise ExperimentError(f"{where}: dw = {row['dw']!r} is not a number")
        if np.isfinite(sem) and sem <= 0:
            raise ExperimentError(f"{where}: sem = {sem} must be positive (blank where there is none)")
        rows.append({**{k: row[k] for k in df.columns if k not in ("dw", "sem", "dw_percent", "sem_percent")},
                     "dataset": name, "protocol": kind, "pre_ms": pre, "post_ms": post, **rep,
                     "dw": float(dw), "sem": float(sem), "label": _label(kind, pre, post, rep)})
    out = pd.DataFrame(rows)
    first = ["dataset", "protocol", "label", "pre_ms", "post_ms", *REPETITION, "dw", "sem"]
    return out[first + [c for c in out.columns if c not in first]]


def _label(kind, pre, post, rep) -> str:
    if len(pre) == 1 and len(post) == 1:
        pattern = f"Δt = {post[0] - pre[0]:+g} ms"
    else:
        pattern = f"{kind} pre {';'.join(f'{t:g}' for t in pre)} / post {';'.join(f'{t:g}' for t in post)} ms"
    reps = f"{rep['pairs']} at {rep['freq_hz']:g} Hz"
    if rep["trains"] > 1:
        reps = f"{rep['trains']} trains of {reps}, every {rep['train_interval_s']:g} s"
    return f"{pattern}, {reps}"


def read_tables(sources, defaults: Defaults | None = None) -> pd.DataFrame:
    """Several protocol tables as one (``dataset`` says which row came from where)."""
    return pd.concat([read_table(s, defaults) for s in sources], ignore_index=True)


def spike_steps(pre_ms, post_ms, freq_hz: float, pairs: int, dt: float, trains: int = 1,
                train_interval_s: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """Pre and post spike steps of one protocol (``pairs`` repetitions of the pattern at
    ``freq_hz``, in ``trains`` trains one ``train_interval_s`` apart).

    Raises:
      ExperimentError: where repetitions or trains would overlap, or counts are not positive.
    """
    if pairs < 1 or trains < 1:
        raise ExperimentError(f"pairs = {pairs}, trains = {trains}: a protocol needs at least one of each")
    if not freq_hz > 0:
        raise ExperimentError(f"pairing frequency {freq_hz} Hz must be positive")
    pre, post = np.asarray(pre_ms, np.float64), np.asarray(post_ms, np.float64)
    t0 = min(pre.min(), post.min())
    pre, post = pre - t0, post - t0
    span = max(pre.max(), post.max())
    period = 1000.0 / freq_hz
    if pairs > 1 and span >= period:
        raise ExperimentError(f"the pattern spans {span:g} ms, not shorter than the period {period:g} ms at "
                              f"{freq_hz:g} Hz: repetitions would overlap; use a lower frequency or a shorter lag")
    train_ms = (pairs - 1) * period + span
    if trains > 1 and train_ms >= 1000.0 * train_interval_s:
        raise ExperimentError(f"a train of {pairs} pairings at {freq_hz:g} Hz lasts {train_ms:g} ms, not shorter "
                              f"than train_interval_s = {train_interval_s:g} s: trains would overlap")
    starts = (np.arange(trains)[:, None] * 1000.0 * train_interval_s + np.arange(pairs)[None, :] * period).ravel()
    pre_t = (starts[:, None] + pre[None, :]).ravel()
    post_t = (starts[:, None] + post[None, :]).ravel()
    return np.rint(pre_t / dt).astype(np.int64), np.rint(post_t / dt).astype(np.int64)


def check_grid(times_ms, dt: float, what: str) -> None:
    """Spike times within a pattern must lie on the step grid (lags are compared in steps)."""
    for t in times_ms:
        n = t / dt
        if abs(n - round(n)) > 1e-6 * max(1.0, abs(n)):
            raise ExperimentError(f"{what} = {t:g} ms is not a multiple of the simulation step dt = {dt} ms; "
                                  f"choose it on the grid of dt (e.g. {round(n) * dt:g} ms) or a smaller dt")


def table_spikes(table: pd.DataFrame, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """Spike steps ``[rows, spikes]`` (``-1`` pads) of every row of a protocol table."""
    pres, posts = [], []
    for _, r in table.iterrows():
        check_grid(r["pre_ms"] + r["post_ms"], dt, f"a spike time of {r['label']}")
        p, q = spike_steps(r["pre_ms"], r["post_ms"], r["freq_hz"], int(r["pairs"]), dt, int(r["trains"]),
                           r["train_interval_s"])
        pres.append(p)
        posts.append(q)
    n = max(max(len(p) for p in pres), max(len(q) for q in posts))
    pad = lambda rows: np.stack([np.pad(r, (0, n - len(r)), constant_values=-1) for r in rows]).astype(np.int32)
    return pad(pres), pad(posts)


__all__ = ["read_table", "read_tables", "row_pattern", "spike_steps", "table_spikes", "check_grid", "Defaults",
           "BUILTIN",
           "ExperimentError", "DATA_DIR"]
