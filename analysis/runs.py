"""Several runs side by side (``plasticity compare``): one table and one figure.

Each run contributes its selected equation (:func:`discover.io.selected_equation`), its
normalized coefficients, the closest canonical rule (from its ``comparison.csv`` when
``plasticity report`` wrote one for that equation, else from the equation level alone)
and the equation's verified objective relative to the run's neural rule.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from . import rundir
from .contract import run_dir_error
from .metrics import (
    CompareUnavailable,
    equation_comparison,
    expression_terms,
    network_kind,
    normalized_coefficients,
    parse,
    population,
    short_text,
)


def _verified(verification: pd.DataFrame | None, row: pd.Series) -> pd.Series | None:
    if verification is None:
        return None
    hit = verification[verification["rule"] == f"eq{row['id']}"]
    if hit.empty and "equation" in verification.columns:
        hit = verification[(verification["kind"] == "equation") & (verification["equation"] == str(row["equation"]))]
    return hit.iloc[0] if len(hit) else None


def _latex(expr) -> str:
    from .latex import expr_latex

    return expr_latex(expr)


def runs_table(run_dirs: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """One row per run: selected equation, its normalized coefficients, closest rule, verification.

    Columns: ``run, path, task, network, equation_id, equation, latex, timescales`` (JSON:
    the time constants of the traces the equation reads, as in ``equations.csv``), ``closest,
    coef_distance, term_jaccard, behaviour_distance, objective_mean, relative_to_neural,
    relative_ci_low, relative_ci_high, coefficients`` (JSON of the normalized
    coefficients) and ``coef[TERM]`` for every term of any run (0 where a run lacks the
    term; the first run's terms first, largest first). The closest canonical
    rule comes from the run's ``comparison.csv`` when it exists (``plasticity report``),
    else from the equation level alone.

    Raises:
      discover.io.RunDirError: if a run directory or one of its files is missing or malformed.
    """
    from .compare import equation_text
    from .latex import row_timescales

    rows, names = [], []
    for d in run_dirs:
        d = Path(d)
        config, _ = rundir.read_config(d)
        equations = rundir.read_equations(d)
        if equations is None:
            raise run_dir_error(
                f"{d / rundir.EQUATIONS}: file is missing, and `plasticity compare` needs the selected "
                f"equation of every run; write it with `plasticity distill {d}`")
        row = rundir.selected_row(equations)  # the run's pick (discover.io.selected_equation)
        try:
            text = equation_text(row)
        except CompareUnavailable as e:
            raise run_dir_error(f"{d / rundir.EQUATIONS}: {e}; write it with `plasticity distill {d}`") from None
        expr = parse(text)
        coefs = normalized_coefficients(expression_terms(expr))
        comp = rundir.read_comparison(d)
        if comp is None or comp.empty or str(comp["equation_id"].iloc[0]) != str(row["id"]):
            comp = equation_comparison(text, network_kind(expr, config), population(config))
        best = comp[comp["closest"]].iloc[0]
        verification = rundir.read_verification(d)
        ver = _verified(verification, row)
        neural = math.nan
        if verification is not None:
            nrow = verification[verification["kind"] == "neural"]
            neural = float(nrow["objective_mean"].iloc[0]) if len(nrow) else math.nan
        rel = float(ver["relative_to_neural"]) if ver is not None else math.nan
        lo = hi = math.nan
        if ver is not None and math.isfinite(neural) and neural != 0:
            lo, hi = sorted((float(ver["objective_ci_low"]) / neural, float(ver["objective_ci_high"]) / neural))
        name = d.resolve().name
        names.append(name)
        task = config.get("task", {}).get("name", "") if isinstance(config.get("task"), dict) else ""
        rows.append({
            "run": name,
            "path": str(d),
            "task": task,
            "network": network_kind(expr, config),
            "equation_id": str(row["id"]),
            "equation": str(row["equation"]) or short_text(expr),
            "latex": str(row.get("latex", "") or "") or _latex(expr),
            "timescales": json.dumps(row_timescales(row)),  # the learned time constants of its traces
            "closest": str(best["canonical"]),
            "coef_distance": float(best["coef_distance"]),
            "term_jaccard": float(best["term_jaccard"]),
            "behaviour_distance": float(best["behaviour_distance"]),
            "objective_mean": float(ver["objective_mean"]) if ver is not None else math.nan,
            "relative_to_neural": rel,
            "relative_ci_low": lo,
            "relative_ci_high": hi,
            "coefficients": json.dumps(coefs),
            **{f"coef[{k}]": v for k, v in coefs.items()},
        })
    if len(set(names)) < len(names):  # same folder name in different places: use the paths
        for r in rows:
            r["run"] = r["path"]
    df = pd.DataFrame(rows)
    base = [c for c in df.columns if not c.startswith("coef[")]
    coef_cols = [c for c in df.columns if c.startswith("coef[")]  # first run's terms first
    df = df[base + coef_cols]
    df[coef_cols] = df[coef_cols].fillna(0.0)
    return df


def compare_runs(run_dirs: Sequence[str | os.PathLike], out: str | os.PathLike) -> dict[str, Path]:
    """``plasticity compare``: one table and one figure comparing several runs.

    Writes into ``out``: ``runs_comparison.csv`` (:func:`runs_table`),
    ``runs_comparison.tex`` (booktabs, :func:`analysis.tables.runs_table_latex`),
    ``preview.tex`` (compiles alone with pdflatex) and ``runs_comparison.png|pdf``
    (:func:`analysis.comparison_figures.runs_figure`), each atomically.

    Args:
      run_dirs: the run directories (at least one).
      out: output folder (created).

    Returns:
      ``{"csv": Path, "tex": Path, "preview": Path, "png": Path, "pdf": Path}``.
    """
    from discover.io import atomic_write_text, check_out_dir

    from . import figures, tables

    if not run_dirs:
        raise run_dir_error("no run directory given; pass one or more, e.g. "
                            "`plasticity compare runs/a runs/b --out runs/comparison`")
    df = runs_table(run_dirs)
    out = check_out_dir(out)
    csv = atomic_write_text(out / "runs_comparison.csv", df.to_csv(index=False))
    tex = atomic_write_text(out / "runs_comparison.tex", tables.runs_table_latex(df))
    preview = atomic_write_text(out / "preview.tex", tables.preview_document([tex.name]))
    png, pdf = figures.save_figure(figures.runs_figure(df), out / "runs_comparison")
    return {"csv": csv, "tex": tex, "preview": preview, "png": png, "pdf": pdf}


__all__ = ["runs_table", "compare_runs"]
