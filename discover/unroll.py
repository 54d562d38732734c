"""Unrolling step functions over time with bounded memory.

``unroll`` runs ``lax.scan`` over chunks of ``chunk`` steps; each chunk is wrapped in
``jax.checkpoint``, so reverse-mode differentiation stores the carry only at chunk
boundaries and recomputes inside a chunk: memory ~ O(T/chunk + chunk) instead of O(T).
"""

from __future__ import annotations

from collections.abc import Callable

import jax


def unroll(step: Callable, carry, xs, chunk: int | None = None, truncate: bool = False):
    """``lax.scan(step, carry, xs)``, checkpointed every ``chunk`` steps.

    Args:
      step: ``(carry, x_t) -> (carry, y_t)``.
      carry: the initial state pytree.
      xs: a pytree of arrays with leading time axis ``T``.
      chunk: steps per checkpointed segment; ``None`` or ``>= T`` means a plain scan.
        ``T`` must be a multiple of ``chunk``.
      truncate: truncated backpropagation through time: no gradient flows through the
        carry from one segment to the next (``stop_gradient`` at segment starts), so the
        gradient with respect to parameters used in every step is the sum of each
        segment's own contribution. Bounds the growth of gradients through long
        closed loops (e.g. W -> membrane -> surrogate spike -> STDP -> W), at the price
        of a bias towards effects shorter than a segment.

    Returns:
      ``(final_carry, ys)`` exactly as ``lax.scan`` would.
    """
    T = jax.tree_util.tree_leaves(xs)[0].shape[0]
    if chunk is None or chunk >= T:
        return jax.lax.scan(step, carry, xs)
    if T % chunk:
        raise ValueError(f"episode length {T} is not a multiple of the checkpoint chunk {chunk}; "
                         "choose meta.checkpoint_every to divide the number of steps")
    n = T // chunk
    xs_c = jax.tree_util.tree_map(lambda a: a.reshape((n, chunk) + a.shape[1:]), xs)

    @jax.checkpoint
    def seg(c, x_chunk):
        if truncate:
            c = jax.lax.stop_gradient(c)
        return jax.lax.scan(step, c, x_chunk)

    carry, ys = jax.lax.scan(seg, carry, xs_c)
    ys = jax.tree_util.tree_map(lambda a: a.reshape((T,) + a.shape[2:]), ys)
    return carry, ys


def record_every(step: Callable, every: int, record: Callable):
    """Wrap ``step`` to run over blocks of ``every`` steps (see :func:`blocks`) and emit
    ``record(carry, ys)`` once per block: only every ``every``-th state is kept in memory."""

    def inner(carry, x_block):
        carry, ys = jax.lax.scan(step, carry, x_block)
        return carry, record(carry, ys)

    return inner


def blocks(xs, every: int):
    """Reshape time-major ``xs`` to ``[T/every, every, ...]`` for :func:`record_every`."""
    return jax.tree_util.tree_map(lambda a: a.reshape((a.shape[0] // every, every) + a.shape[1:]), xs)


__all__ = ["unroll", "record_every", "blocks"]
