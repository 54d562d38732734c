r"""Booktabs LaTeX tables from the run directory's DataFrames.

Each table is a ``table`` environment with a caption and a label, ready for
``\input{}``; :func:`write_tables` also writes ``tables/preview.tex``, a complete
document that inputs them all and compiles alone with ``pdflatex`` (packages: booktabs,
amsmath, array, tabularx; all in TeX Live's ``latex-base``/``latex-recommended``).
Tables with equations are ``tabularx`` environments as wide as the text whose equation
column wraps long equations after ``+``/``-``, so nothing sticks out of the page.
Numbers are rounded to significant figures; floats inside sympy expressions are
rounded the same way before sympy's LaTeX printer sees them; plain-text cells are
escaped (``stdp_pair`` -> ``stdp\_pair``). The layout follows PySR's
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
import sympy

from . import rundir

_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def escape_latex(text: str) -> str:
    r"""Escape LaTeX's special characters in plain text.

    Args:
      text: e.g. a rule name such as ``"stdp_pair"``.

    Returns:
      Text that typesets literally, e.g. ``"stdp\_pair"``.
    """
    return "".join(_LATEX_SPECIALS.get(c, c) for c in str(text))


def round_sig(x: float, digits: int = 3) -> float:
    """Round ``x`` to ``digits`` significant figures.

    Args:
      x: a number; 0, NaN and infinities are returned unchanged.
      digits: significant figures to keep (at least 1).

    Returns:
      The rounded float, e.g. ``round_sig(0.0123456) == 0.0123``.
    """
    x = float(x)
    if x == 0 or not math.isfinite(x):
        return x
    return round(x, digits - 1 - math.floor(math.log10(abs(x))))


def round_expr(expr: sympy.Expr, digits: int = 3) -> sympy.Expr:
    """Round every float inside a sympy expression to ``digits`` significant figures.

    Integers and rationals are left exact; only :class:`sympy.Float` atoms change.

    Args:
      expr: a sympy expression, e.g. ``0.981234*x*y - 1.0123*w*y**2``.
      digits: significant figures to keep.

    Returns:
      The expression with rounded floats (printed with ``digits`` digits).
    """
    rounded = {f: sympy.Float(round_sig(float(f), digits), digits) for f in expr.atoms(sympy.Float)}
    return expr.xreplace(rounded)


def expr_latex(expr: sympy.Expr, digits: int = 3) -> str:
    """LaTeX for a sympy expression, floats rounded to ``digits`` significant figures.

    Args:
      expr: a sympy expression.
      digits: significant figures for its floats.

    Returns:
      sympy's LaTeX for :func:`round_expr` of ``expr``, e.g. ``"- 1.01 w y^{2} + 0.981 x y"``.
    """
    return sympy.latex(round_expr(expr, digits))


def format_number(x: float, digits: int = 3, scientific: bool = False) -> str:
    r"""Math-mode LaTeX (without ``$``) for a number to ``digits`` significant figures.

    Plain decimals are used for magnitudes from 1e-3 up to ``10**digits``; outside that,
    or with ``scientific=True``, the form is ``1.23 \times 10^{-4}`` (no factor for an
    exponent of 0). Trailing zeros are kept: they are significant (``1.00``).

    Args:
      x: the number; NaN gives ``"--"`` (use it outside math mode), infinities ``\infty``.
      digits: significant figures.
      scientific: force scientific notation (as for fit losses).

    Returns:
      The LaTeX text, e.g. ``format_number(0.91234) == "0.912"``,
      ``format_number(1.2345e-4, scientific=True) == r"1.23 \times 10^{-4}"``.
    """
    x = float(x)
    if math.isnan(x):
        return "--"
    if math.isinf(x):
        return r"\infty" if x > 0 else r"-\infty"
    if x == 0:
        return "0"
    mantissa, exponent = f"{x:.{digits - 1}e}".split("e")
    exponent = int(exponent)
    if not scientific and -3 <= exponent < digits:
        text = f"{x:#.{digits}g}"
        return text.rstrip(".") if "e" not in text else text
    return mantissa if exponent == 0 else rf"{mantissa} \times 10^{{{exponent}}}"


def _math(x: float, digits: int = 3, scientific: bool = False, bold: bool = False) -> str:
    text = format_number(x, digits, scientific)
    if text == "--":
        return text
    return rf"{{\boldmath${text}$}}" if bold else f"${text}$"


#: Column type of a column that wraps, left-aligned, to the width tabularx gives it.
WRAP = r">{\raggedright\arraybackslash}X"


def _environment(
    caption: str,
    label: str,
    colspec: str,
    header: Sequence[str],
    rows: Sequence[Sequence[str] | str],
) -> str:
    r"""A booktabs ``table``; ``tabularx`` at ``\linewidth`` when ``colspec`` has an X column.

    A row given as a string is emitted as is (e.g. ``\midrule``).
    """
    env = "tabularx" if "X" in colspec else "tabular"
    width = r"{\linewidth}" if env == "tabularx" else ""
    lines = [
        r"\begin{table}[htbp]",
        r"  \centering",
        r"  \small",
        rf"  \caption{{{caption}}}",
        rf"  \label{{{label}}}",
        rf"  \begin{{{env}}}{width}{{{colspec}}}",
        r"    \toprule",
        "    " + " & ".join(header) + r" \\",
        r"    \midrule",
        *("    " + (row if isinstance(row, str) else " & ".join(row) + r" \\") for row in rows),
        r"    \bottomrule",
        rf"  \end{{{env}}}",
        r"\end{table}",
    ]
    return "\n".join(lines) + "\n"


def breakable_text(text: str) -> str:
    r"""Escaped text (:func:`escape_latex`) that may break after ``_``, ``/``, ``-`` and ``.``.

    For run names and paths in narrow (``p``/``X``) columns, where a long name without
    spaces would otherwise stick out of the table.
    """
    out = []
    for c in str(text):
        out.append(escape_latex(c))
        if c in "_/-.":
            out.append(r"\allowbreak{}")
    return "".join(out)


def breakable_math(latex: str) -> str:
    r"""Math that may also break between the factors of a product.

    TeX breaks inline math only after binary operators and relations, so one long
    monomial (``0.0065 s_{post} tr_{post slow} tr_{pre}``) cannot wrap in a narrow
    column; ``\allowbreak`` between top-level factors (spaces outside braces, not next
    to an operator) lets it.
    """
    tokens, depth, cur = [], 0, []
    for c in latex:
        depth += c == "{"
        depth -= c == "}"
        if c == " " and depth == 0:
            tokens.append("".join(cur))
            cur = []
        else:
            cur.append(c)
    tokens.append("".join(cur))
    ops = {"+", "-", "=", r"\cdot", r"\times", ""}
    out = tokens[0]
    for prev, tok in zip(tokens, tokens[1:]):
        out += (" " if prev in ops or tok in ops else r" \allowbreak ") + tok
    return out


def equation_latex(row: pd.Series, digits: int = 3) -> str:
    """The right-hand side of one ``equations.csv`` row as LaTeX.

    Args:
      row: a row with ``latex`` and ``equation``.
      digits: significant figures, used only when printing from ``equation``.

    Returns:
      The ``latex`` cell if it is not empty, else sympy's LaTeX of the ``equation`` text
      (parsed with ``discover.equations.parse_equation``, imported only then) with floats
      rounded by :func:`expr_latex`.
    """
    latex = str(row.get("latex", "") or "").strip()
    if latex and latex.lower() != "nan":
        return latex
    # No LaTeX recorded: print it from the equation text through the restricted parser
    # (imported lazily: analysis reads files and stays light at import time).
    from discover.equations import parse_equation

    return expr_latex(parse_equation(str(row["equation"])), digits)


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
    header = ["ID", *(["Backend"] if multi_backend else []), "Complexity", "Loss", "Equation"]
    colspec = "r" + ("l" if multi_backend else "") + "rr" + WRAP
    rows = []
    for _, row in df.iterrows():
        bold = bool(row["selected"])

        def text(s: str) -> str:
            return rf"\textbf{{{s}}}" if bold else s

        eq = rf"\Delta w = {equation_latex(row, digits)}"
        rows.append(
            [
                text(escape_latex(str(row["id"]))),
                *([text(escape_latex(row["backend"]))] if multi_backend else []),
                text(str(int(row["complexity"]))),
                _math(row["loss"], digits, scientific=True, bold=bold),
                rf"{{\boldmath${eq}$}}" if bold else f"${eq}$",
            ]
        )
    return _environment(caption, label, colspec, header, rows)


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
    rows = []
    for _, row in df.iterrows():
        lo, hi = float(row["objective_ci_low"]), float(row["objective_ci_high"])
        if math.isnan(lo) or math.isnan(hi):
            ci = "--"
        else:  # may break after the comma when the bounds are long (scientific notation)
            ci = rf"$[{format_number(lo, digits)}, \allowbreak {format_number(hi, digits)}]$"
        rows.append(
            [
                escape_latex(row["rule"]),
                escape_latex(row["kind"]),
                _math(row["objective_mean"], digits),
                ci,
                _math(row["relative_to_neural"], digits),
            ]
        )
    return _environment(caption, label, r"llr>{\centering\arraybackslash}Xr", header, rows)


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
                _math(row["term_jaccard"], digits, bold=bold),
                _math(row["coef_distance"], digits, bold=bold),
                _math(row["behaviour_distance"], digits, bold=bold),
            ]
        )
    header = ["Rule", r"$\Delta w$", "$J$", r"$d_\mathrm{coef}$", r"$d_\mathrm{beh}$"]
    colspec = r">{\raggedright\arraybackslash}p{0.18\linewidth}" + WRAP + "rrr"
    return _environment(caption, label, colspec, header, rows)


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
            "Selected equation of each run; the closest canonical rule by coefficient distance "
            r"$d_\mathrm{coef}$ (coefficients divided by the largest absolute coefficient); $r$: the "
            "equation's held-out meta-objective relative to the run's neural rule."
        )
    rows = []
    for _, row in df.iterrows():
        rows.append(
            [
                breakable_text(row["run"]),
                rf"$\Delta w = {equation_latex(row, digits)}$",
                breakable_text(row["closest"]),
                _math(row["coef_distance"], digits),
                _math(row["relative_to_neural"], digits),
            ]
        )
    header = ["Run", "Equation", "Closest", r"$d_\mathrm{coef}$", "$r$"]
    ragged = r">{\raggedright\arraybackslash}"
    colspec = ragged + r"p{0.15\linewidth}" + WRAP + ragged + r"p{0.13\linewidth}rr"
    return _environment(caption, label, colspec, header, rows)


def preview_document(names: Sequence[str]) -> str:
    r"""A complete LaTeX document that ``\input``\ s each table file in ``names``.

    Args:
      names: file names relative to the ``tables/`` directory, e.g. ``["equations.tex"]``.

    Returns:
      The document; it compiles alone with ``pdflatex`` run inside ``tables/``.
    """
    body = [rf"\input{{{n}}}" for n in names] or ["No tables: the run directory has no inputs for them."]
    lines = [
        r"\documentclass{article}",
        r"\usepackage[T1]{fontenc}",
        r"\usepackage{amsmath}",
        r"\usepackage{booktabs}",
        r"\usepackage{array}",
        r"\usepackage{tabularx}",
        r"\begin{document}",
        *body,
        r"\end{document}",
    ]
    return "\n".join(lines) + "\n"


def write_tables(run_dir: str | os.PathLike) -> list[Path]:
    """Write the LaTeX tables of a run directory into its ``tables/`` folder.

    Writes ``tables/equations.tex`` (if ``equations.csv`` exists),
    ``tables/verification.tex`` (if ``verification.csv`` exists),
    ``tables/comparison.tex`` (if ``comparison.csv`` exists) and always
    ``tables/preview.tex``; each file atomically.

    Args:
      run_dir: the run directory.

    Returns:
      The paths written, preview last.

    Raises:
      RunDirectoryError: if an input CSV is malformed (see :mod:`analysis.rundir`).
    """
    run_dir = Path(run_dir)
    out = run_dir / "tables"
    written: list[Path] = []
    equations = rundir.read_equations(run_dir)
    if equations is not None:
        written.append(rundir.atomic_write_text(out / "equations.tex", equations_table(equations)))
    verification = rundir.read_verification(run_dir)
    if verification is not None:
        written.append(rundir.atomic_write_text(out / "verification.tex", verification_table(verification)))
    comparison = rundir.read_comparison(run_dir)
    if comparison is not None and len(comparison):
        written.append(rundir.atomic_write_text(out / "comparison.tex", comparison_table(comparison)))
    elif (out / "comparison.tex").exists():
        (out / "comparison.tex").unlink()  # stale: comparison.csv is gone
    preview = preview_document([p.name for p in written])
    written.append(rundir.atomic_write_text(out / "preview.tex", preview))
    return written
