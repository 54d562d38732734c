r"""Figures of a run: meta-training curves, the equation front, the verification.

Each ``*_figure`` function takes one DataFrame of the run directory and returns a
:class:`matplotlib.figure.Figure` drawn in the house style (:mod:`analysis.style`)
without pyplot or a global backend (saving uses Agg for PNG and the PDF backend for
PDF). :func:`write_figures` saves, for every figure whose input file exists,
``figures/<name>.png`` and ``figures/<name>.pdf``, each atomically.

The quantities are dimensionless (losses and objectives in the task's own units), so
their axes say "a.u."; steps are meta-training steps.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable
from pathlib import Path

import matplotlib
import matplotlib.ticker
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from . import rundir, style


def _new_figure() -> tuple[Figure, matplotlib.axes.Axes]:
    fig = Figure(figsize=style.FIGSIZE, layout="constrained")
    return fig, fig.add_subplot()


def _set_log_if_positive(ax: matplotlib.axes.Axes, values: np.ndarray) -> None:
    finite = values[np.isfinite(values)]
    if finite.size and (finite > 0).all():
        ax.set_yscale("log")


def meta_loss_figure(history: pd.DataFrame) -> Figure:
    """Meta-loss and validation loss against meta-training step (log y when positive).

    Args:
      history: ``meta_history.csv`` as a DataFrame (``step, meta_loss, val_loss``);
        ``val_loss`` is NaN on steps without validation.

    Returns:
      The figure.

    Example::

      >>> fig = meta_loss_figure(pd.DataFrame({"step": [0, 1], "meta_loss": [1.0, 0.5],
      ...                                      "val_loss": [1.1, float("nan")]}))
    """
    with matplotlib.rc_context(style.RC):
        fig, ax = _new_figure()
        step = history["step"].to_numpy(float)
        loss = history["meta_loss"].to_numpy(float)
        ax.plot(step, loss, color=style.CYCLE[0], label="meta-loss (training)")
        val = history["val_loss"].to_numpy(float) if "val_loss" in history else np.full_like(loss, np.nan)
        has_val = np.isfinite(val)
        if has_val.any():
            ax.plot(step[has_val], val[has_val], "o-", color=style.CYCLE[1], label="validation loss")
        _set_log_if_positive(ax, np.concatenate([loss, val[has_val]]))
        ax.set_xlabel("meta-training step")
        ax.set_ylabel("loss (a.u.)")
        ax.set_title("Meta-training")
        ax.legend()
    return fig


def _equation_label(latex: str, plain: str) -> str:
    label = rf"$\Delta w = {latex}$" if latex else ""
    if label and style.mathtext_ok(label):
        return label
    return f"dw = {plain}"


def pareto_figure(equations: pd.DataFrame) -> Figure:
    """Fit loss against complexity for the equation front, the selected one highlighted.

    Each backend is drawn as its own step line; the selected equation is a large marker
    annotated with its equation (typeset with mathtext when it can be, else as text).

    Args:
      equations: ``equations.csv`` as a DataFrame (``backend, complexity, loss, latex,
        equation, selected``; ``selected`` boolean).

    Returns:
      The figure.
    """
    with matplotlib.rc_context(style.RC):
        fig, ax = _new_figure()
        backends = list(dict.fromkeys(equations["backend"])) if "backend" in equations else [None]
        for i, backend in enumerate(backends):
            part = equations if backend is None else equations[equations["backend"] == backend]
            part = part.sort_values("complexity")
            ax.plot(
                part["complexity"].to_numpy(float),
                part["loss"].to_numpy(float),
                "o-",
                drawstyle="steps-post",
                color=style.CYCLE[i % len(style.CYCLE)],
                label=f"front ({backend})" if backend else "front",
            )
        _set_log_if_positive(ax, equations["loss"].to_numpy(float))
        sel = equations[equations["selected"].astype(bool)]
        if len(sel):
            row = sel.iloc[0]
            cx, cy = float(row["complexity"]), float(row["loss"])
            ax.plot([cx], [cy], marker="*", markersize=14, color=style.HIGHLIGHT,
                    linestyle="none", label="selected", zorder=5)
            ax.annotate(
                _equation_label(str(row.get("latex", "")), str(row.get("equation", ""))),
                xy=(cx, cy),
                xytext=(0.97, 0.95),
                textcoords="axes fraction",
                ha="right",
                va="top",
                fontsize=8,
                arrowprops={"arrowstyle": "->", "color": style.HIGHLIGHT, "lw": 0.8},
            )
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_xlabel("complexity (sympy node count)")
        ax.set_ylabel("fit loss to neural rule (MSE, a.u.)")
        ax.set_title("Equation front")
        ax.legend(loc="best")
    return fig


def verification_figure(verification: pd.DataFrame) -> Figure:
    """Each rule's meta-objective with its confidence interval, coloured by kind.

    The neural rule's mean is drawn as a dashed horizontal line, so a discovered equation
    that matches the neural rule sits on it.

    Args:
      verification: ``verification.csv`` as a DataFrame (``rule, kind, objective_mean,
        objective_ci_low, objective_ci_high``).

    Returns:
      The figure.
    """
    with matplotlib.rc_context(style.RC):
        fig, ax = _new_figure()
        n = len(verification)
        pos = np.arange(n)
        mean = verification["objective_mean"].to_numpy(float)
        lo = verification["objective_ci_low"].to_numpy(float)
        hi = verification["objective_ci_high"].to_numpy(float)
        kinds = verification["kind"].astype(str).to_numpy()
        # Rules that made the weights diverge score far below the rest (or -inf); they are
        # drawn as triangles on the lower edge so the interesting range stays readable.
        finite = mean[np.isfinite(mean)]
        floor = -0.1 if finite.size and np.median(finite) > 0 else (finite.min() if finite.size else 0.0)
        below = ~(mean >= floor)
        with np.errstate(invalid="ignore"):
            lo, hi = np.maximum(lo, floor), np.maximum(hi, floor)
        for kind in dict.fromkeys(kinds):
            m = (kinds == kind) & ~below
            yerr = np.vstack([mean[m] - lo[m], hi[m] - mean[m]])
            yerr = np.where(np.isfinite(yerr), np.abs(yerr), 0.0)
            ax.errorbar(
                pos[m], mean[m], yerr=yerr, fmt="o", capsize=3,
                color=style.KIND_COLORS.get(kind, "#777777"), label=kind,
            )
        if below.any():
            ax.plot(pos[below], np.full(below.sum(), floor), "v", color="#777777", label=f"below {floor:g}")
            ax.set_ylim(bottom=floor - 0.05)
        neural = verification.loc[verification["kind"] == "neural", "objective_mean"].astype(float)
        if len(neural) and math.isfinite(float(neural.iloc[0])):
            ax.axhline(float(neural.iloc[0]), color=style.KIND_COLORS["neural"], linestyle="--",
                       linewidth=0.8, label="neural level")
        ax.set_xticks(pos, verification["rule"].astype(str).tolist(), rotation=30, ha="right")
        ax.set_xlim(-0.6, n - 0.4)
        ax.set_xlabel("rule")
        ax.set_ylabel("held-out meta-objective (a.u.)")
        ax.set_title("Verification in the simulator (higher is better)")
        ax.legend(fontsize=7)
    return fig


def figure_bytes(fig: Figure, fmt: str) -> bytes:
    """Render ``fig`` to ``"png"`` or ``"pdf"`` bytes (reproducible PDF metadata)."""
    buf = io.BytesIO()
    metadata = {"CreationDate": None} if fmt == "pdf" else None
    with matplotlib.rc_context(style.RC):
        fig.savefig(buf, format=fmt, dpi=style.DPI, metadata=metadata)
    return buf.getvalue()


def save_figure(fig: Figure, stem: str | os.PathLike) -> list[Path]:
    """Save ``fig`` as ``<stem>.png`` and ``<stem>.pdf``, each atomically.

    Args:
      fig: the figure.
      stem: path without suffix, e.g. ``run_dir / "figures" / "meta_loss"``.

    Returns:
      The two paths, PNG first.
    """
    stem = Path(stem)
    return [
        rundir.atomic_write_bytes(stem.with_suffix(f".{fmt}"), figure_bytes(fig, fmt))
        for fmt in ("png", "pdf")
    ]


#: Figure name -> (loader of its input, drawing function).
FIGURES: dict[str, tuple[Callable[[Path], pd.DataFrame | None], Callable[[pd.DataFrame], Figure]]] = {
    "meta_loss": (rundir.read_meta_history, meta_loss_figure),
    "pareto": (rundir.read_equations, pareto_figure),
    "verification": (rundir.read_verification, verification_figure),
}


def write_figures(run_dir: str | os.PathLike) -> list[Path]:
    """Write ``figures/<name>.png`` and ``.pdf`` for each figure whose input exists.

    Names: ``meta_loss`` (from ``meta_history.csv``), ``pareto`` (``equations.csv``),
    ``verification`` (``verification.csv``). A figure whose input is absent, or has no
    rows, is skipped.

    Args:
      run_dir: the run directory.

    Returns:
      The paths written.

    Raises:
      RunDirectoryError: if an input CSV is malformed.
    """
    run_dir = Path(run_dir)
    written: list[Path] = []
    for name, (load, draw) in FIGURES.items():
        df = load(run_dir)
        if df is None or df.empty:
            continue
        written += save_figure(draw(df), run_dir / "figures" / name)
    return written
