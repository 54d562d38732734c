r"""LaTeX pieces of the booktabs tables: escaping, numbers, equations, the environment.

Numbers are rounded to significant figures; floats inside sympy expressions are rounded
by :func:`distill.simplify.round_expr` (the one rounding of equations) before sympy's
LaTeX printer sees them; plain-text cells are escaped (``stdp_pair`` -> ``stdp\_pair``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd
import sympy

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


def expr_latex(expr: sympy.Expr, digits: int = 3) -> str:
    """LaTeX for a sympy expression, floats rounded to ``digits`` significant figures.

    Args:
      expr: a sympy expression.
      digits: significant figures for its floats.

    Returns:
      sympy's LaTeX of :func:`distill.simplify.round_expr` of ``expr``, e.g.
      ``"- 1.01 w y^{2} + 0.981 x y"``.
    """
    from distill.simplify import round_expr

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


def math_cell(x: float, digits: int = 3, scientific: bool = False, bold: bool = False) -> str:
    text = format_number(x, digits, scientific)
    if text == "--":
        return text
    return rf"{{\boldmath${text}$}}" if bold else f"${text}$"


#: Column type of a column that wraps, left-aligned, to the width tabularx gives it.
WRAP = r">{\raggedright\arraybackslash}X"


def environment(
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


def row_timescales(row: pd.Series) -> dict[str, float]:
    """``{"tau_pre": 20.0, ...}`` of an ``equations.csv`` row (:func:`discover.io.row_timescales`)."""
    from discover.io import row_timescales as parse

    return parse(row)


def timescales_text(timescales: dict[str, float], latex: bool = False) -> str:
    """``tau_pre = 20 ms, tau_post = 20 ms``, or in LaTeX ``$\\tau_\\mathrm{pre} = 20$~ms, ...``."""
    if not latex:
        return ", ".join(f"{k} = {v:.4g} ms" for k, v in timescales.items())
    return ", ".join(rf"$\tau_\mathrm{{{escape_latex(k.removeprefix('tau_'))}}} = {format_number(v, 4)}$~ms"
                     for k, v in timescales.items())


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


__all__ = ["escape_latex", "expr_latex", "format_number", "math_cell", "WRAP", "environment", "breakable_text",
           "breakable_math", "equation_latex", "preview_document"]
