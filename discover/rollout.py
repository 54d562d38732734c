"""The one time loop: any network, any rule, over an episode's inputs.

Every stage and check that simulates plasticity (meta-training, distillation's sampling,
verification, the refit, behaviour checks, plasticity protocols) goes through
:func:`rollout`; nothing else scans over ``network.step``.

Example:
  >>> from discover.networks import RateNetwork
  >>> from discover.rules import canonical_rule
  >>> net, rule = RateNetwork(n_pre=3, n_post=1), canonical_rule("oja")
  >>> params = rule.init(jax.random.key(0))
  >>> x = jax.random.normal(jax.random.key(1), (100, 3))
  >>> out = rollout(net, rule, params, net.init_state(jnp.full((1, 3), 0.5)), {"x": x})
  >>> out.weights.shape, out.activity.shape
  ((100, 1, 3), (100, 1))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .unroll import unroll


class Rollout(NamedTuple):
    """What one episode of plasticity leaves behind (a pytree: ``vmap`` batches it).

    Attributes:
      final: the network state after the last step.
      weights: ``W`` at the end of every block of ``record_every`` steps, ``[T/k, post, pre]``.
      activity: the network's activity variable (``network.activity``: ``y`` or ``s_post``)
        summed over each block, ``[T/k, post]``.
      energy: mean squared weight change per synapse and step (a scalar; over the synapses of
        every plastic type).
      local: with ``record_locals``, every local variable the rule saw at every step,
        broadcast to ``[T, post, pre]``; else ``None``.
      diverged_at: with ``w_limit``, the step at which a weight first left ``[-w_limit,
        w_limit]`` or became non-finite (the state is frozen from then on), ``-1`` if
        never; ``None`` without ``w_limit``.
    """

    final: Any
    weights: jax.Array
    activity: jax.Array
    energy: jax.Array
    local: dict | None = None
    diverged_at: jax.Array | None = None

    @property
    def diverged(self) -> jax.Array:
        """Whether the weights diverged (always ``False`` without ``w_limit``)."""
        return jnp.asarray(False) if self.diverged_at is None else self.diverged_at >= 0


def rollout(network, rule, params, state, inputs, *, record_every: int = 1, steps: int | None = None,
            until=None, chunk: int | None = None, truncate: bool = False,
            record_locals: bool | int = False, w_limit: float | None = None, activity: str | None = None) -> Rollout:
    """Run ``network`` with plasticity ``rule`` from ``state`` over ``inputs``.

    Args:
      network: a network (``init_state``, ``step``, ``activity``; :mod:`discover.networks`).
      rule, params: the plasticity rule and its parameters.
      state: the initial network state (``network.init_state(W0)``).
      inputs: a dict of time-major arrays ``[T, ...]`` (``x``; ``s_pre``, ``s_post``; ``m``),
        or a function ``t -> inputs at step t`` (then ``steps`` is required), which saves
        memory where inputs are cheap to compute (imposed spike times).
      record_every: weights and summed activity are kept once per this many steps.
      steps: number of steps ``T`` (default: the inputs' length).
      until: steps after this (an int, traced or not) leave the state unchanged: episodes
        of different lengths in one ``vmap``.
      chunk: steps per ``jax.checkpoint`` segment (bounded memory under reverse-mode
        differentiation); set by the gradient meta-optimizer (``[meta] checkpoint_every``).
        Segments are whole blocks of ``record_every`` steps; ``1`` also checkpoints every
        step inside a block, so the backward pass recomputes a step's local variables and
        monomials instead of reading them back from memory: the same gradient, 3-4x faster
        for a degree-3 polynomial rule on a 50 x 50 rate network on one CPU core
        (``benchmarks/infer_recordings.py``'s student; 126 -> 32 ms per gradient of 8
        episodes of 100 steps, measured), where memory traffic, not arithmetic, is the cost.
      truncate: no gradient through the carry between segments (truncated backprop).
      record_locals: also return the local variables of every step; an int ``k`` (not
        ``True``) keeps only the first ``k`` presynaptic columns, ``[T, post, k]``: the
        samples distillation needs from a network whose every step of every synapse would
        not fit in memory (1000 inputs over 10^5 steps).
      w_limit: a divergence guard: at the first step where a weight would leave
        ``[-w_limit, w_limit]`` or become non-finite, the state freezes (it keeps the last
        finite values, so values and gradients stay finite) and ``diverged_at`` records
        the step. Tasks pass ``[task] max_weight``; the meta-loss counts such episodes
        apart (:func:`discover.optimizers.batch_loss`) instead of turning NaN.
      activity: the local variable recorded as ``Rollout.activity`` (default the network's,
        ``network.activity``), e.g. ``"v_post"`` for a task whose loss reads membrane potentials.

    Returns:
      A :class:`Rollout`.
    """
    if callable(inputs):
        if steps is None:
            raise ValueError("rollout with an inputs function needs steps=")
        xs = jnp.arange(steps, dtype=jnp.int32)
        at = inputs
    else:
        xs = inputs
        at = None
        steps = jax.tree_util.tree_leaves(inputs)[0].shape[0] if steps is None else steps
    k = record_every
    if steps % k:
        raise ValueError(f"{steps} steps are not a multiple of record_every = {k}")
    act = network.activity if activity is None else activity
    from .networks import local_matrix, plastic_matrices

    def step(carry, x):
        state, energy, t, div = carry
        inp = at(x) if at is not None else x
        new, local = network.step(rule, params, state, inp)
        live = None if until is None else t < until
        if w_limit is not None:
            ok = jnp.all(jnp.asarray([jnp.all(jnp.isfinite(W) & (jnp.abs(W) <= w_limit))
                                      for W in plastic_matrices(network, new)]))
            div = jnp.where((div < 0) & ~ok, t, div)
            live = (div < 0) if live is None else live & (div < 0)
        if live is not None:
            new = jax.tree_util.tree_map(lambda a, b: jnp.where(live, a, b), new, state)
        pairs = list(zip(plastic_matrices(network, new), plastic_matrices(network, state)))
        energy = energy + sum(jnp.sum((a - b) ** 2) for a, b in pairs) / sum(a.size for a, _ in pairs)
        out = local[act][:, 0]
        if w_limit is not None:  # keep what leaves the step finite, so that gradients stay finite
            out = jnp.where(div < 0, out, 0.0)
        if record_locals:
            cols = slice(None) if record_locals is True else slice(0, int(record_locals))
            rec = {n: jnp.broadcast_to(v, state[local_matrix(network, n)].shape)[:, cols] for n, v in local.items()}
            return (new, energy, t + 1, div), (out, rec)
        return (new, energy, t + 1, div), (out, None)

    inner = jax.checkpoint(step) if chunk == 1 else step

    def block(carry, x_block):
        carry, (acts, locs) = jax.lax.scan(inner, carry, x_block)
        return carry, (carry[0]["W"], acts.sum(axis=0), locs)

    xs_b = jax.tree_util.tree_map(lambda a: a.reshape((a.shape[0] // k, k) + a.shape[1:]), xs)
    n_blocks = steps // k
    c = None
    if chunk:
        c = max(1, chunk // k)
        while n_blocks % c:
            c -= 1
    carry0 = (state, jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32), jnp.full((), -1, jnp.int32))
    (final, energy, _, div), (Ws, acts, locs) = unroll(block, carry0, xs_b, c, truncate=truncate)
    if locs is not None:
        locs = jax.tree_util.tree_map(lambda a: a.reshape((steps,) + a.shape[2:]), locs)
    return Rollout(final, Ws, acts, energy / steps, locs, None if w_limit is None else div)


def final_weights(network, rule, params, W0, inputs: dict | Callable, **kw) -> jax.Array:
    """``W`` after a rollout from ``W0`` (behaviour checks and protocols)."""
    return rollout(network, rule, params, network.init_state(W0), inputs, **kw).final["W"]


__all__ = ["Rollout", "rollout", "final_weights"]
