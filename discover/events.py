r"""One synapse with imposed spikes, simulated event by event (exact for event-driven rules).

The plasticity protocols of slice experiments impose a few hundred spikes over minutes
(60 pairings at 0.1 Hz are 600 s: six million steps at ``dt = 0.1`` ms). A rule of the
event-driven form ``dw = s_post*P(z) + s_pre*Q(z)`` (DESIGN.md section 3) changes the
weight only in steps with a spike, and between spikes its traces only decay, which the
exact exponential carries over any gap at once: ``tr(t + n dt) = tr(t) exp(-n dt / tau)``.
So this loop steps from spike to spike (``lax.scan`` over events, not time steps) and
gives the very numbers of the clock-driven simulator
(:class:`discover.networks.LIFNetwork` with ``post_mode = "given"``, one synapse, no
bounds), in float32, at a cost that scales with the number of spikes. It is what
:func:`analysis.protocols.simulate_pairings` and the ``fit_protocols`` task run; the
clock-driven path stays for rules that read ``v_post`` or change weights between spikes.

Order within an event step is the simulator's (Brian2's schedule): traces decay over the
gap; ``tr_pre`` takes this step's presynaptic spike; the rule sees ``tr_post`` and the
slow traces before this step's own spikes; then the postsynaptic and slow traces take
theirs. With ``rule.traces == "nearest"`` a spike sets its trace to 1 instead of adding 1
(nearest-spike interaction, Pfister & Gerstner 2006, "Nearest-spike interactions").
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import sympy

from .rollout import Rollout
from .rules.base import add_spike
from .vocabulary import BINARY, SYMBOLS

#: the local variables an event-driven protocol can give a rule
EVENT_VARIABLES = ("s_pre", "s_post", "tr_pre", "tr_post", "tr_pre_slow", "tr_post_slow", "w")
_TRACES = ("tau_pre", "tau_post", "tau_pre_slow", "tau_post_slow")


def is_event_driven(rule) -> bool:
    """Whether ``rule`` changes the weight only in steps with a spike: an event-driven
    polynomial or MLP (``event_driven``), or an equation every term of which has a spike
    factor (``s_pre`` or ``s_post``)."""
    if hasattr(rule, "event_driven"):
        return bool(rule.event_driven)
    expr = getattr(rule, "expr", None)
    if expr is None:
        return False
    spikes = {SYMBOLS[n] for n in BINARY}
    return all(t.free_symbols & spikes for t in sympy.Add.make_args(sympy.expand(expr)) if t != 0)


def event_ready(rule) -> str | None:
    """``None`` where :func:`simulate_events` can run ``rule``; else why not."""
    extra = [n for n in rule.inputs if n not in EVENT_VARIABLES]
    if extra:
        return f"it reads {', '.join(extra)}, which an event-by-event protocol does not simulate"
    if not is_event_driven(rule):
        return "it can change the weight between spikes (not every term has a factor s_pre or s_post)"
    return None


def merge_events(pre_steps, post_steps):
    """Spike steps ``[variants, spikes]`` (``-1`` pads) to event arrays.

    Returns ``(step, s_pre, s_post)``, each ``[variants, K]``: the steps with a spike in
    increasing order and which neuron fired there; padding events repeat the last step with
    no spike (they change nothing).
    """
    pre = np.asarray(pre_steps, np.int64)
    post = np.asarray(post_steps, np.int64)
    rows = []
    for p, q in zip(pre, post):
        p, q = p[p >= 0], q[q >= 0]
        steps = np.union1d(p, q)
        rows.append((steps, np.isin(steps, p), np.isin(steps, q)))
    K = max(1, max(len(r[0]) for r in rows))
    step = np.zeros((len(rows), K), np.int32)
    s_pre = np.zeros((len(rows), K), np.float32)
    s_post = np.zeros((len(rows), K), np.float32)
    for i, (st, a, b) in enumerate(rows):
        n = len(st)
        step[i, :n] = st
        step[i, n:] = st[-1] if n else 0
        s_pre[i, :n] = a
        s_post[i, :n] = b
    return step, s_pre, s_post


def simulate_events(rule, params, step, s_pre, s_post, *, dt: float, w0: float = 1.0, record_locals: bool = False,
                    w_limit: float | None = None) -> Rollout:
    """One synapse over one protocol's events (``vmap`` for many).

    Args:
      rule, params: an event-driven rule (:func:`event_ready`) and its parameters.
      step, s_pre, s_post: ``[K]`` event steps and spike indicators (:func:`merge_events`).
      dt: the simulation step (ms) the steps count.
      w0: the starting weight (unbounded, as the protocols of the simulator).
      record_locals: also return the local variables at every event (``[K, 1, 1]``).
      w_limit: the divergence guard of :func:`discover.rollout.rollout`.

    Returns:
      A :class:`~discover.rollout.Rollout` whose ``weights`` are ``W`` after every event
      (``[K, 1, 1]``), ``activity`` the postsynaptic spikes (``[K, 1]``), ``final`` the
      state after the last event and ``diverged_at`` the event index.
    """
    tau = rule.tau(params)
    rate = {k: dt / tau[k] for k in _TRACES}

    def add(tr, s):
        return add_spike(rule, tr, s)

    def body(carry, ev):
        st, k, div = carry
        t, a, b = ev
        gap = (t - st["last"]).astype(jnp.float32)
        d = {k_: jnp.exp(-gap * rate[k_]) for k_ in _TRACES}
        tr_pre = add(st["tr_pre"] * d["tau_pre"], a)
        tr_post = st["tr_post"] * d["tau_post"]
        tr_pre_slow = st["tr_pre_slow"] * d["tau_pre_slow"]
        tr_post_slow = st["tr_post_slow"] * d["tau_post_slow"]
        local = {"s_pre": a, "s_post": b, "tr_pre": tr_pre, "tr_post": tr_post, "tr_pre_slow": tr_pre_slow,
                 "tr_post_slow": tr_post_slow, "w": st["W"]}
        local = {n: jnp.reshape(v, (1, 1)) for n, v in local.items()}
        dw = jnp.broadcast_to(rule(params, local), (1, 1))[0, 0]
        W = st["W"] + dw
        new = {"W": W, "tr_pre": tr_pre, "tr_post": add(tr_post, b), "tr_pre_slow": add(tr_pre_slow, a),
               "tr_post_slow": add(tr_post_slow, b), "last": t}
        if w_limit is not None:
            ok = jnp.isfinite(W) & (jnp.abs(W) <= w_limit)
            div = jnp.where((div < 0) & ~ok, k, div)
            new = jax.tree_util.tree_map(lambda x, y: jnp.where(div < 0, x, y), new, st)
        out = (new["W"], b, local if record_locals else None)
        return (new, k + 1, div), out

    z = jnp.zeros((), jnp.float32)
    st0 = {"W": jnp.asarray(w0, jnp.float32), "tr_pre": z, "tr_post": z, "tr_pre_slow": z, "tr_post_slow": z,
           "last": jnp.asarray(step[0], jnp.int32)}
    carry0 = (st0, jnp.zeros((), jnp.int32), jnp.full((), -1, jnp.int32))
    (final, _, div), (Ws, acts, locs) = jax.lax.scan(body, carry0, (jnp.asarray(step, jnp.int32),
                                                                    jnp.asarray(s_pre, jnp.float32),
                                                                    jnp.asarray(s_post, jnp.float32)))
    energy = jnp.mean(jnp.diff(Ws, prepend=jnp.asarray(w0, jnp.float32)) ** 2)
    final = {**final, "W": jnp.reshape(final["W"], (1, 1))}
    return Rollout(final, Ws[:, None, None], acts[:, None], energy, locs,
                   None if w_limit is None else div)


__all__ = ["simulate_events", "merge_events", "event_ready", "is_event_driven", "EVENT_VARIABLES"]
