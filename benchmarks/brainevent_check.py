"""brainevent's event-driven pair-STDP update, for the comparison in benchmarks/README.md.

Runs in its own venv (brainevent is not a dependency)::

    python3 -m venv /tmp/be && /tmp/be/bin/pip install brainevent numba
    /tmp/be/bin/python benchmarks/brainevent_check.py

16 networks of 1000 inputs x 100 neurons, 15 Hz inputs and ~40 Hz outputs at dt = 0.1 ms
(spike probabilities 0.0015 and 0.004 per step), traces decaying by 0.995 per step,
additive pair STDP clipped to [0, 1]; plasticity only (no neurons), 2000 steps.
"""

import time

import brainevent as b
import jax
import jax.numpy as jnp

B, NPRE, NPOST, T = 16, 1000, 100, 2000


def run(backend):
    def step(c, t):
        W, trp, tro = c
        s = jax.random.uniform(jax.random.fold_in(jax.random.key(0), t), (B, NPRE)) < 0.0015
        so = jax.random.uniform(jax.random.fold_in(jax.random.key(1), t), (B, NPOST)) < 0.004
        trp, tro = trp * 0.995 + s, tro * 0.995 + so
        W = jax.vmap(lambda W, s, tr: b.update_dense_on_binary_pre(W, s, -0.0105 * tr, 0.0, 1.0,
                                                                   backend=backend))(W, s, tro)
        W = jax.vmap(lambda W, s, tr: b.update_dense_on_binary_post(W, 0.01 * tr, s, 0.0, 1.0,
                                                                    backend=backend))(W, so, trp)
        return (W, trp, tro), None

    f = jax.jit(lambda W: jax.lax.scan(step, (W, jnp.zeros((B, NPRE)), jnp.zeros((B, NPOST))), jnp.arange(T))[0][0])
    W = jnp.full((B, NPRE, NPOST), 0.5)
    f(W).block_until_ready()
    t0 = time.perf_counter()
    f(W).block_until_ready()
    dt = (time.perf_counter() - t0) / T
    print(f"{backend}: {dt * 1e6:.1f} us/step, {B * NPRE * NPOST / dt:.3g} synapse-steps/s (plasticity only)")


if __name__ == "__main__":
    for backend in ("jax_raw", "numba"):
        run(backend)
