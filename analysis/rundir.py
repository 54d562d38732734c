"""Reading a run directory for analysis: the validating reader of its files.

Analysis talks to the earlier stages only through the files of a run directory
(DESIGN.md section 5). This module reads those files, checks them against that contract
(:mod:`analysis.contract`) and says, when one is missing, which command writes it. It
imports ``discover`` only to raise its error and to ask which equation is selected.

Two kinds of trouble are kept apart:

* a *missing* optional file (``meta_history.csv``, ``equations.csv``,
  ``verification.csv``, ``trajectories.npz``) is normal for a partial run: the loaders
  return ``None`` and the report carries a note from :func:`missing_note`; ``fit.csv``
  and ``data_fit.csv`` exist only for tasks fitted to measured data (``fit_protocols``),
  ``behaviour.csv`` and ``classification.csv`` only for tasks that write them
  (``classification.csv``: ``few_shot``), so their absence is no note at all;
* a *malformed* file (a column missing, a value that is not a number, no selected
  equation) is a bug upstream: it raises :class:`discover.io.RunDirError` (a
  ``ValueError``) whose message names the file, the problem and the command that
  regenerates it.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .cells import bool_column, id_text, numeric_column, parse_coefficients, text_column
from .contract import (
    BEHAVIOUR,
    CLASSIFICATION,
    CLASSIFICATION_OPTIONAL_NUMERIC,
    COMPARISON,
    COMPARISON_FREQUENCY,
    COMPARISON_WINDOWS,
    CONFIG,
    DATA_FIT,
    EQUATIONS,
    FIT,
    FIT_KINDS,
    MANIFEST,
    META_HISTORY,
    NONEMPTY_COLUMNS,
    NUMERIC_COLUMNS,
    PRODUCERS,
    REQUIRED_COLUMNS,
    TRAJECTORIES,
    TRAJECTORY_ARRAYS,
    VERIFICATION,
    VERIFICATION_KINDS,
    check_dir,
    missing_note,
    regenerate,
    run_dir_error,
)
from .trajectories import read_trajectories


def read_text(path):
    from discover.io import read_text

    return read_text(path)


def read_json(path):
    from discover.io import read_json

    return read_json(path)


def read_csv(path):
    from discover.io import read_csv

    return read_csv(path)

# --------------------------------------------------------------------------- reading


def read_config(run_dir: str | os.PathLike) -> tuple[dict[str, Any], str]:
    """Read ``config.toml``, the resolved config the run was made with.

    Args:
      run_dir: the run directory.

    Returns:
      ``(config, text)``: the parsed TOML as nested dicts, and its text verbatim.

    Raises:
      RunDirError: if the file is missing or is not valid TOML.
    """
    path = check_dir(run_dir) / CONFIG
    if not path.is_file():
        raise run_dir_error(
            f"{path.parent} is not a run directory (it has no {CONFIG}); pass a folder that "
            f"`{PRODUCERS[CONFIG]}` wrote"
        )
    text = read_text(path)
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as e:
        raise run_dir_error(f"{path}: not valid TOML ({e}); {regenerate(CONFIG)}") from None


def read_manifest(run_dir: str | os.PathLike) -> dict[str, Any]:
    """Read ``manifest.json`` (versions, git commit, seeds, device count, timings).

    Args:
      run_dir: the run directory.

    Returns:
      The manifest as a dict.

    Raises:
      RunDirError: if the file is missing, is not valid JSON or is not an object.
    """
    path = check_dir(run_dir) / MANIFEST
    if not path.is_file():
        raise run_dir_error(
            f"{path}: file is missing, and analysis needs it; {regenerate(MANIFEST)}"
        )
    return read_json(path)


def _read_csv(run_dir: str | os.PathLike, name: str) -> pd.DataFrame | None:
    path = check_dir(run_dir) / name
    if not path.is_file():
        return None
    df = read_csv(path)
    missing = [c for c in REQUIRED_COLUMNS[name] if c not in df.columns]
    if missing:
        raise run_dir_error(
            f"{path}: missing column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(c) for c in missing)} (has {', '.join(map(repr, df.columns))}); "
            f"{regenerate(name)}"
        )
    for col in NUMERIC_COLUMNS[name]:
        numeric_column(df, col, path, name)
    for col in NONEMPTY_COLUMNS[name]:
        empty = df[col].isna()
        if empty.any():
            row = int(empty.to_numpy().nonzero()[0][0])
            raise run_dir_error(
                f"{path}: column {col!r} is empty in row {row + 1}; {regenerate(name)}"
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
      RunDirError: if a column is missing or holds something that is not a number.
    """
    df = _read_csv(run_dir, META_HISTORY)
    if df is None:
        return None
    return df.sort_values("step", kind="stable").reset_index(drop=True)


def read_equations(run_dir: str | os.PathLike) -> pd.DataFrame | None:
    """Read ``equations.csv``, the Pareto front of distilled equations.

    Columns follow PySR's ``equations_`` table where they overlap: ``id, backend,
    complexity, loss, score, equation, sympy, latex, coefficients, selected``.

    Args:
      run_dir: the run directory.

    Returns:
      The front with ``selected`` as booleans, True on the run's selected equation
      (:func:`discover.io.selected_equation`; under the ``verified`` policy
      ``verification.csv`` picks it) and, when a ``coefficients`` column exists,
      a column ``coefficients_parsed`` (see :func:`parse_coefficients`); ``None`` if the
      file is absent.

    Raises:
      RunDirError: if a column is missing, a number or boolean is malformed, the
        coefficients are not valid JSON, not exactly one row is selected, or
        ``verification.csv`` selects an equation the front does not have.
    """
    df = _read_csv(run_dir, EQUATIONS)
    if df is None:
        return None
    path = Path(run_dir) / EQUATIONS
    bool_column(df, "selected", path, EQUATIONS)
    if "synapse" in df.columns:  # one rule per synapse type: one pick per type
        text_column(df, "synapse")
        counts = df.groupby("synapse", sort=False)["selected"].sum()
        bad = counts[counts != 1]
        if len(bad):
            raise run_dir_error(
                f"{path}: column 'selected' must be True on exactly one row of each synapse type, found "
                f"{int(bad.iloc[0])} for {bad.index[0]!r}; {regenerate(EQUATIONS)}")
    elif int(df["selected"].sum()) != 1:
        raise run_dir_error(
            f"{path}: column 'selected' must be True on exactly one row, found "
            f"{int(df['selected'].sum())}; {regenerate(EQUATIONS)}"
        )
    for col in ("equation", "latex", "backend"):
        text_column(df, col)
    if "coefficients" in df.columns:
        parsed = []
        for i, cell in enumerate(df["coefficients"]):
            try:
                parsed.append(parse_coefficients(cell))
            except (ValueError, TypeError) as e:
                raise run_dir_error(
                    f"{path}: column 'coefficients', row {i + 1}: {e}; {regenerate(EQUATIONS)}"
                ) from None
        df["coefficients_parsed"] = parsed
    row = _selected_equation(run_dir, df)
    if "synapse" in df.columns:  # every type's pick: verification's under the `verified` policy
        from discover.io import selected_ids

        ids = set(selected_ids(run_dir))
        df["selected"] = df["id"].astype(str).isin(ids)
    else:
        df["selected"] = df.index == row.name  # the run's pick: verification's under the `verified` policy
    return df


def _selected_equation(run_dir: str | os.PathLike, equations: pd.DataFrame) -> pd.Series:
    from discover.io import selected_equation, selected_id

    row = selected_equation(run_dir, equations=equations)
    if row is None:
        raise run_dir_error(
            f"{Path(run_dir) / VERIFICATION}: column 'selected' picks equation {selected_id(run_dir)}, which "
            f"{EQUATIONS} does not have; {regenerate(VERIFICATION)}"
        )
    return row


def selected_row(equations: pd.DataFrame) -> pd.Series:
    """The selected row of ``equations.csv`` as :func:`read_equations` returns it.

    That reader marks the run's pick (:func:`discover.io.selected_equation`: the
    ``verified`` policy's row of ``verification.csv``, else distill's) in ``selected``;
    a table without a selected row gives its first row.
    """
    sel = equations[equations["selected"].astype(bool)]
    return sel.iloc[0] if len(sel) else equations.iloc[0]


def choice_column(df: pd.DataFrame, col: str, allowed, path: Path, name: str) -> None:
    """Raise where a cell of ``col`` is not one of ``allowed`` (naming the row and the file's
    producer)."""
    bad = ~df[col].isin(allowed)
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise run_dir_error(
            f"{path}: column {col!r}, row {row + 1} holds {df[col].iloc[row]!r}; "
            f"use one of {', '.join(allowed)}; {regenerate(name)}"
        )


def read_verification(run_dir: str | os.PathLike) -> pd.DataFrame | None:
    """Read ``verification.csv``: each rule's meta-objective on held-out episodes.

    Columns: ``rule, kind, equation, objective_mean, objective_ci_low,
    objective_ci_high, relative_to_neural`` (``equation`` optional here) and, optional,
    ``selected`` (booleans: the ``verified`` policy's pick); the objective is
    higher-is-better and ``relative_to_neural`` is the mean over the neural rule's.

    Args:
      run_dir: the run directory.

    Returns:
      The table in file order, or ``None`` if the file is absent.

    Raises:
      RunDirError: if a column is missing, a number is malformed or a ``kind`` is
        not one of :data:`VERIFICATION_KINDS`.
    """
    df = _read_csv(run_dir, VERIFICATION)
    if df is None:
        return None
    path = Path(run_dir) / VERIFICATION
    df["rule"] = df["rule"].fillna("").astype(str)
    df["kind"] = df["kind"].fillna("").astype(str).str.strip()
    choice_column(df, "kind", VERIFICATION_KINDS, path, VERIFICATION)
    if "equation" in df.columns:
        text_column(df, "equation")
    if "selected" in df.columns:  # the verified policy's pick (discover.io.selected_id)
        bool_column(df, "selected", path, VERIFICATION)
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
      RunDirError: if a column is missing, a number or boolean is malformed.
    """
    df = _read_csv(run_dir, COMPARISON)
    if df is None:
        return None
    path = Path(run_dir) / COMPARISON
    bool_column(df, "closest", path, COMPARISON)
    for col in _COMPARISON_OPTIONAL_NUMERIC:
        if col in df.columns:
            numeric_column(df, col, path, COMPARISON)
    for col in _COMPARISON_TEXT:
        if col in df.columns:
            text_column(df, col)
    if "equation_id" in df.columns:
        df["equation_id"] = df["equation_id"].map(id_text)
    return df


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


def read_fit(run_dir: str | os.PathLike) -> pd.DataFrame | None:
    r"""Read ``fit.csv``: each model's fit to the task's measured data (``fit_protocols``).

    Written by verification under the ``aic`` policy, one row per model: ``rule``
    (``eq<id>`` or a published set such as ``pg2006_visual_all_to_all_minimal``), ``kind``
    (one of :data:`FIT_KINDS`), ``equation`` (plain text), ``loss`` (the error
    :math:`E = \frac{1}{N}\sum_i ((\Delta w_i^\mathrm{model} - \Delta w_i)/\sigma_i)^2`
    over the N experiments), ``free_parameters`` (k), ``chi_square`` (N E) and ``aic``
    (chi2 + 2k; Akaike 1974).

    Args:
      run_dir: the run directory.

    Returns:
      The table sorted by AIC (stable; NaN last), ``free_parameters`` as ints, and a
      boolean column ``selected``, True on the equation of least AIC (the one the
      ``aic`` policy selects; no row when no equation has a finite AIC); ``None`` if
      the file is absent.

    Raises:
      RunDirError: if a column is missing or empty, a number is malformed, a ``kind``
        is not one of :data:`FIT_KINDS` or ``free_parameters`` is not a whole number
        >= 0.
    """
    df = _read_csv(run_dir, FIT)
    if df is None:
        return None
    path = Path(run_dir) / FIT
    for col in ("rule", "kind", "equation"):
        text_column(df, col)
    df["kind"] = df["kind"].str.strip()
    choice_column(df, "kind", FIT_KINDS, path, FIT)
    k = df["free_parameters"]
    bad = ~((k >= 0) & (k == k.round()))
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise run_dir_error(
            f"{path}: column 'free_parameters' must hold whole numbers >= 0, but row {row + 1} holds "
            f"{float(k.iloc[row]):g}; {regenerate(FIT)}"
        )
    df["free_parameters"] = k.astype(int)
    df = df.sort_values("aic", kind="stable", na_position="last").reset_index(drop=True)
    candidates = df[(df["kind"] == "equation") & df["aic"].notna()]
    df["selected"] = df.index == (candidates.index[0] if len(candidates) else -1)
    return df


def read_data_fit(run_dir: str | os.PathLike) -> pd.DataFrame | None:
    """Read ``data_fit.csv``: every measured experiment beside each model's ``dw`` on it.

    One row per experiment: ``dataset, protocol, label, pre_ms, post_ms, freq_hz,
    lag_ms`` (``t_post - t_pre`` of a pairing, NaN for other protocols such as
    triplets), ``pairs, trains, dw, sem`` (NaN where the data give none), ``sigma`` (the
    SEM the fit used: ``sem``, else the task's default SEM), then one column
    ``dw_<name>`` per model (``dw_neural``, ``dw_selected``, ``dw_pg2006_<set>``).

    Args:
      run_dir: the run directory.

    Returns:
      The table in file order, text columns as strings and every ``dw_<name>``,
      ``pairs`` and ``trains`` column as floats, or ``None`` if the file is absent.

    Raises:
      RunDirError: if a column is missing, a number is malformed, ``dw`` or ``sigma`` is
        empty, or a ``sigma`` is not a positive number.
    """
    df = _read_csv(run_dir, DATA_FIT)
    if df is None:
        return None
    path = Path(run_dir) / DATA_FIT
    for col in ("dataset", "protocol", "label", "pre_ms", "post_ms"):
        if col in df.columns:
            text_column(df, col)
    for col in df.columns:
        if col.startswith("dw_") or col in ("pairs", "trains"):
            numeric_column(df, col, path, DATA_FIT)
    bad = ~(df["sigma"] > 0)
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise run_dir_error(
            f"{path}: column 'sigma' must hold positive numbers (the SEM each experiment is weighted by), but "
            f"row {row + 1} holds {float(df['sigma'].iloc[row]):g}; {regenerate(DATA_FIT)}"
        )
    return df


def read_behaviour(run_dir: str | os.PathLike) -> pd.DataFrame | None:
    """Read ``behaviour.csv`` (verification; tasks with a ``behaviour``): per ``rule``,
    ``metric`` and ``at`` (a point of a curve, NaN for a single number) the ``mean`` over
    held-out episodes and its 95 % interval ``ci_low, ci_high``; ``None`` if absent.

    Raises:
      RunDirError: if a column is missing, a number is malformed or a rule or metric is empty.
    """
    df = _read_csv(run_dir, BEHAVIOUR)
    if df is None:
        return None
    for col in ("rule", "metric"):
        text_column(df, col)
    return df


def read_classification(run_dir: str | os.PathLike) -> pd.DataFrame | None:
    """Read ``classification.csv`` (verification; tasks that learn to classify: ``few_shot``).

    One row per ``method`` (the meta-learned rule ``neural``, the distilled ``equation``
    and baselines such as ``backprop``, ``backprop_adam``, ``feedback_alignment``,
    ``readout_only``, ``hebbian``, ``oja``): ``accuracy_mean``, the query accuracy on
    held-out classes as a fraction, mean over ``seeds`` seeds, and its 95 % t-interval
    ``ci_low, ci_high``; optional ``learning_rate`` (tuned on the training classes),
    ``angle_to_backprop_deg`` and ``angle_hidden_deg`` (mean angle between the method's
    weight update and backprop's, all synapses / hidden layers only) and ``equation``
    (the rule as text), each NaN or empty where a method has none.

    Args:
      run_dir: the run directory.

    Returns:
      The table in file order, ``seeds`` as ints, ``method`` and ``equation`` as strings
      (empty where absent), or ``None`` if the file is absent.

    Raises:
      RunDirError: if a column is missing, a number is malformed, a method is empty or
        repeated, ``seeds`` is not a whole number >= 1 or an ``accuracy_mean`` is not a
        fraction in [0, 1].
    """
    df = _read_csv(run_dir, CLASSIFICATION)
    if df is None:
        return None
    path = Path(run_dir) / CLASSIFICATION
    for col in CLASSIFICATION_OPTIONAL_NUMERIC:
        if col in df.columns:
            numeric_column(df, col, path, CLASSIFICATION)
    text_column(df, "method")
    df["method"] = df["method"].str.strip()
    repeated = df["method"].duplicated()
    if repeated.any():
        row = int(repeated.to_numpy().nonzero()[0][0])
        raise run_dir_error(
            f"{path}: column 'method' names {df['method'].iloc[row]!r} twice (again in row {row + 1}); "
            f"{regenerate(CLASSIFICATION)}"
        )
    if "equation" in df.columns:
        text_column(df, "equation")
    seeds = df["seeds"]
    bad = ~((seeds >= 1) & (seeds == seeds.round()))
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise run_dir_error(
            f"{path}: column 'seeds' must hold whole numbers >= 1, but row {row + 1} holds "
            f"{float(seeds.iloc[row]):g}; {regenerate(CLASSIFICATION)}"
        )
    df["seeds"] = seeds.astype(int)
    acc = df["accuracy_mean"]
    bad = (acc < 0) | (acc > 1)
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise run_dir_error(
            f"{path}: column 'accuracy_mean' must hold fractions in [0, 1] (not percent), but row {row + 1} "
            f"holds {float(acc.iloc[row]):g}; {regenerate(CLASSIFICATION)}"
        )
    return df


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
      "equations": df | None, "verification": df | None, "trajectories": dict | None,
      "fit": df | None, "data_fit": df | None, "behaviour": df | None,
      "classification": df | None}``.

    Raises:
      RunDirError: as the individual readers do.
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
        "fit": read_fit(run_dir),
        "data_fit": read_data_fit(run_dir),
        "behaviour": read_behaviour(run_dir),
        "classification": read_classification(run_dir),
    }


__all__ = ["CONFIG", "MANIFEST", "META_HISTORY", "EQUATIONS", "VERIFICATION", "COMPARISON", "COMPARISON_WINDOWS",
           "COMPARISON_FREQUENCY", "TRAJECTORIES", "FIT", "DATA_FIT", "BEHAVIOUR", "CLASSIFICATION", "PRODUCERS",
           "REQUIRED_COLUMNS", "VERIFICATION_KINDS", "FIT_KINDS",
           "TRAJECTORY_ARRAYS", "missing_note", "parse_coefficients", "read_config", "read_manifest",
           "read_meta_history", "read_equations", "selected_row", "read_verification", "read_comparison",
           "read_comparison_windows", "read_comparison_frequency", "read_fit", "read_data_fit", "read_behaviour",
           "read_classification", "read_trajectories",
           "missing_inputs", "read_all"]
