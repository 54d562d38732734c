r"""Figures of a run: meta-training curves, the equation front and the selected equation's
coefficients, the verification and weight trajectories, the comparison, the fit to data,
the classification accuracies.

Each ``*_figure`` function takes one input of the run directory (a DataFrame, or for
``trajectories_figure`` the arrays of ``trajectories.npz``) and returns a
:class:`matplotlib.figure.Figure` drawn in the house style (:mod:`analysis.style`)
without pyplot or a global backend (saving uses Agg for PNG and the PDF backend for
PDF). :func:`write_figures` saves, for every figure whose input file exists,
``figures/<name>.png`` and ``figures/<name>.pdf``, each atomically.

The quantities are dimensionless (losses, objectives and weights in the task's own
units), so their axes say "a.u."; steps are meta-training steps, except on the time axis
of weight trajectories (simulation steps of a rate network, or ms of a spiking one).
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.lines
import matplotlib.ticker
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from . import rundir, style
from .comparison_figures import (
    FREQUENCY_RULE_LABELS,
    comparison_figure,
    comparison_frequency_figure,
    comparison_window_figure,
    runs_figure,
)
from .trajectories import read_trajectories, trajectories_figure


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
        fig, ax = style.new_figure()
        step = history["step"].to_numpy(float)
        loss = history["meta_loss"].to_numpy(float)
        ax.plot(step, loss, color=style.CYCLE[0], label="meta-loss (training)")
        val = history["val_loss"].to_numpy(float) if "val_loss" in history else np.full_like(loss, np.nan)
        has_val = np.isfinite(val)
        if has_val.any():
            ax.plot(step[has_val], val[has_val], "o-", color=style.CYCLE[1], label="validation loss")
        style.set_log_if_positive(ax, np.concatenate([loss, val[has_val]]))
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
        fig, ax = style.new_figure()
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
        style.set_log_if_positive(ax, equations["loss"].to_numpy(float))
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
        fig, ax = style.new_figure()
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


def selected_coefficients(equations: pd.DataFrame) -> tuple[pd.Series, dict[str, dict[str, float]]]:
    """The selected row of ``equations`` and its parsed coefficients (``{}`` when none)."""
    row = rundir.selected_row(equations)
    if "coefficients_parsed" in equations:
        coefs = row["coefficients_parsed"]
    else:
        coefs = rundir.parse_coefficients(row.get("coefficients", ""))
    return row, coefs if isinstance(coefs, dict) else {}


def _xerr(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    err = np.vstack([values - lo, hi - values])
    return np.where(np.isfinite(err), np.abs(err), 0.0)  # no interval recorded: no bar


def coefficients_figure(equations: pd.DataFrame) -> Figure:
    """The selected equation's coefficients with their 95 % confidence intervals.

    One row per term, a horizontal error bar for its interval. When the coefficients were
    refitted on the task (``[distill] refine_steps``), ``value`` is the refit (sandwich
    interval) and the regression on the neural rule's ``dw`` (``fit_value``, bootstrap
    interval) is a second, open marker just below it. A symmetric-log axis is used when the
    coefficients span more than two orders of magnitude.

    Args:
      equations: ``equations.csv`` as :func:`analysis.rundir.read_equations` returns it
        (``selected``, and ``coefficients_parsed`` or ``coefficients``).

    Returns:
      The figure.

    Raises:
      ValueError: if the selected equation records no coefficients.
    """
    row, coefs = selected_coefficients(equations)
    if not coefs:
        raise ValueError("the selected equation of equations.csv records no coefficients; "
                         "rerun `plasticity distill DIR` to write them")
    terms = list(coefs)

    def get(key: str) -> np.ndarray:
        return np.array([coefs[k].get(key, np.nan) for k in terms], np.float64)

    value, lo, hi = get("value"), get("ci_low"), get("ci_high")
    fit, fit_lo, fit_hi = get("fit_value"), get("fit_ci_low"), get("fit_ci_high")
    refit = bool(np.isfinite(fit).any())
    pos = np.arange(len(terms), dtype=float)
    with matplotlib.rc_context(style.RC):
        height = max(style.FIGSIZE[1], 1.2 + 0.35 * len(terms))
        fig = Figure(figsize=(style.FIGSIZE[0], height), layout="constrained")
        ax = fig.add_subplot()
        off = 0.15 if refit else 0.0
        ax.errorbar(value, pos - off, xerr=_xerr(value, lo, hi), fmt="o", capsize=3,
                    color=style.KIND_COLORS["equation"],
                    label="refitted on the task (95 % CI)" if refit else "selected equation (95 % bootstrap CI)")
        if refit:
            m = np.isfinite(fit)
            ax.errorbar(fit[m], pos[m] + off, xerr=_xerr(fit, fit_lo, fit_hi)[:, m], fmt="s", capsize=3,
                        mfc="white", color=style.HIGHLIGHT, label="regression on neural dw (95 % CI)")
        ax.axvline(0.0, color="0.4", linewidth=0.6)
        allv = np.concatenate([value, lo, hi, fit, fit_lo, fit_hi])
        mag = np.abs(allv[np.isfinite(allv) & (allv != 0)])
        if mag.size and mag.max() / mag.min() > 100:  # linear near 0 down to the smallest coefficient
            small = np.abs(value[np.isfinite(value) & (value != 0)])
            ax.set_xscale("symlog", linthresh=float((small if small.size else mag).min()))
        else:  # few ticks, so that small coefficients (e.g. 0.0075) stay legible
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(5))
        ax.set_yticks(pos, [style.term_label(t) for t in terms])
        ax.set_ylim(len(terms) - 0.5, -0.5)  # first term on top
        ax.set_xlabel("coefficient (Δw per step per unit of the term, a.u.)")
        ax.set_ylabel("term")
        ax.set_title(f"Coefficients of the selected equation (eq{row['id']})")
        ax.legend(loc="best", fontsize=7)
    return fig


#: At most this many published fits are drawn in the fit-to-data figure.
MAX_PUBLISHED = 4

#: Line styles of the published fits (thin, dashed) and markers on the non-pairing panel.
_PUBLISHED_DASHES = ((0, (5, 2)), (0, (1, 1.5)), (0, (6, 2, 1.5, 2)), (0, (9, 2, 1.5, 2, 1.5, 2)))
_PUBLISHED_MARKERS = ("s", "^", "v", "D")


def published_columns(data: pd.DataFrame) -> list[str]:
    """The ``dw_<name>`` columns of ``data_fit.csv`` that hold published fits, in file order
    (every model column except ``dw_neural`` and ``dw_selected``)."""
    return [c for c in data.columns if c.startswith("dw_") and c not in ("dw_neural", "dw_selected")]


def published_label(name: str, others: Sequence[str] = ()) -> str:
    """A short legend label for a published fit: ``"pg2006_visual_all_to_all_minimal"`` ->
    ``"P&G all-to-all minimal"``.

    The preparation (``visual``, ``hippocampal``) is dropped when every name in ``others``
    shares it; names not of Pfister & Gerstner 2006 are returned as they are.
    """
    name = name.removeprefix("dw_")
    if not name.startswith("pg2006_"):
        return name
    rest = name.removeprefix("pg2006_")
    prep, _, tail = rest.partition("_")
    preps = {o.removeprefix("dw_").removeprefix("pg2006_").partition("_")[0] for o in others} | {prep}
    text = (tail if len(preps) == 1 and tail else rest).replace("all_to_all", "all-to-all").replace("_", " ")
    return f"P&G {text}"


def pairing_axis(part: pd.DataFrame) -> str:
    """``"freq_hz"`` when the pairings span several frequencies, else ``"lag_ms"`` (a window)."""
    return "freq_hz" if part["freq_hz"].nunique() > 1 or part["lag_ms"].nunique() <= 1 else "lag_ms"


def data_fit_figure(data: pd.DataFrame) -> Figure:
    r"""The measured weight changes beside the selected equation and the published fits.

    Pairing experiments (finite ``lag_ms``): ``dw`` against pairing frequency (log axis),
    one colour per lag ``t_post - t_pre``; the data as points with error bars of the SEM
    the fit used (``sigma``; open points where the data give no SEM and the task's
    default is used), the selected equation as solid lines, the published fits (at most
    :data:`MAX_PUBLISHED`) as thin dashed lines, one dash pattern each. Pairings at a
    single frequency are drawn against the lag instead (an STDP window). Other
    experiments (triplets...) get a second panel with one position per row, labelled by
    its ``label``: the data with error bars, the selected equation and the published fits
    as markers. A data set with only one kind of experiment gets one panel.

    Args:
      data: ``data_fit.csv`` as :func:`analysis.rundir.read_data_fit` returns it
        (``label, freq_hz, lag_ms, dw, sem, sigma`` and the model columns
        ``dw_selected``, ``dw_pg2006_<set>``).

    Returns:
      The figure.

    Example::

      >>> df = pd.DataFrame({"label": ["+10 ms at 1 Hz", "+10 ms at 20 Hz"], "freq_hz": [1.0, 20.0],
      ...                    "lag_ms": [10.0, 10.0], "dw": [0.0, 0.3], "sem": [0.05, 0.1],
      ...                    "sigma": [0.05, 0.1], "dw_selected": [0.01, 0.28]})
      >>> fig = data_fit_figure(df)
    """
    lag = data["lag_ms"].to_numpy(float)
    pairing, other = data[np.isfinite(lag)], data[~np.isfinite(lag)]
    published = published_columns(data)[:MAX_PUBLISHED]
    labels = {c: published_label(c, published) for c in published}
    has_selected = "dw_selected" in data.columns
    with matplotlib.rc_context(style.RC):
        panels = [p for p in (pairing, other) if len(p)] or [data]
        widths = [1.0] + ([max(0.6, 0.12 * len(other))] if len(panels) == 2 else [])
        fig = Figure(figsize=(style.FIGSIZE[0] * (1.0 + 0.6 * (len(panels) - 1)), style.FIGSIZE[1] + 0.5),
                     layout="constrained")
        axes = fig.subplots(1, len(panels), width_ratios=widths, squeeze=False)[0]
        if len(pairing):
            _pairing_panel(axes[0], pairing, published, labels, has_selected)
        if len(other):
            _other_panel(axes[-1], other, published, labels, has_selected, first=not len(pairing))
    return fig


def _data_points(ax, x, part: pd.DataFrame, color: str, legend: bool = False) -> None:
    """Measured ``dw`` with error bars of ``sigma``; open where the data give no SEM."""
    measured = np.isfinite(part["sem"].to_numpy(float))
    y, err = part["dw"].to_numpy(float), part["sigma"].to_numpy(float)
    for m, face, text in ((measured, color, "data (SEM)"), (~measured, "white", "data (default SEM)")):
        text = text if legend else None
        if m.any():
            ax.errorbar(x[m], y[m], yerr=err[m], fmt="o", capsize=2.5, color=color, mfc=face, zorder=4, label=text)


def _pairing_panel(ax, part: pd.DataFrame, published, labels, has_selected: bool) -> None:
    axis = pairing_axis(part)
    group = "lag_ms" if axis == "freq_hz" else "freq_hz"
    values = sorted(dict.fromkeys(part[group].astype(float)), reverse=True)
    handles = []
    for i, v in enumerate(values):
        color = style.CYCLE[i % len(style.CYCLE)]
        sub = part[part[group].astype(float) == v].sort_values(axis, kind="stable")
        x = sub[axis].to_numpy(float)
        name = f"t_post - t_pre = {v:+g} ms" if group == "lag_ms" else f"{v:g} Hz"
        _data_points(ax, x, sub, color)
        handles.append(matplotlib.lines.Line2D([], [], color=color, marker="o", linestyle="none", label=name))
        if has_selected:
            ax.plot(x, sub["dw_selected"].to_numpy(float), "-", color=color, linewidth=1.6, zorder=3)
        for j, col in enumerate(published):
            ax.plot(x, sub[col].to_numpy(float), color=color, linewidth=0.8, alpha=0.8, zorder=2,
                    linestyle=_PUBLISHED_DASHES[j % len(_PUBLISHED_DASHES)])
    if has_selected:
        handles.append(matplotlib.lines.Line2D([], [], color="0.2", linewidth=1.6, label="selected equation"))
    handles += [matplotlib.lines.Line2D([], [], color="0.3", linewidth=0.8,
                                        linestyle=_PUBLISHED_DASHES[j % len(_PUBLISHED_DASHES)], label=labels[c])
                for j, c in enumerate(published)]
    x = part[axis].to_numpy(float)
    if axis == "freq_hz" and (x > 0).all():
        ax.set_xscale("log")
        ax.set_xlim(x.min() / 1.5, x.max() * 1.5)
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_xlabel("pairing frequency (Hz)")
    else:
        ax.set_xlabel("t_post - t_pre (ms)" if axis == "lag_ms" else "pairing frequency (Hz)")
    ax.axhline(0.0, color="0.6", linewidth=0.6)
    ax.set_ylabel("Δw (fractional change)")
    ax.set_title("Pairings" + (" against frequency" if axis == "freq_hz" else " (STDP window)"))
    ax.legend(handles=handles, loc="best", fontsize=6.5)


def _other_panel(ax, part: pd.DataFrame, published, labels, has_selected: bool, first: bool) -> None:
    pos = np.arange(len(part), dtype=float)
    n = len(published) + has_selected
    _data_points(ax, pos - (0.2 if n else 0.0), part, "0.1", legend=True)
    offsets = -0.05 + np.arange(n) * (0.3 / max(n - 1, 1))  # the models side by side, right of the data
    k = 0
    if has_selected:
        ax.plot(pos + offsets[k], part["dw_selected"].to_numpy(float), "D", color=style.KIND_COLORS["equation"],
                markersize=4, linestyle="none", label="selected equation", zorder=3)
        k += 1
    for j, col in enumerate(published):
        ax.plot(pos + offsets[k], part[col].to_numpy(float), _PUBLISHED_MARKERS[j % len(_PUBLISHED_MARKERS)],
                color="0.45", mfc="white", markersize=3.5, linestyle="none", label=labels[col], zorder=2)
        k += 1
    ax.axhline(0.0, color="0.6", linewidth=0.6)
    ax.set_xticks(pos, part["label"].astype(str).tolist(), rotation=40, ha="right", fontsize=6.5)
    ax.set_xlim(-0.6, len(part) - 0.4)
    if first:
        ax.set_ylabel("Δw (fractional change)")
    ax.set_title("Other protocols")
    ax.legend(loc="best", fontsize=6.5)


def _method_color(method: str) -> str:
    """Colour of a method of ``classification.csv``: the rules as in verification, baselines orange."""
    return style.KIND_COLORS.get(method, style.KIND_COLORS["canonical"])


def chance_accuracy(config: dict[str, Any]) -> float | None:
    """Chance query accuracy of a classification task, ``1 / ways``, from ``config.toml``.

    Only ``few_shot`` says how many classes an episode has (``[task] n_post``, one output
    per class); other tasks give ``None``.
    """
    task = config.get("task", {})
    if not isinstance(task, dict) or task.get("name") != "few_shot":
        return None
    ways = task.get("n_post")
    return 1.0 / ways if isinstance(ways, int) and ways > 0 else None


def classification_figure(classification: pd.DataFrame, chance: float | None = None) -> Figure:
    """Query accuracy on held-out classes per method: horizontal bars with 95 % t-intervals.

    One bar per row of ``classification.csv`` in file order, first on top; the
    meta-learned rule black, the distilled equation blue, baselines orange. A dashed
    vertical line marks chance, ``chance`` or else ``classification.attrs["chance"]``
    (set by :func:`_classification_with_chance`), when known.

    Args:
      classification: :func:`analysis.rundir.read_classification`'s table (``method,
        accuracy_mean, ci_low, ci_high``; fractions).
      chance: the chance accuracy (a fraction), or ``None``.

    Returns:
      The figure.

    Example::

      >>> df = pd.DataFrame({"method": ["equation", "backprop"], "accuracy_mean": [0.5, 0.6],
      ...                    "ci_low": [0.48, 0.58], "ci_high": [0.52, 0.62]})
      >>> fig = classification_figure(df, chance=0.2)
    """
    if chance is None:
        chance = classification.attrs.get("chance")
    methods = classification["method"].astype(str).tolist()
    mean = 100 * classification["accuracy_mean"].to_numpy(float)
    lo = 100 * classification["ci_low"].to_numpy(float)
    hi = 100 * classification["ci_high"].to_numpy(float)
    pos = np.arange(len(methods), dtype=float)
    with matplotlib.rc_context(style.RC):
        height = max(style.FIGSIZE[1], 1.0 + 0.3 * len(methods))
        fig = Figure(figsize=(style.FIGSIZE[0], height), layout="constrained")
        ax = fig.add_subplot()
        ax.barh(pos, np.nan_to_num(mean), xerr=_xerr(mean, lo, hi), height=0.6, capsize=3,
                color=[_method_color(m) for m in methods], error_kw={"elinewidth": 0.9, "ecolor": "0.3"})
        if chance:
            ax.axvline(100 * chance, color="0.3", linestyle="--", linewidth=0.9, label="chance")
            ax.legend(loc="lower right", fontsize=7)
        ax.set_yticks(pos, methods)
        ax.set_ylim(len(methods) - 0.5, -0.5)  # first method on top
        ax.set_xlim(0, 100)
        ax.grid(axis="y", visible=False)
        ax.set_xlabel("query accuracy on held-out classes (%)")
        ax.set_ylabel("method")
        ax.set_title("Classification of held-out classes (mean, 95 % t-interval)")
    return fig


def _classification_with_chance(run_dir: Path) -> pd.DataFrame | None:
    """``classification.csv`` with the task's chance accuracy in ``attrs["chance"]`` (or ``None``)."""
    df = rundir.read_classification(run_dir)
    if df is not None:
        df.attrs["chance"] = chance_accuracy(rundir.read_config(run_dir)[0])
    return df


def _selected_with_coefficients(run_dir: Path) -> pd.DataFrame | None:
    """``equations.csv`` when its selected equation records coefficients, else ``None``.

    :func:`analysis.rundir.read_equations` marks the run's pick
    (:func:`discover.io.selected_equation`)."""
    equations = rundir.read_equations(run_dir)
    if equations is None or equations.empty or not selected_coefficients(equations)[1]:
        return None
    return equations


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
    from discover.io import atomic_write_bytes

    return [atomic_write_bytes(stem.with_suffix(f".{fmt}"), figure_bytes(fig, fmt)) for fmt in ("png", "pdf")]


#: Figure name -> (loader of its input, drawing function). A loader returns ``None`` (or
#: an empty DataFrame) when the figure has nothing to show.
FIGURES: dict[str, tuple[Callable[[Path], Any], Callable[[Any], Figure]]] = {
    "meta_loss": (rundir.read_meta_history, meta_loss_figure),
    "pareto": (rundir.read_equations, pareto_figure),
    "coefficients": (_selected_with_coefficients, coefficients_figure),
    "verification": (rundir.read_verification, verification_figure),
    "trajectories": (read_trajectories, trajectories_figure),
    "comparison": (rundir.read_comparison, comparison_figure),
    "comparison_window": (rundir.read_comparison_windows, comparison_window_figure),
    "comparison_frequency": (rundir.read_comparison_frequency, comparison_frequency_figure),
    "data_fit": (rundir.read_data_fit, data_fit_figure),
    "classification": (_classification_with_chance, classification_figure),
}


def write_figures(run_dir: str | os.PathLike) -> list[Path]:
    """Write ``figures/<name>.png`` and ``.pdf`` for each figure whose input exists.

    Names: ``meta_loss`` (from ``meta_history.csv``), ``pareto`` (``equations.csv``),
    ``coefficients`` (``equations.csv``, when the selected equation records
    coefficients), ``verification`` (``verification.csv``), ``trajectories``
    (``trajectories.npz``), ``comparison`` (``comparison.csv``), ``comparison_window``
    (``comparison_windows.csv``, spiking rules), ``comparison_frequency``
    (``comparison_frequency.csv``, spiking rules), ``data_fit`` (``data_fit.csv``, tasks
    fitted to measured data), ``classification`` (``classification.csv``, ``few_shot``). A
    figure whose input is absent, or has no rows, is skipped.

    Args:
      run_dir: the run directory.

    Returns:
      The paths written.

    Raises:
      RunDirError: if an input CSV is malformed.
    """
    run_dir = Path(run_dir)
    written: list[Path] = []
    for name, (load, draw) in FIGURES.items():
        df = load(run_dir)
        if df is None or (isinstance(df, pd.DataFrame) and df.empty):
            continue
        written += save_figure(draw(df), run_dir / "figures" / name)
    return written


__all__ = ["meta_loss_figure", "pareto_figure", "verification_figure", "coefficients_figure", "selected_coefficients",
           "trajectories_figure", "comparison_figure", "comparison_window_figure", "comparison_frequency_figure",
           "runs_figure", "data_fit_figure", "classification_figure", "chance_accuracy", "published_columns",
           "published_label", "pairing_axis", "MAX_PUBLISHED", "FREQUENCY_RULE_LABELS", "figure_bytes", "save_figure",
           "FIGURES", "write_figures"]
