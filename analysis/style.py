"""One look for every figure: sizes, fonts, colours, and a check for mathtext labels.

Figures are drawn on :class:`matplotlib.figure.Figure` objects inside
``matplotlib.rc_context(RC)``, so nothing here changes matplotlib's global state or its
backend (no ``pyplot``): importing analysis never opens a window.
"""

from __future__ import annotations

import functools
import re

#: rcParams applied while drawing a figure.
RC: dict[str, object] = {
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.5,
    "lines.linewidth": 1.4,
    "lines.markersize": 4,
    "legend.frameon": False,
    "savefig.bbox": "tight",
    "pdf.fonttype": 42,  # TrueType in PDFs: editable text, accepted by journals
    "mathtext.fontset": "dejavusans",
}

#: Width x height in inches of a single-column figure.
FIGSIZE: tuple[float, float] = (4.5, 3.2)

#: Resolution of PNG files (PDFs are vector).
DPI: int = 200

#: A colour per rule kind of ``verification.csv`` (Okabe & Ito colour-blind-safe palette).
KIND_COLORS: dict[str, str] = {
    "neural": "#000000",
    "equation": "#0072B2",
    "canonical": "#E69F00",
    "teacher": "#009E73",
}

#: Colours for lines (training loss, validation loss, backends, ...), in order.
CYCLE: tuple[str, ...] = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")

#: Highlight for the selected equation.
HIGHLIGHT: str = "#D55E00"


@functools.lru_cache(maxsize=256)
def mathtext_ok(text: str) -> bool:
    """Whether matplotlib's mathtext can typeset ``text`` (e.g. ``"$\\Delta w = x y$"``).

    Mathtext knows a subset of LaTeX; a label it cannot parse fails only when the figure
    is drawn, so callers check first and fall back to plain text.

    Args:
      text: a label with ``$...$`` math.

    Returns:
      ``True`` if it parses.
    """
    from matplotlib.mathtext import MathTextParser

    try:
        MathTextParser("path").parse(text)
    except _mathtext_errors():  # what mathtext raises for LaTeX it does not know
        return False
    return True


@functools.cache
def _mathtext_errors() -> tuple[type[Exception], ...]:
    """``ValueError`` (mathtext's parse errors) and pyparsing's, which some versions let through."""
    try:
        from pyparsing.exceptions import ParseBaseException
    except ImportError:  # pyparsing < 3
        from pyparsing import ParseBaseException
    return (ValueError, ParseBaseException)



def new_figure():
    """A single-column :class:`~matplotlib.figure.Figure` and its axes (call inside ``rc_context(RC)``)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIGSIZE, layout="constrained")
    return fig, fig.add_subplot()


def set_log_if_positive(ax, values) -> None:
    """A log y axis when every finite value is positive."""
    import numpy as np

    finite = values[np.isfinite(values)]
    if finite.size and (finite > 0).all():
        ax.set_yscale("log")


_SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def term_label(term: str) -> str:
    """A monomial as readable text: ``"w*y**2"`` -> ``"w·y²"`` (no mathtext needed)."""
    text = re.sub(r"\*\*(\d+)", lambda m: m.group(1).translate(_SUPERSCRIPTS), str(term))
    return text.replace("*", "·")
