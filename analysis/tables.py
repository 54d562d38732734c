r"""Booktabs LaTeX tables from the run directory's DataFrames.

Each table is a ``table`` environment with a caption and a label, ready for
``\input{}``; :func:`write_tables` also writes ``tables/preview.tex``, a complete
document that inputs them all and compiles alone with ``pdflatex`` (packages: booktabs,
amsmath, array, tabularx; all in TeX Live's ``latex-base``/``latex-recommended``).
Tables with equations are ``tabularx`` environments as wide as the text whose equation
column wraps long equations after ``+``/``-``, so nothing sticks out of the page.
Numbers, equations and text cells are printed by :mod:`analysis.latex`. The layout follows PySR's
``export_latex.py``, without its ``exec`` of generated source.

Example::

  >>> import pandas as pd
  >>> df = pd.DataFrame({"id": [0], "complexity": [3], "loss": [1.2345e-4],
  ...                    "latex": ["x y"], "selected": [True]})
  >>> print(equations_table(df))  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from . import rundir
from .cells import has_values
from .latex import (
    WRAP,
    breakable_math,
    breakable_text,
    environment,
    equation_latex,
    escape_latex,
    expr_latex,
    format_number,
    math_cell,
    preview_document,
    row_timescales,
    timescales_text,
)


def equations_table(
    df: pd.DataFrame,
    digits: int = 3,
    caption: str | None = None,
    label: str = "tab:equations",
) -> str:
    r"""A booktabs table of the Pareto front of distilled equations.

    Columns: ID, complexity, loss (scientific notation, ``digits`` significant figures)
    and the equation as ``$\Delta w = <latex>$``; a ``backend`` column is added when the
    front mixes backends. The selected equation's row is set in bold. The table is a
    ``tabularx`` as wide as the text; long equations wrap after ``+`` and ``-`` in
    their column.

    Args:
      df: ``equations.csv`` as a DataFrame; needs ``id, complexity, loss, latex,
        selected`` (``equation`` is used when a ``latex`` cell is empty).
      digits: significant figures for the loss.
      caption: caption text (LaTeX); a default describes the table.
      label: the ``\label`` key.

    Returns:
      The ``table`` environment as a string ending in a newline.

    Example::

      >>> df = pd.DataFrame({"id": [0, 1], "complexity": [3, 7],
      ...                    "loss": [2.5e-2, 1.2345e-6],
      ...                    "latex": ["x y", "- w y^{2} + x y"],
      ...                    "selected": [False, True]})
      >>> tex = equations_table(df)
    """
    multi_backend = "backend" in df.columns and df["backend"].nunique() > 1
    if caption is None:
        backend = ""
        if "backend" in df.columns and df["backend"].nunique() == 1:
            backend = f" (backend: {escape_latex(df['backend'].iloc[0])})"
        caption = (
            f"Pareto front of distilled equations{backend}: complexity (sympy node count) "
            "against fit loss to the neural rule. The selected equation is set in bold."
        )
        chosen = df[df["selected"].astype(bool)]
        ts = row_timescales(chosen.iloc[0]) if len(chosen) else {}
        if ts:
            caption += f" Trace time constants it was found with: {timescales_text(ts, latex=True)}."
    header = ["ID", *(["Backend"] if multi_backend else []), "Complexity", "Loss", "Equation"]
    colspec = "r" + ("l" if multi_backend else "") + "rr" + WRAP
    rows = []
    for _, row in df.iterrows():
        bold = bool(row["selected"])

        def text(s: str, bold: bool = bold) -> str:
            return rf"\textbf{{{s}}}" if bold else s

        eq = rf"\Delta w = {equation_latex(row, digits)}"
        rows.append(
            [
                text(escape_latex(str(row["id"]))),
                *([text(escape_latex(row["backend"]))] if multi_backend else []),
                text(str(int(row["complexity"]))),
                math_cell(row["loss"], digits, scientific=True, bold=bold),
                rf"{{\boldmath${eq}$}}" if bold else f"${eq}$",
            ]
        )
    return environment(caption, label, colspec, header, rows)


def verification_table(
    df: pd.DataFrame,
    digits: int = 3,
    caption: str | None = None,
    label: str = "tab:verification",
) -> str:
    r"""A booktabs table of each rule's meta-objective on held-out episodes.

    Columns: rule (escaped text), kind, objective mean, confidence interval
    ``[low, high]`` and the ratio to the neural rule, all to ``digits`` significant
    figures, in the order of ``df``. The table is a ``tabularx`` as wide as the text; an
    interval with long bounds wraps after its comma.

    Args:
      df: ``verification.csv`` as a DataFrame; needs ``rule, kind, objective_mean,
        objective_ci_low, objective_ci_high, relative_to_neural``.
      digits: significant figures.
      caption: caption text (LaTeX); a default describes the table.
      label: the ``\label`` key.

    Returns:
      The ``table`` environment as a string ending in a newline.

    Example::

      >>> df = pd.DataFrame({"rule": ["neural", "stdp_pair"], "kind": ["neural", "canonical"],
      ...                    "objective_mean": [0.9, 0.8], "objective_ci_low": [0.89, 0.78],
      ...                    "objective_ci_high": [0.91, 0.82], "relative_to_neural": [1.0, 0.889]})
      >>> tex = verification_table(df)
    """
    if caption is None:
        caption = (
            "Meta-objective of each rule on held-out episodes (higher is better): mean, "
            "confidence interval (CI) and ratio to the neural rule."
        )
    header = ["Rule", "Kind", "Objective", "CI", "Relative to neural"]
    # long rule names (a published parameter set: pg2006_hippocampal_all_to_all_minimal)
    # wrap after their underscores in a column of their own width
    long_names = any(len(str(r)) > 16 for r in df["rule"])
    rule_cell = breakable_text if long_names else escape_latex
    rows = []
    for _, row in df.iterrows():
        lo, hi = float(row["objective_ci_low"]), float(row["objective_ci_high"])
        if math.isnan(lo) or math.isnan(hi):
            ci = "--"
        else:  # may break after the comma when the bounds are long (scientific notation)
            ci = rf"$[{format_number(lo, digits)}, \allowbreak {format_number(hi, digits)}]$"
        rows.append(
            [
                rule_cell(row["rule"]),
                escape_latex(row["kind"]),
                math_cell(row["objective_mean"], digits),
                ci,
                math_cell(row["relative_to_neural"], digits),
            ]
        )
    first = r">{\raggedright\arraybackslash}p{0.26\textwidth}" if long_names else "l"
    return environment(caption, label, first + r"lr>{\centering\arraybackslash}Xr", header, rows)


def comparison_table(
    df: pd.DataFrame,
    digits: int = 3,
    caption: str | None = None,
    label: str = "tab:comparison",
) -> str:
    r"""A booktabs table of the selected equation against each canonical rule.

    The first row is the discovered (selected) equation; then one row per canonical rule
    at its published parameters: its equation, the Jaccard index of the term sets,
    the coefficient distance and the behaviour distance (:mod:`analysis.compare`). The
    closest canonical rule is set in bold. Equations wrap in a ``tabularx`` column, rule
    names after their underscores.

    Args:
      df: ``comparison.csv`` as a DataFrame; needs ``canonical, term_jaccard,
        coef_distance, behaviour_distance, closest`` and uses ``canonical_latex`` (else
        ``canonical_equation``), ``equation_latex``/``equation``, ``equation_id`` and
        ``behaviour`` when present.
      digits: significant figures.
      caption: caption text (LaTeX); a default explains the columns.
      label: the ``\label`` key.

    Returns:
      The ``table`` environment as a string ending in a newline.
    """
    def cell(row: pd.Series, latex_col: str, text_col: str) -> str:
        latex = str(row.get(latex_col, "") or "").strip()
        if latex and latex.lower() != "nan":
            return latex
        return equation_latex(pd.Series({"latex": "", "equation": row.get(text_col, "0")}), digits)

    behaviours = {str(b) for b in df.get("behaviour", pd.Series(dtype=str)) if str(b) not in ("", "nan")}
    if caption is None:
        parts = [
            "The distilled equation against canonical rules at their published parameters. "
            r"$J$: Jaccard index of the term sets; $d_\mathrm{coef}$: L2 distance between the "
            "coefficient vectors, each divided by its largest absolute coefficient",
        ]
        if "stdp_window" in behaviours:
            parts.append(r"$d_\mathrm{beh}$: root-mean-square difference of the STDP pairing windows "
                         r"(single pairings and 5 pairings at 20\,Hz), each divided by its largest $|\Delta w|$")
        if "oja_pc1" in behaviours:
            parts.append(r"$d_\mathrm{beh}$: difference in alignment with the first principal component "
                         "and in relative weight norm after the Oja check")
        if not behaviours:
            parts.append(r"$d_\mathrm{beh}$: behaviour distance (not computed)")
        caption = "; ".join(parts) + ". The closest canonical rule is set in bold."
    rows: list[Sequence[str] | str] = []
    if len(df):
        first = df.iloc[0]
        eq_id = str(first.get("equation_id", "") or "").strip()
        name = f"discovered (eq.~{escape_latex(eq_id)})" if eq_id and eq_id.lower() != "nan" else "discovered"
        eq = cell(first, "equation_latex", "equation") if ("equation_latex" in df or "equation" in df) else ""
        rows.append([name, f"${breakable_math(eq)}$" if eq else "--", "", "", ""])
        rows.append(r"\midrule")
    for _, row in df.iterrows():
        bold = bool(row["closest"])
        eq = cell(row, "canonical_latex", "canonical_equation")
        rows.append(
            [
                rf"\textbf{{{breakable_text(row['canonical'])}}}" if bold else breakable_text(row["canonical"]),
                rf"{{\boldmath${breakable_math(eq)}$}}" if bold else f"${breakable_math(eq)}$",
                math_cell(row["term_jaccard"], digits, bold=bold),
                math_cell(row["coef_distance"], digits, bold=bold),
                math_cell(row["behaviour_distance"], digits, bold=bold),
            ]
        )
    header = ["Rule", r"$\Delta w$", "$J$", r"$d_\mathrm{coef}$", r"$d_\mathrm{beh}$"]
    colspec = r">{\raggedright\arraybackslash}p{0.18\linewidth}" + WRAP + "rrr"
    return environment(caption, label, colspec, header, rows)


def _timescales_cell(row: pd.Series) -> str:
    from .latex import row_timescales, timescales_text

    ts = row_timescales(row)
    return r" \newline " + timescales_text(ts, latex=True) if ts else ""


def runs_table_latex(
    df: pd.DataFrame,
    digits: int = 3,
    caption: str | None = None,
    label: str = "tab:runs",
) -> str:
    r"""A booktabs table comparing several runs (``plasticity compare``).

    Columns: run (wraps after ``_``, ``/``, ``-``), selected equation (wraps), the
    closest canonical rule, its coefficient distance, and ``r``, the selected equation's
    verified objective relative to the neural rule.

    Args:
      df: :func:`analysis.compare.runs_table`; needs ``run, latex, equation, closest,
        coef_distance, relative_to_neural``.
      digits: significant figures.
      caption: caption text (LaTeX); a default explains the columns.
      label: the ``\label`` key.

    Returns:
      The ``table`` environment as a string ending in a newline.
    """
    if caption is None:
        caption = (
            "Selected equation of each run, with the time constants of the traces it reads; the closest "
            "canonical rule by coefficient distance "
            r"$d_\mathrm{coef}$ (coefficients divided by the largest absolute coefficient); $r$: the "
            "equation's held-out meta-objective relative to the run's neural rule."
        )
    rows = []
    for _, row in df.iterrows():
        rows.append(
            [
                breakable_text(row["run"]),
                rf"$\Delta w = {equation_latex(row, digits)}$" + _timescales_cell(row),
                breakable_text(row["closest"]),
                math_cell(row["coef_distance"], digits),
                math_cell(row["relative_to_neural"], digits),
            ]
        )
    header = ["Run", "Equation", "Closest", r"$d_\mathrm{coef}$", "$r$"]
    ragged = r">{\raggedright\arraybackslash}"
    colspec = ragged + r"p{0.15\linewidth}" + WRAP + ragged + r"p{0.13\linewidth}rr"
    return environment(caption, label, colspec, header, rows)


#: Lines of table rows one float of :func:`fit_table` holds before it continues in the next,
#: so that a long table still fits on its pages.
FIT_LINES_PER_TABLE = 24


def _fit_row_lines(rule: str, latex: str) -> int:
    """About how many lines a row of :func:`fit_table` takes: its equation (about 36
    characters of printed math a line) or its rule name (about 11 characters), whichever wraps more."""
    import re

    printed = re.sub(r"\\[a-zA-Z]+|[{}_^ ]", "", latex)  # what is typeset, roughly
    return max(1, math.ceil(len(printed) / 36), math.ceil(len(rule) / 11))


def fit_table(
    df: pd.DataFrame,
    digits: int = 3,
    experiments: int | None = None,
    caption: str | None = None,
    label: str = "tab:fit",
) -> str:
    r"""A booktabs table of each model's fit to the measured data (``fit.csv``).

    Columns: rule (wraps after its underscores), kind, the equation :math:`\Delta w`
    (wraps), the error :math:`E` (mean squared deviation from the data in units of the
    SEM), the free parameters :math:`k` and Akaike's criterion
    :math:`\mathrm{AIC} = N E + 2k`, in the order of ``df`` (:func:`analysis.rundir.read_fit`
    sorts by AIC). The selected equation's row is set in bold. A table too long for one
    page (more than :data:`FIT_LINES_PER_TABLE` lines, estimated) continues in further
    ``table`` floats, each captioned as a continuation and labelled ``<label>-2``, ...

    Args:
      df: ``fit.csv`` as a DataFrame; needs ``rule, kind, equation, loss,
        free_parameters, aic, selected``.
      digits: significant figures.
      experiments: the number N of experiments, named in the default caption.
      caption: caption text (LaTeX); a default explains the columns.
      label: the ``\label`` key.

    Returns:
      The ``table`` environment(s) as a string ending in a newline.

    Example::

      >>> df = pd.DataFrame({"rule": ["eq1", "pg2006_visual_nearest_minimal"], "kind": ["equation", "published"],
      ...                    "equation": ["0.01*s_post*tr_pre", "0.05*s_post*tr_pre - 0.008*s_pre*tr_post"],
      ...                    "loss": [0.5, 0.35], "free_parameters": [1, 3], "aic": [7.0, 9.5],
      ...                    "selected": [True, False]})
      >>> tex = fit_table(df, experiments=10)
    """
    if caption is None:
        n = f"{experiments} " if experiments is not None else ""
        caption = (
            f"Fit of each model to the {n}measured experiments, sorted by Akaike's information criterion. "
            r"$E$: mean squared deviation from the data in units of the SEM; $k$: free parameters; "
            r"$\mathrm{AIC} = N E + 2k$. The selected equation (least AIC among the equations) is set in bold."
        )
    chunks: list[list[Sequence[str]]] = [[]]
    used = 0
    for _, row in df.iterrows():
        bold = bool(row["selected"])
        plain = str(row["equation"] or "").strip()
        latex = ""
        if plain and plain.lower() != "nan":
            # \left( \right) would box a factor, which then could not wrap in its column
            latex = equation_latex(pd.Series({"latex": "", "equation": plain}), digits)
            latex = breakable_math(latex.replace(r"\left(", "(").replace(r"\right)", ")"))
        eq = (rf"{{\boldmath${latex}$}}" if bold else f"${latex}$") if latex else "--"

        def text(s: str, bold: bool = bold) -> str:
            return rf"\textbf{{{s}}}" if bold else s

        lines = _fit_row_lines(str(row["rule"]), latex)
        if chunks[-1] and used + lines > FIT_LINES_PER_TABLE:
            chunks.append([])
            used = 0
        used += lines
        chunks[-1].append(
            [
                text(breakable_text(row["rule"])),
                text(escape_latex(row["kind"])),
                eq,
                math_cell(row["loss"], digits, bold=bold),
                text(str(int(row["free_parameters"]))),
                math_cell(row["aic"], digits, bold=bold),
            ]
        )
    header = ["Rule", "Kind", r"$\Delta w$", "$E$", "$k$", "AIC"]
    colspec = r">{\raggedright\arraybackslash}p{0.17\linewidth}l" + WRAP + "rrr"
    return "\n".join(
        environment(caption if i == 0 else rf"Table~\ref{{{label}}}, continued.",
                    label if i == 0 else f"{label}-{i + 1}", colspec, header, rows)
        for i, rows in enumerate(chunks)
    )


def _percent_cell(x: float) -> str:
    return "--" if math.isnan(float(x)) else f"${100 * float(x):.1f}$"


def _degrees_cell(x: float) -> str:
    return "--" if math.isnan(float(x)) else f"${float(x):.1f}$"


def classification_table(
    df: pd.DataFrame,
    digits: int = 3,
    caption: str | None = None,
    label: str = "tab:classification",
) -> str:
    r"""A booktabs table of each method's query accuracy on held-out classes (``few_shot``).

    Columns: method (wraps after its underscores), accuracy in percent (one decimal), its
    95 % t-interval, the seeds (in the caption when every method has the same number)
    and, where ``df`` has them, the learning rate (``digits`` significant figures) and the
    angles of the update to backprop's (degrees, one decimal; all synapses, hidden layers),
    in the order of ``df``. The rules as text (column ``equation``) are left to
    ``report.md``: beside seven numbers they would not fit the width of a page.

    Args:
      df: ``classification.csv`` as :func:`analysis.rundir.read_classification` returns it;
        needs ``method, accuracy_mean, ci_low, ci_high, seeds`` (fractions) and uses
        ``learning_rate, angle_to_backprop_deg, angle_hidden_deg`` when present.
      digits: significant figures of the learning rate.
      caption: caption text (LaTeX); a default explains the columns.
      label: the ``\label`` key.

    Returns:
      The ``table`` environment as a string ending in a newline.

    Example::

      >>> df = pd.DataFrame({"method": ["equation", "backprop"], "accuracy_mean": [0.5, 0.6],
      ...                    "ci_low": [0.48, 0.58], "ci_high": [0.52, 0.62], "seeds": [5, 5],
      ...                    "learning_rate": [float("nan"), 0.05]})
      >>> tex = classification_table(df)
    """
    lr, ang, ang_h = (c in df.columns and has_values(df[c])
                      for c in ("learning_rate", "angle_to_backprop_deg", "angle_hidden_deg"))
    seeds = sorted(set(df["seeds"].astype(int)))
    per_method = len(seeds) > 1
    if caption is None:
        over = "the seeds" if per_method or not seeds else f"{seeds[0]} seed{'s' if seeds[0] != 1 else ''}"
        parts = [rf"Query accuracy (\%) on held-out classes: mean and 95\,\% $t$-interval (CI) over {over}"]
        if lr:
            parts.append(r"$\eta$: learning rate, tuned on the training classes")
        if ang or ang_h:
            parts.append(r"$\angle$: mean angle between the method's weight update and backprop's, over all "
                         r"synapses and over the hidden layers only ($0^\circ$: backprop's direction)")
        caption = "; ".join(parts) + "."
    rows = []
    for _, row in df.iterrows():
        lo, hi = float(row["ci_low"]), float(row["ci_high"])
        ci = "--" if math.isnan(lo) or math.isnan(hi) else rf"$[{100 * lo:.1f}, {100 * hi:.1f}]$"
        rows.append([
            breakable_text(row["method"]),
            _percent_cell(row["accuracy_mean"]),
            ci,
            *([str(int(row["seeds"]))] if per_method else []),
            *([math_cell(row["learning_rate"], digits)] if lr else []),
            *([_degrees_cell(row["angle_to_backprop_deg"])] if ang else []),
            *([_degrees_cell(row["angle_hidden_deg"])] if ang_h else []),
        ])
    header = ["Method", r"Accuracy (\%)", "CI", *(["Seeds"] if per_method else []), *([r"$\eta$"] if lr else []),
              *([r"$\angle$ ($^\circ$)"] if ang else []), *([r"$\angle_\mathrm{hidden}$ ($^\circ$)"] if ang_h else [])]
    colspec = r">{\raggedright\arraybackslash}p{0.2\linewidth}rc" + "r" * (per_method + lr + ang + ang_h)
    return environment(caption, label, colspec, header, rows)


def write_tables(run_dir: str | os.PathLike) -> list[Path]:
    """Write the LaTeX tables of a run directory into its ``tables/`` folder.

    Writes ``tables/equations.tex`` (if ``equations.csv`` exists),
    ``tables/verification.tex`` (if ``verification.csv`` exists),
    ``tables/comparison.tex`` (if ``comparison.csv`` exists), ``tables/fit.tex`` (if
    ``fit.csv`` exists: tasks fitted to measured data), ``tables/classification.tex`` (if
    ``classification.csv`` exists: ``few_shot``) and always ``tables/preview.tex``; each
    file atomically.

    Args:
      run_dir: the run directory.

    Returns:
      The paths written, preview last.

    Raises:
      RunDirError: if an input CSV is malformed (see :mod:`analysis.rundir`).
    """
    run_dir = Path(run_dir)
    out = run_dir / "tables"
    from discover.io import atomic_write_text

    written: list[Path] = []
    equations = rundir.read_equations(run_dir)  # `selected` marks the run's pick (discover.io.selected_equation)
    if equations is not None:
        written.append(atomic_write_text(out / "equations.tex", equations_table(equations)))
    verification = rundir.read_verification(run_dir)
    if verification is not None:
        written.append(atomic_write_text(out / "verification.tex", verification_table(verification)))
    comparison = rundir.read_comparison(run_dir)
    if comparison is not None and len(comparison):
        written.append(atomic_write_text(out / "comparison.tex", comparison_table(comparison)))
    elif (out / "comparison.tex").exists():
        (out / "comparison.tex").unlink()  # stale: comparison.csv is gone
    fit = rundir.read_fit(run_dir)
    if fit is not None:
        data = rundir.read_data_fit(run_dir)
        n = None if data is None else len(data)
        written.append(atomic_write_text(out / "fit.tex", fit_table(fit, experiments=n)))
    elif (out / "fit.tex").exists():
        (out / "fit.tex").unlink()  # stale: fit.csv is gone
    classification = rundir.read_classification(run_dir)
    if classification is not None and len(classification):
        written.append(atomic_write_text(out / "classification.tex", classification_table(classification)))
    elif (out / "classification.tex").exists():
        (out / "classification.tex").unlink()  # stale: classification.csv is gone
    preview = preview_document([p.name for p in written])
    written.append(atomic_write_text(out / "preview.tex", preview))
    return written


__all__ = ["equations_table", "verification_table", "comparison_table", "fit_table", "classification_table",
           "runs_table_latex", "write_tables", "escape_latex", "expr_latex", "format_number", "equation_latex",
           "preview_document", "breakable_text", "breakable_math"]
