r"""Spike-pairing protocols: the STDP window and its frequency dependence, for any rule.

The classic plasticity experiments (Bi & Poo 1998; Sjöström, Turrigiano & Nelson 2001)
impose spike times on one presynaptic and one postsynaptic neuron and read off the
change of the synaptic weight. Here the same protocols run in the simulator
(:class:`discover.networks.LIFNetwork` with ``post_mode="given"``, one synapse), so they
apply to every rule with the discover rule interface: a canonical or distilled
:class:`~discover.rules.SymbolicRule`, or a neural :class:`~discover.rules.MLPRule` with
the parameters :func:`discover.build.load_rule` returns.

Conventions (those of the Brian2 reference numbers, ``shared/reference/README.md``):

- the weight starts at ``w = 1`` and is not clipped; the result is ``dw = w - 1``;
- a pairing at lag ``dt_ms = t_post - t_pre`` puts the earlier of the two spikes at the
  start of the pairing's period and the later one ``|dt_ms|`` after it; pairing ``k``
  starts at ``k / freq_hz``. Spike times are rounded to the simulation step ``dt``; the
  lags must be multiples of ``dt`` (periods need not be: each spike is rounded, so the
  mean frequency stays exact);
- the simulator follows Brian2's schedule, so a pre and a post spike in the same step
  count as pre-before-post (``dt_ms = 0`` gives ``+A_plus`` for pair STDP);
- each protocol runs until its last spike (plus ``tail_ms``); variants are simulated
  together (``vmap``) but each one's state is frozen after its own end, so a result does
  not depend on which other variants ran beside it.

For the all-to-all pair rule ``A_plus*tr_pre*s_post - A_minus*tr_post*s_pre`` a single
pairing gives ``A_plus*exp(-dt/tau_pre)`` for ``dt >= 0`` and ``-A_minus*exp(dt/tau_post)``
for ``dt < 0`` (Song, Miller & Abbott 2000, Eq. 1); the triplet rule of Pfister &
Gerstner 2006 adds a frequency dependence (their Fig. 2 / 5: potentiation at
``+10 ms`` grows with the pairing frequency).

jax and discover are imported inside the functions, so ``import analysis`` stays light.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from . import style


class ProtocolError(ValueError):
    """Protocol arguments that cannot run (a lag off the grid, overlapping pairings...)."""


WINDOW_XLABEL = "t_post - t_pre (ms)"
DW_LABEL = "Δw"


# ----------------------------------------------------------------------------- simulation


def _to_steps(ms: float, dt: float, what: str) -> int:
    n = ms / dt
    k = int(round(n))
    if abs(n - k) > 1e-6 * max(1.0, abs(n)):
        raise ProtocolError(f"{what} = {ms} ms is not a multiple of the simulation step dt = {dt} ms; "
                         f"choose {what} on the grid of dt (e.g. {k * dt:g} ms) or a smaller dt")
    return k


def _spike_steps(lags_ms: Sequence[float], freqs_hz: Sequence[float], pairs: int, dt: float):
    """Pre and post spike steps ``[variants, pairs]`` for each (lag, frequency) variant."""
    if pairs < 1:
        raise ProtocolError(f"pairs = {pairs}: a protocol needs at least one pairing")
    pre, post = [], []
    for lag, freq in zip(lags_ms, freqs_hz):
        if not freq > 0:
            raise ProtocolError(f"pairing frequency {freq} Hz must be positive")
        lag_steps = _to_steps(float(lag), dt, "the lag t_post - t_pre")
        period_ms = 1000.0 / float(freq)
        if pairs > 1 and abs(lag_steps) * dt >= period_ms:
            raise ProtocolError(f"lag {lag} ms is not shorter than the pairing period {period_ms:g} ms "
                             f"({freq} Hz): pairings would overlap; use a lower frequency or a shorter lag")
        start = np.rint(np.arange(pairs) * period_ms / dt).astype(np.int64)
        pre.append(start + max(0, -lag_steps))
        post.append(start + max(0, lag_steps))
    return np.asarray(pre, np.int32), np.asarray(post, np.int32)


def _default_params(rule, params):
    if params is not None:
        return params
    import jax

    return rule.init(jax.random.key(0))


def _protocol_network(dt: float, network):
    from discover.networks import LIFNetwork

    fixed = dict(n_pre=1, n_post=1, dt=float(dt), post_mode="given", w_min=None, w_max=None)
    if network is None:
        return LIFNetwork(**fixed)
    import dataclasses

    if not isinstance(network, LIFNetwork):
        raise TypeError(f"network must be a discover.networks.LIFNetwork (its neuron parameters are used), "
                        f"not {type(network).__name__}")
    return dataclasses.replace(network, **fixed)


def simulate_pairings(rule, params, pre_steps, post_steps, dt: float = 0.1, tail_ms: float = 0.0,
                      network=None, engine: str = "auto") -> np.ndarray:
    """Final ``w - 1`` of one synapse per protocol variant, with imposed spike steps.

    An event-driven rule of spikes, traces and ``w`` runs event by event
    (:mod:`discover.events`: the same numbers, at a cost that scales with the spikes, so
    60 pairings at 0.1 Hz take as long as at 50 Hz); other rules (they read ``v_post`` or
    change ``w`` between spikes) step through every time step. ``engine`` forces one:
    ``"event"`` or ``"clock"``.

    Args:
      rule: a rule with the discover interface (``rule(params, local) -> dw``, ``rule.tau``).
      params: its parameters (``None``: ``rule.init(key(0))``).
      pre_steps, post_steps: integer arrays ``[variants, spikes]`` of spike steps (``-1``
        pads: never fires).
      dt: simulation step (ms).
      tail_ms: simulated time after each variant's last spike.
      network: optional :class:`~discover.networks.LIFNetwork` whose neuron parameters
        (membrane, synapse) are used for ``v_post``; its size, ``dt``, ``post_mode`` and
        bounds are set by the protocol.

    Returns:
      ``dw`` per variant (float64 numpy array).
    """
    import jax
    import jax.numpy as jnp

    from discover.rollout import final_weights

    params = _default_params(rule, params)
    net = _protocol_network(dt, network)
    pre_steps = np.asarray(pre_steps, np.int32)
    post_steps = np.asarray(post_steps, np.int32)
    if pre_steps.ndim != 2 or pre_steps.shape != post_steps.shape:
        raise ProtocolError(f"pre_steps and post_steps must be [variants, spikes] arrays of one shape, got "
                         f"{pre_steps.shape} and {post_steps.shape}")
    if engine not in ("auto", "event", "clock"):
        raise ProtocolError(f"engine = {engine!r}: use auto, event or clock")
    from discover.events import event_ready, merge_events, simulate_events

    why = event_ready(rule)
    if engine == "event" and why:
        raise ProtocolError(f"{getattr(rule, 'label', 'the rule')} cannot run event by event: {why}")
    if engine == "event" or (engine == "auto" and why is None):
        step, a, b = merge_events(pre_steps, post_steps)
        run = jax.jit(jax.vmap(lambda s, x, y: simulate_events(rule, params, s, x, y, dt=float(dt)).final["W"]))
        return np.asarray(run(step, a, b)[:, 0, 0] - 1.0, np.float64)
    last = np.maximum(pre_steps.max(axis=1), post_steps.max(axis=1))
    end = (last + int(round(tail_ms / dt))).astype(np.int32)  # last step simulated, per variant
    n_steps = int(end.max()) + 1

    def one(pre, post, end_v):
        def inputs(t):  # the imposed spikes of step t
            return {"s_pre": jnp.any(pre == t, keepdims=True).astype(jnp.float32),
                    "s_post": jnp.any(post == t, keepdims=True).astype(jnp.float32)}

        W = final_weights(net, rule, params, jnp.ones((1, 1), jnp.float32), inputs, steps=n_steps, until=end_v + 1)
        return W[0, 0] - 1.0

    run = jax.jit(jax.vmap(one))
    dw = run(jnp.asarray(pre_steps), jnp.asarray(post_steps), jnp.asarray(end))
    return np.asarray(dw, np.float64)


def pairing_protocol(rule, params=None, dt_ms_list: Iterable[float] = range(-100, 101, 5), pairs: int = 1,
                     freq_hz: float = 1.0, dt: float = 0.1, tail_ms: float = 0.0, network=None) -> pd.DataFrame:
    r"""The STDP window: ``dw`` after ``pairs`` pre/post pairings at each lag.

    .. math:: \Delta w(\Delta t),\quad \Delta t = t_\mathrm{post} - t_\mathrm{pre}

    Args:
      rule: any rule with the discover interface (symbolic, MLP, polynomial).
      params: the rule's parameters; ``None`` uses ``rule.init(jax.random.key(0))``
        (the published values of a canonical rule).
      dt_ms_list: lags ``t_post - t_pre`` in ms (multiples of ``dt``).
      pairs: pairings per lag, repeated at ``freq_hz``.
      freq_hz: pairing frequency (Hz), used when ``pairs > 1``.
      dt: simulation step (ms).
      tail_ms: simulated time after the last spike.
      network: optional LIF network whose neuron parameters set ``v_post``.

    Returns:
      A DataFrame with columns ``dt_ms`` and ``dw`` (weight started at 1, unclipped).

    Example::

      >>> from discover.rules import canonical_rule
      >>> df = pairing_protocol(canonical_rule("stdp_pair"), dt_ms_list=[-10, 10])
      >>> df["dw"].round(5).tolist()
      [-0.00637, 0.00607]

    References:
      Bi & Poo 1998, J. Neurosci. 18:10464; Song, Miller & Abbott 2000, Nat. Neurosci. 3:919.
    """
    lags = [float(x) for x in dt_ms_list]
    if not lags:
        raise ProtocolError("dt_ms_list is empty: give at least one lag t_post - t_pre (ms)")
    pre, post = _spike_steps(lags, [freq_hz] * len(lags), pairs, dt)
    dw = simulate_pairings(rule, params, pre, post, dt=dt, tail_ms=tail_ms, network=network)
    return pd.DataFrame({"dt_ms": lags, "dw": dw})


def frequency_protocol(rule, params=None, freqs_hz: Iterable[float] = (1, 5, 10, 20, 30, 40, 50),
                       lags_ms: Iterable[float] = (10, -10), pairs: int = 60, dt: float = 0.1,
                       tail_ms: float = 0.0, network=None, trains: int = 1,
                       train_interval_s: float = 10.0) -> pd.DataFrame:
    r"""``dw`` after ``pairs`` pairings at each frequency and lag (Sjöström et al. 2001).

    Args:
      rule: any rule with the discover interface.
      params: the rule's parameters (``None``: ``rule.init(jax.random.key(0))``).
      freqs_hz: pairing frequencies (Hz).
      lags_ms: lags ``t_post - t_pre`` (ms), each shorter than every period.
      pairs: pairings per protocol (per train, with ``trains > 1``).
      dt: simulation step (ms).
      tail_ms: simulated time after the last spike.
      network: optional LIF network whose neuron parameters set ``v_post``.
      trains: trains of ``pairs`` pairings, one every ``train_interval_s`` seconds
        (Sjöström et al. 2001 paired 15 trains of 5 at >= 10 Hz, one every 10 s).
      train_interval_s: seconds from the start of one train to the next.

    Returns:
      A DataFrame with columns ``freq_hz``, ``lag_ms``, ``dw``, one row per pair
      (frequency-major).

    Example::

      >>> from discover.rules import canonical_rule
      >>> df = frequency_protocol(canonical_rule("stdp_triplet"), freqs_hz=[1, 50], lags_ms=[10])

    References:
      Sjöström, Turrigiano & Nelson 2001, Neuron 32:1149; Pfister & Gerstner 2006,
      J. Neurosci. 26:9673.
    """
    combos = [(float(f), float(lag)) for f in freqs_hz for lag in lags_ms]
    if not combos:
        raise ProtocolError("frequency_protocol needs at least one frequency and one lag")
    if trains == 1:
        pre, post = _spike_steps([c[1] for c in combos], [c[0] for c in combos], pairs, dt)
    else:
        table = pd.DataFrame({"pre_ms": [(0.0,)] * len(combos), "post_ms": [(c[1],) for c in combos],
                              "freq_hz": [c[0] for c in combos], "pairs": pairs, "trains": trains,
                              "train_interval_s": train_interval_s,
                              "label": [f"{c[1]:+g} ms at {c[0]:g} Hz" for c in combos]})
        pre, post = _table_steps(table, dt)
    dw = simulate_pairings(rule, params, pre, post, dt=dt, tail_ms=tail_ms, network=network)
    return pd.DataFrame({"freq_hz": [c[0] for c in combos], "lag_ms": [c[1] for c in combos], "dw": dw})


def _table_steps(table: pd.DataFrame, dt: float):
    from discover.experiments import ExperimentError, table_spikes

    try:
        return table_spikes(table, dt)
    except ExperimentError as e:
        raise ProtocolError(str(e)) from None


def triplet_protocol(rule, params=None, pairs: int = 60, freq_hz: float = 1.0, dt: float = 0.1,
                     intervals=None) -> pd.DataFrame:
    r"""``dw`` after the triplet protocols of Wang et al. 2005 (pre-post-pre and post-pre-post).

    Args:
      rule: any rule with the discover interface.
      params: its parameters (``None``: ``rule.init(jax.random.key(0))``).
      pairs: repetitions of each triplet.
      freq_hz: repetitions per second.
      dt: simulation step (ms).
      intervals: ``[(protocol, t1_ms, t2_ms), ...]`` (see :mod:`discover.experiments`);
        default: the eight of Wang et al. 2005 (``discover/data/wang2005_triplets.csv``).

    Returns:
      Columns ``protocol, t1_ms, t2_ms, dw``.

    References:
      Wang, Gerkin, Nauen & Bi 2005, Nat. Neurosci. 8:187; Pfister & Gerstner 2006, Fig. 6.
    """
    from discover.experiments import read_table

    if intervals is None:
        t = read_table("wang2005")
        intervals = list(zip(t["protocol"], t["t1_ms"], t["t2_ms"]))
    rows = pd.DataFrame([{"protocol": p, "t1_ms": float(a), "t2_ms": float(b)} for p, a, b in intervals])
    from discover.experiments import row_pattern

    pats = [row_pattern(r, f"triplet {i + 1}") for i, r in rows.iterrows()]
    table = pd.DataFrame({"pre_ms": [p[1] for p in pats], "post_ms": [p[2] for p in pats], "freq_hz": freq_hz,
                          "pairs": pairs, "trains": 1, "train_interval_s": 10.0,
                          "label": [f"{r.protocol} ({r.t1_ms:g}, {r.t2_ms:g}) ms" for r in rows.itertuples()]})
    pre, post = _table_steps(table, dt)
    rows["dw"] = simulate_pairings(rule, params, pre, post, dt=dt)
    return rows


def data_protocol(rule, params=None, sources=("sjostrom2001",), dt: float = 0.1, default_sem: float = 0.1):
    r"""A rule run through the experiments of protocol tables, beside the measured changes.

    Args:
      rule, params: the rule and its parameters (``None``: ``rule.init(jax.random.key(0))``).
      sources: built-in data sets or CSV paths (:mod:`discover.experiments`).
      dt: simulation step (ms).
      default_sem: the SEM of rows without one.

    Returns:
      ``(table, E)``: the experiments with ``dw`` (measured), ``sem``, ``dw_model``, and
      ``E = mean(((dw_model - dw) / sem)**2)`` (Pfister & Gerstner 2006's error).
    """
    from discover.experiments import ExperimentError, read_tables

    try:
        table = read_tables(list(sources))
    except ExperimentError as e:
        raise ProtocolError(str(e)) from None
    pre, post = _table_steps(table, dt)
    table["dw_model"] = simulate_pairings(rule, params, pre, post, dt=dt)
    sigma = table["sem"].where(np.isfinite(table["sem"]), default_sem)
    error = float(np.mean(((table["dw_model"] - table["dw"]) / sigma) ** 2))
    keep = ["dataset", "label", "dw", "sem", "dw_model"]
    return table[keep], error


# ----------------------------------------------------------------------------- figures


def _groups(df: pd.DataFrame, by: str | None):
    if by is None or by not in df:
        return [(None, df)]
    return [(key, df[df[by] == key]) for key in dict.fromkeys(df[by])]


def _plot_branches(ax, x, y, fmt, label, **kw):
    """The acausal (``dt < 0``) and causal branches as two lines: the window jumps at 0."""
    for m in (x < 0, x >= 0):
        if m.any():
            ax.plot(x[m], y[m], fmt, label=label, **kw)
            label = None


def window_figure(df: pd.DataFrame, label: str | None = None, reference: pd.DataFrame | None = None,
                  reference_label: str = "reference", title: str = "STDP window") -> Figure:
    """``dw`` against ``t_post - t_pre``, one curve per ``rule`` (if the column exists).

    Args:
      df: :func:`pairing_protocol` output (``dt_ms, dw``; an optional ``rule`` column
        draws one curve per rule).
      label: legend label when ``df`` has no ``rule`` column.
      reference: optional second window (``dt_ms, dw``), drawn dashed (e.g. Brian2's or
        the canonical rule's).
      reference_label: its legend label.
      title: axes title.

    Returns:
      The figure.
    """
    with matplotlib.rc_context(style.RC):
        fig = Figure(figsize=style.FIGSIZE, layout="constrained")
        ax = fig.add_subplot()
        ax.axhline(0.0, color="0.6", linewidth=0.6)
        ax.axvline(0.0, color="0.6", linewidth=0.6)
        for i, (key, part) in enumerate(_groups(df, "rule")):
            part = part.sort_values("dt_ms")
            x, y = part["dt_ms"].to_numpy(float), part["dw"].to_numpy(float)
            color = style.CYCLE[i % len(style.CYCLE)]
            name = str(key) if key is not None else label
            _plot_branches(ax, x, y, "o-", name, color=color)
        if reference is not None:
            ref = reference.sort_values("dt_ms")
            _plot_branches(ax, ref["dt_ms"].to_numpy(float), ref["dw"].to_numpy(float), "--", reference_label,
                           color="0.2", linewidth=1.0)
        ax.set_xlabel(WINDOW_XLABEL)
        ax.set_ylabel(DW_LABEL)
        ax.set_title(title)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    return fig


def frequency_figure(df: pd.DataFrame, label: str | None = None, title: str = "Pairing frequency") -> Figure:
    """``dw`` against pairing frequency, one curve per lag (and per ``rule`` if present).

    Args:
      df: :func:`frequency_protocol` output (``freq_hz, lag_ms, dw``; optional ``rule``).
      label: prefix of the legend labels when ``df`` has no ``rule`` column.
      title: axes title.

    Returns:
      The figure.
    """
    with matplotlib.rc_context(style.RC):
        fig = Figure(figsize=style.FIGSIZE, layout="constrained")
        ax = fig.add_subplot()
        ax.axhline(0.0, color="0.6", linewidth=0.6)
        markers = "os^vD"
        for i, (key, part) in enumerate(_groups(df, "rule")):
            name = str(key) if key is not None else label
            for j, (lag, sub) in enumerate(_groups(part, "lag_ms")):
                sub = sub.sort_values("freq_hz")
                lag_txt = f"Δt = {float(lag):+g} ms" if lag is not None else None
                text = ", ".join(t for t in (name, lag_txt) if t)
                ax.plot(sub["freq_hz"].to_numpy(float), sub["dw"].to_numpy(float),
                        marker=markers[j % len(markers)], linestyle="-" if j == 0 else "--",
                        color=style.CYCLE[i % len(style.CYCLE)], label=text or None)
        ax.set_xlabel("pairing frequency (Hz)")
        ax.set_ylabel(DW_LABEL)
        ax.set_title(title)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    return fig


def _labelled_points(ax, labels, ys, **kw):
    x = np.arange(len(labels))
    ax.plot(x, ys, linestyle="none", **kw)
    ax.set_xticks(x, labels, rotation=60, ha="right", fontsize="small")


def triplet_figure(df: pd.DataFrame, label: str | None = None, title: str = "Triplet protocols") -> Figure:
    """``dw`` of each triplet protocol (:func:`triplet_protocol` output)."""
    with matplotlib.rc_context(style.RC):
        fig = Figure(figsize=(style.FIGSIZE[0] * 1.4, style.FIGSIZE[1] * 1.2), layout="constrained")
        ax = fig.add_subplot()
        ax.axhline(0.0, color="0.6", linewidth=0.6)
        labels = [f"{p.replace('_', '-')} ({a:g}, {b:g})" for p, a, b in zip(df["protocol"], df["t1_ms"], df["t2_ms"])]
        _labelled_points(ax, labels, df["dw"].to_numpy(float), marker="o", color=style.CYCLE[0], label=label)
        ax.set_ylabel(DW_LABEL)
        ax.set_title(title)
        if label:
            ax.legend()
    return fig


def data_figure(df: pd.DataFrame, label: str | None = None, title: str = "Measured and simulated") -> Figure:
    """The measured ``dw`` (with SEM) and a rule's ``dw_model`` per experiment
    (:func:`data_protocol` output)."""
    with matplotlib.rc_context(style.RC):
        fig = Figure(figsize=(style.FIGSIZE[0] * 1.4, style.FIGSIZE[1] * 1.2), layout="constrained")
        ax = fig.add_subplot()
        ax.axhline(0.0, color="0.6", linewidth=0.6)
        x = np.arange(len(df))
        sem = df["sem"].to_numpy(float)
        ax.errorbar(x, df["dw"].to_numpy(float), yerr=np.where(np.isfinite(sem), sem, 0.0), fmt="o", color="0.2",
                    capsize=2, label="data")
        _labelled_points(ax, list(df["label"]), df["dw_model"].to_numpy(float), marker="s", color=style.CYCLE[0],
                         label=label or "rule")
        ax.set_ylabel(DW_LABEL)
        ax.set_title(title)
        ax.legend()
    return fig


def analytic_pair_window(dt_ms, A_plus: float = 0.01, A_minus: float = 0.0105, tau_plus: float = 20.0,
                         tau_minus: float = 20.0) -> np.ndarray:
    """The single-pairing window of all-to-all pair STDP (Song, Miller & Abbott 2000, Eq. 1).

    ``A_plus*exp(-dt/tau_plus)`` for ``dt >= 0`` (same-step pairs potentiate, as in Brian2),
    ``-A_minus*exp(dt/tau_minus)`` for ``dt < 0``.
    """
    d = np.asarray(dt_ms, np.float64)
    return np.where(d >= 0, A_plus * np.exp(-np.abs(d) / tau_plus), -A_minus * np.exp(-np.abs(d) / tau_minus))


__all__ = ["pairing_protocol", "frequency_protocol", "triplet_protocol", "data_protocol", "simulate_pairings",
           "window_figure", "frequency_figure", "triplet_figure", "data_figure", "analytic_pair_window",
           "WINDOW_XLABEL", "DW_LABEL"]

