"""Sharding of the meta-batch and of the ES population over JAX devices (DESIGN §4).

Meta-training evaluates many independent episodes (gradient) or many population members
(evolution strategies) per step. Both are a leading batch axis, so the data-parallel layout
is one mesh axis, ``"batch"``, over every device JAX sees; ``jit`` (GSPMD) partitions the
``vmap``-ed simulations along it and inserts the one cross-device reduction (the mean
meta-loss). With one device — the default — nothing changes.

Which devices: all of ``jax.devices()``. Restrict them the usual ways
(``CUDA_VISIBLE_DEVICES``; on CPU, ``XLA_FLAGS=--xla_force_host_platform_device_count=N``
splits the host into N devices, one per core). The device count never changes the random
numbers (keys are split before the batch is laid out), only how XLA compiles the float
arithmetic: smooth objectives agree to float tolerance; in a closed spiking loop a float
difference can flip a spike and an ES run then takes another path
(``benchmarks/sharding.py``).
"""

from __future__ import annotations

import sys

import jax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

AXIS = "batch"


def batch_sharding(n: int, what: str) -> NamedSharding | None:
    """A sharding of a leading axis of length ``n`` over all devices, or ``None``.

    ``None`` (replicate) with one device, or when ``n`` is not a multiple of the device
    count; the latter says so on stderr, naming ``what`` (the config key to change).
    """
    devices = jax.devices()
    if len(devices) == 1:
        return None
    if n % len(devices):
        multiple = -(-n // len(devices)) * len(devices)
        print(f"warning: {what} = {n} is not a multiple of the {len(devices)} devices, so it is not "
              f"sharded (every device computes all {n}); set {what} = {multiple} to use them all",
              file=sys.stderr)
        return None
    mesh = jax.sharding.Mesh(devices, (AXIS,))
    return NamedSharding(mesh, P(AXIS))


def constrain(tree, sharding: NamedSharding | None):
    """Inside ``jit``: lay every leaf of ``tree`` out along its leading axis (no-op for ``None``)."""
    return tree if sharding is None else jax.lax.with_sharding_constraint(tree, sharding)


def place(tree, sharding: NamedSharding | None):
    """Outside ``jit``: put every leaf of ``tree`` on the devices by its leading axis."""
    return tree if sharding is None else jax.device_put(tree, sharding)


__all__ = ["AXIS", "batch_sharding", "constrain", "place"]
