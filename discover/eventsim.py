"""Event-driven plasticity for :class:`discover.networks.LIFNetwork`: work per spike, not per synapse.

An event-driven rule changes a weight only in a step where its pre- or postsynaptic
neuron spikes (DESIGN.md section 3)::

    dw = s_post * P(z) + s_pre * Q(z)        (zero where s_pre = s_post = 0)

and the traces it reads are per-neuron vectors (``tr_pre [n_pre]``, ``tr_post [n_post]``),
so per step only the rows of ``W`` of the postsynaptic neurons that spiked and the columns
of the presynaptic ones change, and the synaptic input ``W @ s_pre`` is a sum over the
spiking columns. At 15 Hz and dt = 0.1 ms that is ~1.5 of 1000 columns per step.

How one step is computed (:func:`plastic_update`), with ``W`` the matrix before the step:

1. the spiking columns ``j`` (``s_pre[j] != 0``, forward values), taken from a bitmask of
   the flags (32 neurons per word; ``CHUNK`` indices at a time, an out-of-range index where
   a network has no more: it gathers 0 and its scatter is dropped):
   ``syn += W[:, j] @ s_pre[j]`` and ``W[:, j] = clip(W[:, j] + dw[:, j])``, ``dw`` the rule
   itself evaluated on those columns' local variables (spikes gathered with their values);
2. the spiking rows ``i`` (``s_post[i] != 0``): ``W[i, :] = clip(W[i, :] + dw[i, :])`` except
   at the columns of step 1, whose entries step 1 already gave their full value (it saw
   ``s_post[i]`` and ``s_pre[j]`` both).

Every changed entry is computed from the same local variables and weight as the dense
path's (``clip(W + rule(local))``), so results agree with it to float rounding (the sum
in ``W @ s_pre`` runs in another order; in practice the tests see identical spikes and
weights). A step with more than ``K`` spikes on a side (:func:`capacity`), where the
dense update is the faster one, takes it instead: results do not depend on ``K``. Under ``vmap``
(episodes, populations) the batch is handled here (``custom_vmap``): the chunk loop runs
as many chunks as the busiest member needs, and the dense fallback is taken for all
members at once; a batched loop predicate or ``cond`` would turn into a select over all of
``W`` every step. Entries of ``W`` outside ``[w_min, w_max]`` stay there until a spike
touches them (the dense path clips every entry in every step).

Gradients are the dense path's, exactly: the update is a ``custom_jvp`` whose rule is the
dense update's ``jax.jvp`` (of ``clip(W + rule(local))``, ``W @ s_pre``), which includes the
surrogate gradient of postsynaptic neurons that did not spike (``d dw / d s_post = P`` at
every synapse). A differentiated run therefore costs what the dense path costs (its
values equal the event path's to float rounding); forward-only runs (simulation,
evolution strategies, distillation's sampling) get the event-driven speed.

What a rule must be for this path (:func:`why_dense`): a polynomial or MLP rule with
``event_driven = True`` (its ``heads`` gate every output), or a symbolic rule whose
equation is zero where ``s_pre = s_post = 0`` (pair and triplet STDP, ``homeostatic_stdp``,
the distilled equations of event-driven rules); reading only per-neuron variables, ``w``
and ``m`` (not ``elig``). ``[network] dw_tau > 0`` (every synapse's low-pass moves every
step) and ``escape_noise`` (a per-synapse eligibility trace) need the dense path.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import sympy
from jax.custom_batching import custom_vmap

from .vocabulary import SYMBOLS, VARIABLES

#: the rule's local variables that are per presynaptic / postsynaptic neuron
PRE_SIDE = tuple(n for n, v in VARIABLES.items() if v.side == "pre" and "lif" in v.networks)
POST_SIDE = tuple(n for n, v in VARIABLES.items() if v.side == "post" and "lif" in v.networks)


def why_dense(rule) -> str | None:
    """``None`` if ``rule`` has the event-driven form this module needs, else why not (a
    sentence for an error message)."""
    try:
        return _why_dense(rule)
    except TypeError:  # an unhashable rule: not cached
        return _why_dense.__wrapped__(rule)


@functools.lru_cache(maxsize=256)
def _why_dense(rule) -> str | None:
    per_synapse = [n for n in rule.inputs if VARIABLES[n].side == "synapse" and n != "w"]
    if per_synapse:
        return f"the rule reads {', '.join(per_synapse)}, a per-synapse variable that changes every step"
    if hasattr(rule, "event_driven") and hasattr(rule, "heads"):  # polynomial, MLP: the form is declared
        if not rule.event_driven:
            return (f"{type(rule).__name__} {rule.label!r} has event_driven = false (it may change weights "
                    "without a spike)")
        if not rule.heads:
            return f"{type(rule).__name__} {rule.label!r} reads neither s_pre nor s_post"
        return None
    expr = getattr(rule, "expr", None)
    if isinstance(expr, sympy.Basic):  # symbolic: zero without a spike?
        rest = expr.xreplace({SYMBOLS["s_pre"]: sympy.Integer(0), SYMBOLS["s_post"]: sympy.Integer(0)})
        if rest != 0 and rest.count_ops() <= 40:  # s_post*(...) is 0 already; simplify the rest (exp(s) - 1)
            try:
                rest = sympy.simplify(rest)
            except Exception:  # sympy gives up: not provably event-driven
                pass
        if rest != 0:
            return f"its equation {expr} is not zero without a spike (at s_pre = s_post = 0 it is {rest})"
        return None
    return f"a rule of kind {type(rule).__name__} does not declare an event-driven form"


#: spikes per chunk of the event loop: the rows (columns) of one chunk are gathered, updated
#: and scattered together; a step takes as many chunks as its busiest network needs (1000 x 100
#: and 1000 x 1000 at 15 Hz, dt = 0.1 ms, batch 16: 2, 4 and 8 within noise of each other)
CHUNK = 2


def capacity(n: int, dt: float, given: int = 0) -> int:
    """Spikes per step up to which the event update runs, for ``n`` neurons at time step
    ``dt`` (ms): ``given`` if set, else
    ``32 + n * dt * 0.2`` (all of them at 200 Hz, plus 32), at most ``n``. A step where more
    neurons spike (in any network of a batch) takes the dense update instead: exact, slower
    (1000 x 1000 at batch 16: ~9 ms against ~0.2 ms). Neurons that share their inputs fire in
    volleys: in Song et al.'s network widened to 1000 neurons, batch 16, 4 spikes per step on
    average, the busiest network's count exceeded 21 in 21 % of the steps, 32 in 2 %, 44 in
    0.1 %. Results do not depend on it."""
    k = given if given > 0 else 32 + math.ceil(n * dt * 0.2)
    return max(1, min(int(k), n))


def _rows_local(pre, post_rows, w_rows, glob):
    local = {n: v[..., None, :] for n, v in pre.items()}
    local.update({n: v[..., :, None] for n, v in post_rows.items()})
    local["w"] = w_rows
    local.update(glob)
    return local


def _dense_update(rule, w_min, w_max, mask, params, W, pre, post, glob):
    """The dense path's ``(mask * clip(W + rule(local)), W @ s_pre)``: the tangent's definition."""
    dw = rule(params, _rows_local(pre, post, W, glob))
    W_new = W + jnp.broadcast_to(dw, W.shape)
    if w_min is not None or w_max is not None:
        W_new = jnp.clip(W_new, w_min, w_max)
    if mask is not None:  # fixed fan-in: absent synapses stay 0
        W_new = W_new * mask
    return W_new, W @ pre["s_pre"]


def _take(x, idx, axis):
    return jnp.take(x, idx, axis=axis, mode="fill", fill_value=0)


def _event_update(rule, w_min, w_max, mask, k_pre, k_post, chunk, params, W, pre, post, glob):
    """The forward pass of :func:`plastic_update` over a flat batch ``[B, ...]`` of
    networks (every argument's leaves carry the leading batch axis); ``mask`` (fixed fan-in,
    ``[n_post, n_pre]`` or ``None``) is one for the whole batch."""
    B, n_post, n_pre = W.shape
    clip = (lambda x: x) if w_min is None and w_max is None else (lambda x: jnp.clip(x, w_min, w_max))
    s_pre = jax.lax.stop_gradient(pre["s_pre"]) != 0  # which neurons spiked: forward values
    s_post = jax.lax.stop_gradient(post["s_post"]) != 0

    def repeat(times, body, carry):  # body(i, carry) for i < times; a 0/1-trip loop is XLA's cheap branch
        return jax.lax.while_loop(lambda st: st[0] < times, lambda st: (st[0] + 1, body(st[0], st[1])),
                                  (jnp.int32(0), carry))[1]

    n_spk_pre, n_spk_post = jnp.sum(s_pre, axis=1), jnp.sum(s_post, axis=1)
    # more spikes than the capacity, in some member: this step takes the dense update (exact),
    # for every member. A 0/1-trip while_loop, not a cond: XLA copies W around a cond.
    dense = (jnp.max(n_spk_pre) > k_pre) | (jnp.max(n_spk_post) > k_post)

    def each_spike(spiked, n_spikes, c, body, carry):
        """``carry = body(idx [B, c], carry)`` over the spiking neurons' indices, in chunks of
        ``c`` (out-of-range fill where a member has fewer: gathers 0, scatters dropped), as
        many chunks as the busiest member needs. The indices come from a bitmask, 32 neurons
        per word: each one is the lowest set bit of the first nonzero word (``clz``), then
        cleared; per chunk that is a few operations on ``[B, n/32]`` words (``lax.top_k`` of
        the 0/1 flags, the first version, took 40 % of the step at 1000 x 100, batch 16)."""
        B, n = spiked.shape
        nw = -(-n // 32)
        # pack the flags, 16 bits at a time as a matrix-vector product (exact in float32; an
        # integer shift-and-sum reduction is 10x slower on a CPU)
        flags = jnp.pad(spiked, [(0, 0), (0, nw * 32 - n)]).reshape(B, nw, 2, 16).astype(jnp.float32)
        half = (flags @ (2.0 ** jnp.arange(16, dtype=jnp.float32))).astype(jnp.uint32)
        words = half[..., 0] | (half[..., 1] << 16)
        chunks = jnp.where(dense, 0, (jnp.max(n_spikes) + c - 1) // c)
        lanes = jnp.arange(nw)

        def step(i, st):
            words, carry = st
            idx = []
            for _ in range(c):
                w = jnp.argmax(words != 0, axis=1)
                hit = lanes == w[:, None]
                word = jnp.max(jnp.where(hit, words, 0), axis=1)
                lsb = word & (~word + jnp.uint32(1))
                bit = 31 - jax.lax.clz(lsb).astype(jnp.int32)
                idx.append(jnp.where(word != 0, w.astype(jnp.int32) * 32 + bit, n))
                words = words ^ jnp.where(hit, lsb[:, None], jnp.uint32(0))
            return words, body(jnp.stack(idx, 1), carry)

        return repeat(chunks, step, (words, carry))[1]

    def columns(p, Wb, idx, pre_b, post_b, glob_b):
        cols = _take(Wb, idx, 1)  # [n_post, c]
        pre_c = {n: _take(v, idx, 0) for n, v in pre_b.items()}
        syn = cols @ pre_c["s_pre"]
        dw = rule(p, _rows_local(pre_c, post_b, cols, glob_b))
        new = clip(cols + jnp.broadcast_to(dw, cols.shape))
        if mask is not None:
            new = new * _take(mask, idx, 1)
        return Wb.at[:, idx].set(new, mode="drop"), syn

    def rows(p, Wb, idx, pre_b, post_b, glob_b, done):
        w_rows = _take(Wb, idx, 0)  # [c, n_pre]
        post_r = {n: _take(v, idx, 0) for n, v in post_b.items()}
        dw = rule(p, _rows_local(pre_b, post_r, w_rows, glob_b))
        upd = clip(w_rows + jnp.broadcast_to(dw, w_rows.shape))
        if mask is not None:
            upd = upd * _take(mask, idx, 0)
        new = jnp.where(done[None, :], w_rows, upd)
        return Wb.at[idx].set(new, mode="drop")

    def dense_update(i, carry):
        # the barrier ties the inputs to W (loop-variant): XLA would otherwise hoist the dense
        # dw, which does not read W for most rules, out of the loop and compute it every step
        W, args = jax.lax.optimization_barrier((carry[0], (params, pre, post, glob)))
        p, pre_, post_, glob_ = args
        return jax.vmap(functools.partial(_dense_update, rule, w_min, w_max, mask))(p, W, pre_, post_, glob_)

    W, syn = repeat(dense.astype(jnp.int32), dense_update, (W, jnp.zeros((B, n_post), W.dtype)))

    # 1. spiking columns: synaptic input from W before the step, and the columns' new values
    def col_chunk(idx, carry):
        Wc, syn = carry
        Wc, s = jax.vmap(columns)(params, Wc, idx, pre, post, glob)
        return Wc, syn + s

    W, syn = each_spike(s_pre, n_spk_pre, min(chunk, k_pre), col_chunk, (W, syn))

    # 2. spiking rows, except the entries of spiking columns (step 1 gave them their value)
    def row_chunk(idx, Wc):
        return jax.vmap(rows)(params, Wc, idx, pre, post, glob, s_pre)

    W = each_spike(s_post, n_spk_post, min(chunk, k_post), row_chunk, W)
    return W, syn


@functools.lru_cache(maxsize=256)
def _update_fn(rule, w_min, w_max, k_pre, k_post, chunk, fan_in=None, shape=None):
    """The custom_jvp(custom_vmap) update for one rule and network configuration
    (``fan_in = (K, seed)`` with ``shape = (n_post, n_pre)``: fixed fan-in connectivity)."""
    mask = None
    if fan_in is not None:
        from .networks import fan_in_mask

        # numpy: a constant of every trace (a jnp array made here would leak the first trace's)
        mask = fan_in_mask(shape[0], shape[1], *fan_in)

    def flat_call(params, W, pre, post, glob):
        lead = W.shape[:-2]  # the batch dimensions of nested vmaps (none: one network)
        B = math.prod(lead)
        flat = jax.tree_util.tree_map(lambda x: x.reshape((B,) + x.shape[len(lead):]), (params, W, pre, post, glob))
        W_new, syn = _event_update(rule, w_min, w_max, mask, k_pre, k_post, chunk, *flat)
        return W_new.reshape(W.shape), syn.reshape(lead + syn.shape[1:])

    batched = custom_vmap(flat_call)

    @batched.def_vmap
    def _vmap_rule(axis_size, in_batched, *args):
        # every argument gets the batch axis in front; then the batch is one more leading
        # dimension of this same function (an outer vmap adds its own the same way)
        args = jax.tree_util.tree_map(
            lambda x, b: x if b else jnp.broadcast_to(x, (axis_size,) + jnp.shape(x)), args, tuple(in_batched))
        return batched(*args), (True, True)

    @jax.custom_jvp
    def update(params, W, pre, post, glob):
        return batched(params, W, pre, post, glob)

    @update.defjvp
    def _jvp(primals, tangents):
        # differentiated: the dense update, values and tangents (its linearization needs every
        # synapse's dw anyway, and computing the event primal beside it costs more: 2x at 100 x 10)
        return jax.jvp(functools.partial(_dense_update, rule, w_min, w_max, mask), primals, tangents)

    return update


def plastic_update(rule, params, W, pre: dict, post: dict, glob: dict, *, w_min=None, w_max=None,
                   k_pre: int, k_post: int, chunk: int = CHUNK, fan_in: tuple[int, int] | None = None):
    """One step's plasticity and synaptic input, event-driven.

    Args:
      rule, params: an event-driven rule (:func:`why_dense` is ``None``) and its parameters.
      W: weights ``[n_post, n_pre]`` before the step.
      pre: the rule's presynaptic variables, ``[n_pre]`` each (``s_pre`` among them).
      post: the rule's postsynaptic variables, ``[n_post]`` each (``s_post`` among them).
      glob: global variables (``m``), scalars.
      w_min, w_max: hard bounds on ``W`` (``None``: none).
      k_pre, k_post: capacities (:func:`capacity`): a step with more spikes takes
        the dense update.
      chunk: spikes per chunk of the event loop.
      fan_in: ``(K, seed)`` of fixed fan-in connectivity
        (:func:`discover.networks.fan_in_mask`): absent synapses stay 0; ``None``: all to all.

    Returns:
      ``(W_new, W @ s_pre)``: equal to the dense ``clip(W + rule(local))`` and ``W @ s_pre``
      to float rounding, with the dense path's gradients.
    """
    shape = tuple(int(n) for n in W.shape[-2:]) if fan_in is not None else None
    fn = _update_fn(rule, w_min, w_max, int(k_pre), int(k_post), int(chunk),
                    None if fan_in is None else (int(fan_in[0]), int(fan_in[1])), shape)
    return fn(params, W, pre, post, glob)


__all__ = ["why_dense", "capacity", "plastic_update", "PRE_SIDE", "POST_SIDE"]
