"""Figures of the comparison: the selected equation against canonical rules, and several runs.

Each function takes a DataFrame of the run directory (``comparison.csv``,
``comparison_windows.csv``, ``comparison_frequency.csv``) or of ``plasticity compare``
(:func:`analysis.runs.runs_table`) and returns a :class:`matplotlib.figure.Figure` in the
house style (:mod:`analysis.style`), without pyplot.
"""

from __future__ import annotations

import json
import math

import matplotlib
import matplotlib.lines
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from . import style


def _coefficients(cell: object) -> dict[str, float]:
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
        fig, ax = style.new_figure()
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
        ax.set_yticks(pos, [style.term_label(t) for t in terms])
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
        ax.set_xticks(pos, [style.term_label(t) for t in terms], rotation=30 if len(terms) > 4 else 0,
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


__all__ = ["comparison_figure", "comparison_window_figure", "comparison_frequency_figure", "runs_figure",
           "FREQUENCY_RULE_LABELS"]
