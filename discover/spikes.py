"""Spike nonlinearity with a surrogate gradient.

Forward: the Heaviside step ``s = [v >= v_th]``. Backward: the SuperSpike surrogate of
Zenke & Ganguli 2018 (Neural Comput. 30:1514, Eq. 6), the derivative of a fast sigmoid,
``ds/dv ~= 1 / (beta * |v - v_th| + 1)**2`` with ``beta`` in 1/mV. ``beta`` sets how far
below threshold a neuron still passes gradient: at ``beta = 1/mV`` a neuron 1 mV away
passes a quarter of the peak. The default (``beta = 1``) suits membrane potentials in mV
with thresholds ~16 mV above rest.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def spike(u: jax.Array, beta: float = 1.0) -> jax.Array:
    """``1.0`` where ``u >= 0`` (``u = v - v_th``), with a SuperSpike surrogate gradient."""
    return (u >= 0).astype(u.dtype)


@spike.defjvp
def _spike_jvp(beta, primals, tangents):
    (u,), (du,) = primals, tangents
    out = spike(u, beta)
    return out, du / (beta * jnp.abs(u) + 1.0) ** 2
