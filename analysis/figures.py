r"""Figures of a run: meta-training curves, the equation front and the selected equation's
coefficients, the verification and weight trajectories, the comparison.

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
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.lines
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


_SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def term_label(term: str) -> str:
    """A monomial as readable text: ``"w*y**2"`` -> ``"w·y²"`` (no mathtext needed)."""
    import re

    text = re.sub(r"\*\*(\d+)", lambda m: m.group(1).translate(_SUPERSCRIPTS), str(term))
    return text.replace("*", "·")


def _coefficients(cell: object) -> dict[str, float]:
    import json

    text = str(cell or "").strip()
    if not text or text.lower() == "nan":
        return {}
    return {str(k): float(v) for k, v in json.loads(text).items()}


def comparison_figure(comparison: pd.DataFrame) -> Figure:
    """Normalized coefficients of the selected equation beside those of the closest canonical rule.

    Horizontal bars, one pair per term of either rule (a term absent from a rule is 0
    there); coefficients are divided by each rule's largest absolute coefficient.

    Args:
      comparison: ``comparison.csv`` as a DataFrame (``canonical, closest,
        coefficients_equation, coefficients_canonical`` and optionally ``coef_distance``).

    Returns:
      The figure.
    """
    with matplotlib.rc_context(style.RC):
        fig, ax = _new_figure()
        best = comparison[comparison["closest"].astype(bool)]
        row = best.iloc[0] if len(best) else comparison.iloc[0]
        eq = _coefficients(row.get("coefficients_equation", ""))
        can = _coefficients(row.get("coefficients_canonical", ""))
        terms = list(dict.fromkeys([*eq, *can]))
        pos = np.arange(len(terms))
        h = 0.38
        ax.barh(pos - h / 2, [eq.get(t, 0.0) for t in terms], height=h, color=style.KIND_COLORS["equation"],
                label="selected equation")
        name = str(row["canonical"])
        ax.barh(pos + h / 2, [can.get(t, 0.0) for t in terms], height=h, color=style.KIND_COLORS["canonical"],
                label=f"{name} (published)")
        ax.axvline(0.0, color="0.4", linewidth=0.6)
        ax.set_yticks(pos, [term_label(t) for t in terms])
        ax.invert_yaxis()
        ax.set_xlim(-1.15, 1.15)
        ax.set_xlabel("coefficient / largest |coefficient|")
        dist = row.get("coef_distance", float("nan"))
        extra = f" (d_coef = {float(dist):.3g})" if dist == dist else ""
        ax.set_title(f"Closest canonical rule: {name}{extra}")
        ax.legend(loc="best", fontsize=7)
    return fig


def comparison_window_figure(windows: pd.DataFrame) -> Figure:
    """Normalized STDP pairing windows of the equation, the neural rule, the teacher and the
    canonical rules, one panel per protocol.

    Args:
      windows: ``comparison_windows.csv`` as a DataFrame (``rule, protocol, dt_ms,
        dw_normalized``); the rule named ``equation`` is drawn solid and on top, the
        ``teacher`` as a wide light band under it, ``neural`` in its house colour.

    Returns:
      The figure.
    """
    with matplotlib.rc_context(style.RC):
        protocols = list(dict.fromkeys(windows["protocol"].astype(str)))
        fig = Figure(figsize=(style.FIGSIZE[0] * 1.6, style.FIGSIZE[1]), layout="constrained")
        axes = fig.subplots(1, len(protocols), squeeze=False)[0]
        rules = list(dict.fromkeys(windows["rule"].astype(str)))
        rules = [r for r in rules if r == "equation"] + [r for r in rules if r != "equation"]
        reserved = {style.KIND_COLORS[r] for r in FREQUENCY_RULE_LABELS}
        palette = [c for c in style.CYCLE if c not in reserved] or list(style.CYCLE)
        styles, k = {}, 0
        for rule in rules:
            if rule == "teacher":
                styles[rule] = ("-", {"color": style.KIND_COLORS[rule], "linewidth": 3.5, "alpha": 0.45, "zorder": 1})
            elif rule in FREQUENCY_RULE_LABELS:
                mine = rule == "equation"
                styles[rule] = ("o-" if mine else "-", {"color": style.KIND_COLORS[rule], "zorder": 3 if mine else 2,
                                                        "markersize": 3, "linewidth": 1.2})
            else:
                styles[rule] = ("--", {"color": palette[k % len(palette)], "zorder": 2, "linewidth": 1.0})
                k += 1
        for ax, protocol in zip(axes, protocols):
            part = windows[windows["protocol"].astype(str) == protocol]
            ax.axhline(0.0, color="0.6", linewidth=0.6)
            ax.axvline(0.0, color="0.6", linewidth=0.6)
            for rule in rules:
                sub = part[part["rule"].astype(str) == rule].sort_values("dt_ms")
                x, y = sub["dt_ms"].to_numpy(float), sub["dw_normalized"].to_numpy(float)
                fmt, kw = styles[rule]
                label = FREQUENCY_RULE_LABELS.get(rule, rule)
                for m in (x < 0, x >= 0):  # the window jumps at 0: draw the two branches apart
                    if m.any():
                        ax.plot(x[m], y[m], fmt, label=label, **kw)
                        label = None
            ax.set_xlabel("t_post - t_pre (ms)")
            ax.set_title(protocol)
        axes[0].set_ylabel("Δw / max |Δw|")
        axes[0].legend(fontsize=7)
    return fig


#: Legend labels of the non-canonical rules of ``comparison_frequency.csv``.
FREQUENCY_RULE_LABELS: dict[str, str] = {"equation": "selected equation", "neural": "neural rule",
                                         "teacher": "teacher"}


def _lag_style(lag: float) -> str:
    return "-" if lag > 0 else ("--" if lag < 0 else ":")


def comparison_frequency_figure(frequency: pd.DataFrame) -> Figure:
    r"""Weight change against pairing frequency (Sjöström et al. 2001) for each rule.

    Two panels: ``Δw`` after the protocol's pairings, and the same divided by each rule's
    largest ``|Δw|`` (the curves :func:`analysis.compare.frequency_distance` compares).
    One colour per rule (the selected equation, the neural rule and the teacher in their
    house colours, the teacher as a wide light band; canonical rules in the other colours
    of the cycle); solid lines: ``t_post - t_pre > 0`` (pre before post, +10 ms), dashed:
    ``< 0`` (-10 ms).

    Args:
      frequency: ``comparison_frequency.csv`` as a DataFrame (``rule, freq_hz, lag_ms, dw``).

    Returns:
      The figure.
    """
    with matplotlib.rc_context(style.RC):
        fig = Figure(figsize=(style.FIGSIZE[0] * 1.6, style.FIGSIZE[1] + 0.3), layout="constrained")
        ax_raw, ax_norm = fig.subplots(1, 2)
        rules = list(dict.fromkeys(frequency["rule"].astype(str)))
        lags = sorted(dict.fromkeys(frequency["lag_ms"].astype(float)), reverse=True)
        handles = []
        k = 0
        reserved = {style.KIND_COLORS[r] for r in FREQUENCY_RULE_LABELS}
        palette = [c for c in style.CYCLE if c not in reserved] or list(style.CYCLE)
        for rule in rules:
            part = frequency[frequency["rule"].astype(str) == rule]
            dw = part["dw"].to_numpy(float)
            finite = np.abs(dw[np.isfinite(dw)])
            scale = float(finite.max()) if finite.size and finite.max() > 0 else math.nan
            if rule in FREQUENCY_RULE_LABELS:
                color = style.KIND_COLORS[rule]
            else:
                color = palette[k % len(palette)]
                k += 1
            if rule == "teacher":  # a wide, light band under the rules that should match it
                kw = {"color": color, "linewidth": 3.5, "alpha": 0.45, "zorder": 1}
            else:
                mine = rule == "equation"
                kw = {"color": color, "linewidth": 1.8 if mine else 1.2, "zorder": 3 if mine else 2,
                      "marker": "o", "markersize": 3}
            for lag in lags:
                sub = part[part["lag_ms"].astype(float) == lag].sort_values("freq_hz")
                f, y = sub["freq_hz"].to_numpy(float), sub["dw"].to_numpy(float)
                ax_raw.plot(f, y, linestyle=_lag_style(lag), **kw)
                ax_norm.plot(f, y / scale, linestyle=_lag_style(lag), **kw)
            handles.append(matplotlib.lines.Line2D([], [], color=color, linewidth=kw["linewidth"],
                                                   alpha=kw.get("alpha", 1.0),
                                                   label=FREQUENCY_RULE_LABELS.get(rule, rule)))
        handles += [matplotlib.lines.Line2D([], [], color="0.3", linestyle=_lag_style(lag), linewidth=1.2,
                                            label=f"t_post - t_pre = {lag:+g} ms") for lag in lags]
        for ax in (ax_raw, ax_norm):
            ax.axhline(0.0, color="0.6", linewidth=0.6)
            ax.set_xlabel("pairing frequency (Hz)")
        ax_raw.set_ylabel("Δw after the pairings (units of w_max)")
        ax_raw.set_title("Weight change (from w = 1, unclipped)")
        ax_norm.set_ylabel("Δw / max |Δw| (per rule)")
        ax_norm.set_title("Normalized per rule")
        ax_norm.set_ylim(-1.1, 1.1)
        fig.legend(handles=handles, loc="outside lower center", ncol=4, fontsize=7)
    return fig


def runs_figure(runs: pd.DataFrame) -> Figure:
    """Several runs side by side: normalized coefficients of each selected equation, and verification.

    Left: grouped bars of the normalized coefficients (``coef[TERM]`` columns), one colour
    per run. Right: each selected equation's held-out objective relative to its run's
    neural rule, with the interval when known; a dashed line at 1.

    Args:
      runs: :func:`analysis.compare.runs_table` (``run``, ``coef[...]``,
        ``relative_to_neural``, ``relative_ci_low``, ``relative_ci_high``).

    Returns:
      The figure.
    """
    with matplotlib.rc_context(style.RC):
        fig = Figure(figsize=(style.FIGSIZE[0] * 2, style.FIGSIZE[1] + 0.3), layout="constrained")
        ax, ax2 = fig.subplots(1, 2, width_ratios=[2, 1])
        coef_cols = [c for c in runs.columns if c.startswith("coef[")]
        terms = [c[5:-1] for c in coef_cols]
        n = len(runs)
        width = 0.8 / max(n, 1)
        pos = np.arange(len(terms))
        colors = [style.CYCLE[i % len(style.CYCLE)] for i in range(n)]
        for i, (_, row) in enumerate(runs.iterrows()):
            values = [float(row[c]) if row[c] == row[c] else 0.0 for c in coef_cols]
            ax.bar(pos - 0.4 + width * (i + 0.5), values, width=width, color=colors[i], label=str(row["run"]))
        ax.axhline(0.0, color="0.4", linewidth=0.6)
        ax.set_xticks(pos, [term_label(t) for t in terms], rotation=30 if len(terms) > 4 else 0,
                      ha="right" if len(terms) > 4 else "center")
        ax.set_ylim(-1.15, 1.15)
        ax.set_xlabel("term")
        ax.set_ylabel("coefficient / largest |coefficient|")
        ax.set_title("Selected equation per run")
        ax.legend(fontsize=7)
        rel = runs["relative_to_neural"].to_numpy(float)
        lo = runs.get("relative_ci_low", pd.Series(np.nan, index=runs.index)).to_numpy(float)
        hi = runs.get("relative_ci_high", pd.Series(np.nan, index=runs.index)).to_numpy(float)
        x = np.arange(n)
        for i in range(n):
            if np.isfinite(rel[i]):
                err = None
                if np.isfinite(lo[i]) and np.isfinite(hi[i]):
                    err = [[max(rel[i] - lo[i], 0.0)], [max(hi[i] - rel[i], 0.0)]]
                ax2.errorbar([x[i]], [rel[i]], yerr=err, fmt="o", capsize=3, color=colors[i])
            else:
                ax2.annotate("n/a", (x[i], 1.0), ha="center", va="bottom", fontsize=7, color="0.4")
        ax2.axhline(1.0, color=style.KIND_COLORS["neural"], linestyle="--", linewidth=0.8, label="neural rule")
        ax2.set_xticks(x, runs["run"].astype(str).tolist(), rotation=30, ha="right")
        ax2.set_xlim(-0.6, n - 0.4)
        ax2.set_ylabel("objective relative to neural")
        ax2.set_title("Verification")
        ax2.legend(fontsize=7)
    return fig

#: A colour per synapse of the trajectories figure: the Okabe & Ito palette (yellow left out).
SYNAPSE_COLORS: tuple[str, ...] = (*style.CYCLE, "#000000", "#999999")


def _with_start(t: np.ndarray, w0: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Prepend the initial weights at ``t = 0`` to a recorded trajectory ``[R, S]``."""
    W = np.asarray(W, np.float64)
    W = np.where(np.isfinite(W), W, np.nan)  # a diverged rule: the line stops where it blows up
    return np.concatenate([[0.0], t]), np.vstack([w0[None, :], W])


def trajectories_figure(trajectories: Mapping[str, Any]) -> Figure:
    r"""Weights against time over one held-out episode: teacher, neural rule, selected equation.

    One colour per synapse (at most 8): the teacher's trajectory solid, the neural rule's
    dashed, the selected equation's dotted, each from the initial weight at ``t = 0``.
    For ``oja_pca`` (``pc1`` present) two panels instead: the alignment
    :math:`\cos^2(w, \mathrm{pc}_1) = (w \cdot \mathrm{pc}_1)^2 / |w|^2` and the norm
    :math:`|w|` against time, for the neural rule (dashed) and the equation (dotted), with
    Oja's fixed point (alignment 1, norm 1) as a thin line.

    Args:
      trajectories: ``trajectories.npz`` as :func:`analysis.rundir.read_trajectories`
        returns it (``t, time_unit, synapses, W0, W_neural`` and optionally
        ``W_selected, W_teacher, pc1, selected_id``).

    Returns:
      The figure.

    Example::

      >>> t = np.arange(1, 11.0)
      >>> fig = trajectories_figure({"t": t, "W0": np.array([0.5]), "synapses": np.array([[0, 0]]),
      ...                            "W_neural": 0.5 + 0.01 * t[:, None], "time_unit": "steps"})
    """
    tr = trajectories
    t = np.asarray(tr["t"], np.float64)
    w0 = np.asarray(tr["W0"], np.float64).ravel()
    unit = str(tr.get("time_unit", "steps"))
    sel_id = str(tr.get("selected_id", "") or "")
    sel_label = f"selected equation (eq{sel_id})" if sel_id else "selected equation"
    with matplotlib.rc_context(style.RC):
        if "pc1" in tr:
            return _oja_trajectories(tr, t, w0, unit, sel_label)
        fig, ax = _new_figure()
        kept: list[np.ndarray] = []
        styles = [("W_teacher", "-", "teacher"), ("W_neural", "--", "neural rule"), ("W_selected", ":", sel_label)]
        for key, ls, _ in styles:
            if key not in tr:
                continue
            tt, W = _with_start(t, w0, tr[key])
            if key != "W_selected":
                kept.append(W)
            for j in range(W.shape[1]):
                ax.plot(tt, W[:, j], linestyle=ls, color=SYNAPSE_COLORS[j % len(SYNAPSE_COLORS)],
                        linewidth=1.8 if ls == ":" else 1.2)
        # A diverged equation must not flatten the lines that matter: keep the view on the
        # teacher and the neural rule, and say so when the equation leaves it.
        ref = np.concatenate([k[np.isfinite(k)] for k in kept]) if kept else np.array([])
        if ref.size and "W_selected" in tr:
            lo, hi = float(ref.min()), float(ref.max())
            pad = max(0.25 * (hi - lo), 1e-3 * max(abs(lo), abs(hi), 1e-12))
            sel = np.asarray(tr["W_selected"], np.float64)
            if not (np.isfinite(sel).all() and sel.min() >= lo - pad and sel.max() <= hi + pad):
                ax.set_ylim(lo - pad, hi + pad)
                ax.annotate("selected equation leaves the plotted range", xy=(0.02, 0.02),
                            xycoords="axes fraction", fontsize=7, color="0.35")
        handles = [matplotlib.lines.Line2D([], [], color="0.3", linestyle=ls, linewidth=1.8 if ls == ":" else 1.2,
                                           label=label) for key, ls, label in styles if key in tr]
        ax.legend(handles=handles, loc="best", fontsize=7)
        ax.set_xlabel(f"time ({unit})")
        ax.set_ylabel("w (a.u.)")
        n = len(w0)
        ax.set_title(f"Weight trajectories, held-out episode ({n} synapse{'s' if n != 1 else ''})")
    return fig


def _oja_trajectories(tr: Mapping[str, Any], t: np.ndarray, w0: np.ndarray, unit: str, sel_label: str) -> Figure:
    fig = Figure(figsize=(style.FIGSIZE[0] * 1.6, style.FIGSIZE[1]), layout="constrained")
    ax_cos, ax_norm = fig.subplots(1, 2)
    pc1 = np.asarray(tr["pc1"], np.float64).ravel()
    if "synapses" in tr and len(pc1) != len(w0):
        pc1 = pc1[np.asarray(tr["synapses"])[:, 1]]  # the kept synapses' components
    for key, ls, color, label in (("W_neural", "--", style.KIND_COLORS["neural"], "neural rule"),
                                  ("W_selected", ":", style.KIND_COLORS["equation"], sel_label)):
        if key not in tr:
            continue
        tt, W = _with_start(t, w0, tr[key])
        norm = np.linalg.norm(W, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            cos2 = (W @ pc1) ** 2 / (norm**2 * (pc1 @ pc1))
        lw = 1.8 if ls == ":" else 1.2
        ax_cos.plot(tt, cos2, linestyle=ls, color=color, linewidth=lw, label=label)
        ax_norm.plot(tt, norm, linestyle=ls, color=color, linewidth=lw, label=label)
    for ax in (ax_cos, ax_norm):
        ax.axhline(1.0, color="0.6", linewidth=0.6)
        ax.set_xlabel(f"time ({unit})")
    ax_cos.set_ylim(-0.03, 1.05)
    ax_cos.set_ylabel("cos² (w, PC1)")
    ax_cos.set_title("Alignment with the first principal component")
    ax_norm.set_ylabel("|w| (a.u.)")
    ax_norm.set_title("Weight norm")
    ax_cos.legend(loc="lower right", fontsize=7)
    return fig


def selected_coefficients(equations: pd.DataFrame) -> tuple[pd.Series, dict[str, dict[str, float]]]:
    """The selected row of ``equations`` and its parsed coefficients (``{}`` when none)."""
    sel = equations[equations["selected"].astype(bool)]
    row = sel.iloc[0] if len(sel) else equations.iloc[0]
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
        ax.set_yticks(pos, [term_label(t) for t in terms])
        ax.set_ylim(len(terms) - 0.5, -0.5)  # first term on top
        ax.set_xlabel("coefficient (Δw per step per unit of the term, a.u.)")
        ax.set_ylabel("term")
        ax.set_title(f"Coefficients of the selected equation (eq{row['id']})")
        ax.legend(loc="best", fontsize=7)
    return fig


def _selected_with_coefficients(run_dir: Path) -> pd.DataFrame | None:
    """``equations.csv`` when its selected equation records coefficients, else ``None``."""
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
    return [
        rundir.atomic_write_bytes(stem.with_suffix(f".{fmt}"), figure_bytes(fig, fmt))
        for fmt in ("png", "pdf")
    ]


#: Figure name -> (loader of its input, drawing function). A loader returns ``None`` (or
#: an empty DataFrame) when the figure has nothing to show.
FIGURES: dict[str, tuple[Callable[[Path], Any], Callable[[Any], Figure]]] = {
    "meta_loss": (rundir.read_meta_history, meta_loss_figure),
    "pareto": (rundir.read_equations, pareto_figure),
    "coefficients": (_selected_with_coefficients, coefficients_figure),
    "verification": (rundir.read_verification, verification_figure),
    "trajectories": (rundir.read_trajectories, trajectories_figure),
    "comparison": (rundir.read_comparison, comparison_figure),
    "comparison_window": (rundir.read_comparison_windows, comparison_window_figure),
    "comparison_frequency": (rundir.read_comparison_frequency, comparison_frequency_figure),
}


def write_figures(run_dir: str | os.PathLike) -> list[Path]:
    """Write ``figures/<name>.png`` and ``.pdf`` for each figure whose input exists.

    Names: ``meta_loss`` (from ``meta_history.csv``), ``pareto`` (``equations.csv``),
    ``coefficients`` (``equations.csv``, when the selected equation records
    coefficients), ``verification`` (``verification.csv``), ``trajectories``
    (``trajectories.npz``), ``comparison`` (``comparison.csv``), ``comparison_window``
    (``comparison_windows.csv``, spiking rules), ``comparison_frequency``
    (``comparison_frequency.csv``, spiking rules). A figure whose input is absent, or has
    no rows, is skipped.

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
        if df is None or (isinstance(df, pd.DataFrame) and df.empty):
            continue
        written += save_figure(draw(df), run_dir / "figures" / name)
    return written
