"""Meta-training over several processes (machines): ``jax.distributed`` (DESIGN §4).

``plasticity discover CONFIG --coordinator HOST:PORT --num-processes N --process-id I``
starts process ``I`` of ``N``; ``--distributed`` lets :func:`jax.distributed.initialize`
read the same from the cluster's environment (SLURM, Open MPI, ...). After it, every
process sees the devices of all processes as ``jax.devices()``, and
:mod:`discover.sharding` lays the meta-batch (gradient) or the ES population over all of
them: each process simulates its share of the episodes, and the one reduction (the mean
meta-loss, its gradient, the ES fitness ranks) crosses processes. Every process draws the
same random numbers (keys are split before the batch is laid out), so all of them hold
the same rule parameters after every step, equal to a one-process run's to float tolerance
(``tests/test_distributed.py``).

Process 0 writes the run directory; the others write nothing. To resume, every process
reads the last good checkpoint, so the run directory must be on a file system all of them
see (a cluster's home or scratch); a process that finds another checkpoint step than
process 0 stops with an error before any work. On CPUs the processes exchange their
results with gloo (``jax_cpu_collectives_implementation``); GPUs use NCCL.
"""

from __future__ import annotations

import re

import jax

from .config import ConfigError


def check_arguments(coordinator: str | None, num_processes: int | None, process_id: int | None,
                    auto: bool = False) -> bool:
    """Whether these command-line settings ask for several processes; a
    :class:`~discover.config.ConfigError` naming the flag when they are incomplete or wrong."""
    given = {"--coordinator": coordinator, "--num-processes": num_processes, "--process-id": process_id}
    if auto:
        if any(v is not None for v in given.values()):
            raise ConfigError("--distributed reads the coordinator, process count and process id from the "
                              "cluster's environment; pass either it or --coordinator / --num-processes / "
                              "--process-id, not both")
        return True
    if all(v is None for v in given.values()):
        return False
    missing = [k for k, v in given.items() if v is None]
    if missing:
        raise ConfigError(f"several processes need all of --coordinator HOST:PORT, --num-processes N and "
                          f"--process-id I; missing {', '.join(missing)} (or pass --distributed to read them "
                          "from the cluster's environment, e.g. under SLURM)")
    if not re.fullmatch(r"[^\s:]+:\d{1,5}", coordinator) or not 0 < int(coordinator.rsplit(":", 1)[1]) < 65536:
        raise ConfigError(f"--coordinator {coordinator!r} is not HOST:PORT (e.g. 127.0.0.1:12355 or "
                          "node001:12355): process 0's host name or address and a free TCP port")
    if num_processes < 1:
        raise ConfigError(f"--num-processes {num_processes} must be at least 1")
    if not 0 <= process_id < num_processes:
        raise ConfigError(f"--process-id {process_id} must be in 0 .. {num_processes - 1} "
                          f"(--num-processes {num_processes})")
    return True


def initialize(coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None,
               timeout_s: int = 300) -> None:
    """Join the processes of one run (before any JAX computation in this process).

    With all of ``coordinator``, ``num_processes``, ``process_id`` ``None``,
    :func:`jax.distributed.initialize` takes them from the cluster's environment. CPU
    processes exchange results with gloo.
    """
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                                   process_id=process_id, initialization_timeout=timeout_s)
    except (RuntimeError, ValueError) as e:  # no coordinator reachable, an environment JAX cannot read
        if coordinator is None:
            raise ConfigError(f"--distributed found no cluster environment that jax.distributed can read "
                              f"({str(e).strip().splitlines()[0]}); run it under SLURM (srun) or Open MPI "
                              "(mpirun), or pass --coordinator HOST:PORT --num-processes N --process-id I") from None
        raise ConfigError(f"could not join the other processes ({str(e).strip().splitlines()[0]}); check that "
                          "process 0 runs with the same --coordinator HOST:PORT, that the port is free and "
                          "reachable from this host, and that --num-processes is the same everywhere") from None


def started() -> bool:
    """Whether this process is one of several (:func:`initialize` joined them)."""
    return jax.process_count() > 1


def is_writer() -> bool:
    """Whether this process writes files: process 0 (the only one, without ``jax.distributed``)."""
    return jax.process_index() == 0


def same_everywhere(value: int, what: str) -> None:
    """Stop unless every process holds the same integer ``value`` (process 0's is the reference)."""
    if not started():
        return
    import numpy as np
    from jax.experimental import multihost_utils

    ref = int(multihost_utils.broadcast_one_to_all(np.int32(value)))
    if ref != value:
        raise ConfigError(f"process {jax.process_index()} has {what} {value} where process 0 has {ref}: the "
                          "processes see different run directories. Put the run directory (--out) on a file "
                          "system that every process sees, or start all of them without a checkpoint")


__all__ = ["check_arguments", "initialize", "started", "is_writer", "same_everywhere"]
