"""Synthetic recordings: what an experiment would record of a network learning by a known rule.

:func:`simulate_recording` runs a rule in a network on the input statistics of ``imitate``
and keeps what ``infer`` reads (:mod:`discover.tasks.infer`): the inputs, the postsynaptic
activity in bins, with Gaussian observation noise and some neurons not recorded (NaN), and
the initial (and, for reference, every bin's) weights. It is how the ``infer`` benchmark
and tests know the rule a recording should give back.
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np


def simulate_recording(network, rule, *, episodes: int, steps: int, record_every: int = 1, noise: float = 0.0,
                       recorded: float = 1.0, seed: int = 0, keep_weights: bool = True,
                       **inputs) -> dict[str, np.ndarray]:
    """A recording of ``rule`` learning in ``network``.

    Args:
      network: a rate or LIF network (its size is the recording's).
      rule: the rule the recorded network runs (with its default parameters).
      episodes, steps: how many episodes of how many steps.
      record_every: steps per activity bin.
      noise: observation noise, in s.d. of each episode's recorded activity.
      recorded: share of the postsynaptic neurons recorded (the first ones; the others NaN).
      seed: the seed of inputs, initial weights and noise.
      keep_weights: also keep the weights of every bin (``w``; the truth, for checks).
      inputs: ``imitate``'s input keys (``w0_range``, ``input_mean_range``, ``pre_rate_range``...).

    Returns:
      The arrays of a recording: ``x`` or ``s_pre``, ``y`` or ``s_post``, ``w0``, ``w``,
      ``record_every`` and, for spiking networks, ``dt``.
    """
    from .rules import SymbolicRule
    from .tasks.imitate import Imitate

    if not 0 < recorded <= 1:
        raise ValueError(f"recorded = {recorded}: the share of recorded neurons must be in (0, 1]")
    task = Imitate.make(network, teacher=rule if rule is not None else SymbolicRule.from_string("0*w"), steps=steps,
                        record_every=record_every, **inputs)
    k_in, k_noise = jax.random.split(jax.random.key(seed))
    eps = jax.vmap(task._inputs_one)(jax.random.split(k_in, episodes))
    params = rule.init(jax.random.key(0))
    ro = jax.jit(jax.vmap(lambda e: task.simulate(rule, params, e)))(eps)
    if bool(np.any(np.asarray(ro.diverged))):
        raise ValueError(f"the rule {getattr(rule, 'label', '')} diverged in some episodes; bound the weights or "
                         "shorten the episodes")
    A = np.asarray(ro.activity, np.float64)
    if not network.spiking:
        A = A / record_every  # the mean rate of each bin
    if noise:
        sd = A.std(axis=(1, 2), keepdims=True)
        A = A + noise * sd * np.asarray(jax.random.normal(k_noise, A.shape), np.float64)
    n_rec = max(1, int(round(network.n_post * recorded)))
    A[:, :, n_rec:] = np.nan
    out = {"w0": np.asarray(eps["W0"], np.float32), "record_every": np.asarray(record_every)}
    if keep_weights:
        out["w"] = np.asarray(ro.weights, np.float32)
    if network.spiking:
        out.update(s_pre=np.asarray(eps["s_pre"], np.float32), s_post=A.astype(np.float32),
                   dt=np.asarray(float(network.dt)))
    else:
        out.update(x=np.asarray(eps["x"], np.float32), y=A.astype(np.float32))
    return out


def write_recording(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    """Save a recording as ``.npz`` (atomically)."""
    import io

    from .io import atomic_write_bytes

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return atomic_write_bytes(Path(path), buf.getvalue())


__all__ = ["simulate_recording", "write_recording"]
