"""``error_driven``: a spiking neuron must learn to match a teacher's membrane potential.

The error-driven task of Jordan, Schmidt, Senn & Petrovici 2021 (eLife 10:e66273,
"Evolving interpretable plasticity for spiking networks", section "Error-driven learning",
Fig. 4; code: Happy-Algorithms-League/e2l-cgp-snn, experiments/error_driven). Five Poisson
inputs, each at a rate drawn from U(150, 850) Hz, drive a student and a teacher neuron
(NEST ``iaf_psc_exp``, no reset: C_m = 250 pF, tau_m = 10 ms, tau_syn = 2 ms, E_L = -70 mV,
so one pA of weight adds 0.04 mV: ``[network] w_scale = tau_m / C_m``). The teacher's weights
are U(-20, 20) + 15 pA and fixed; the student's start at 5 pA and follow the rule, which
sees the teacher's membrane potential ``u_target`` (set every 5 ms), its own ``v_post``,
each input's unit-weight ``psp`` and ``w``; the synapse low-passes the rule's output with
tau_I = 100 ms (``[network] dw_tau``) before it changes ``w``.

Meta-loss of one episode: the mean squared distance of the student's and the teacher's
membrane potentials after the first 10 % of the episode, divided by the mean of the same
distance without plasticity over the task's episodes (:attr:`ErrorDriven.reference_mse`,
one number per task, so that 1 = no learning on average and 0 = the teacher's trajectory;
``explained`` is ``1 - loss``). Not each episode's own distance without plasticity: that
ranges over three decades (0.03 to 30 mV^2 in 256 episodes), and the few episodes whose
teacher starts close to the student would dominate the meta-gradient. A student's ``w``
is normalized by the spread of the teacher's weights (:meth:`ErrorDriven.feature_stats`).

The student's spikes do not enter the loss (no reset): the membrane is smooth in the rule's
parameters and gradients are exact. Input spikes are Poisson counts per time step
(``s_pre`` can exceed 1 at 850 Hz and dt = 1 ms), which the linear membrane sums exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import ClassVar

import jax
import jax.numpy as jnp

from ..config import ConfigError, TaskConfig
from ..registry import TASKS
from ..rules.symbolic import SymbolicRule
from .base import Task


@TASKS.register("error_driven")
@dataclass(frozen=True)
class ErrorDriven(Task):
    @dataclass(frozen=True)
    class Config(TaskConfig):
        name: str = "error_driven"
        n_pre: int = 5
        steps: int = 10_000  # 10 s at dt = 1 ms (E2L: t_sim = 10 s)
        rate_range: list[float] = field(default_factory=lambda: [150.0, 850.0])  # Hz (E2L: range_input_rates)
        teacher_range: list[float] = field(default_factory=lambda: [-20.0, 20.0])  # pA (E2L: range_teacher_weights)
        teacher_shift: float = 15.0  # pA added to every teacher weight (E2L: do_shift_weights)
        w0: float = 5.0  # pA, the student's initial weights (E2L: initial_weight)
        target_every: float = 5.0  # ms between updates of u_target (E2L: t_sim_step)
        skip: float = 0.1  # leading share of the episode the loss leaves out (E2L: first 10 %)
        max_weight: float = 1000.0

        # every *_range is checked to be [low, high] where configs are read (discover.config)
        nonnegative: ClassVar[tuple[str, ...]] = ("rate_range",)

        def check(self, cfg):
            super().check(cfg)
            n = cfg.network
            if n.kind != "lif" or n.synapse != "current" or n.integration != "exact":
                raise ConfigError("task error_driven needs a current-based LIF neuron with exact integration: set "
                                  "[network] kind = \"lif\", synapse = \"current\", integration = \"exact\"")
            if n.reset:
                raise ConfigError("task error_driven compares membrane potentials of neurons without reset (E2L): "
                                  "set [network] reset = false")
            if self.record_every != 1:
                raise ConfigError("task error_driven reads the membrane potential of every step: set [task] "
                                  "record_every = 1")
            if not 0 <= self.skip < 1:
                raise ConfigError(f"[task] skip = {self.skip} must be in [0, 1) (a share of the episode)")
            if self.target_every < n.dt:
                raise ConfigError(f"[task] target_every = {self.target_every} ms is shorter than a time step "
                                  f"([network] dt = {n.dt} ms)")

    name: ClassVar[str] = "error_driven"
    activity: ClassVar[str] = "v_post"

    @property
    def first(self) -> int:
        """The first step the loss reads."""
        return int(self.config.skip * self.steps)

    def sample(self, key, n):
        return jax.vmap(self._sample_one)(jax.random.split(key, n))

    def _sample_one(self, key):
        c, net = self.config, self.network
        kr, ks, kw = jax.random.split(key, 3)
        rates = jax.random.uniform(kr, (net.n_pre,), minval=c.rate_range[0], maxval=c.rate_range[1])
        s_pre = jax.random.poisson(ks, rates * net.dt * 1e-3, (self.steps, net.n_pre)).astype(jnp.float32)
        w_teacher = jax.random.uniform(kw, (net.n_post, net.n_pre), minval=c.teacher_range[0],
                                       maxval=c.teacher_range[1]) + c.teacher_shift
        W0 = jnp.full((net.n_post, net.n_pre), c.w0, jnp.float32)
        psp = net.unit_psp(s_pre)
        u_teacher = net.v_rest + psp @ w_teacher.T
        hold = max(1, round(c.target_every / net.dt))
        u_target = u_teacher[(jnp.arange(self.steps) // hold) * hold]
        u_none = net.v_rest + psp @ W0.T
        return {"s_pre": s_pre, "u_target": u_target, "u_teacher": u_teacher, "W0": W0,
                "w_teacher": w_teacher, "mse_none": jnp.mean((u_none - u_teacher)[self.first:] ** 2)}

    @cached_property
    def reference_mse(self) -> float:
        """The mean squared distance (mV^2) without plasticity over 64 episodes of a fixed
        seed: the loss's unit (computed once, eagerly, even when first asked inside a trace)."""
        with jax.ensure_compile_time_eval():
            eps = self.sample(jax.random.key(77_777), 64)
            return max(float(jnp.mean(eps["mse_none"])), 1e-12)

    def distance(self, rollout, episode):
        """Squared distance of the student's and the teacher's potentials per step (mV^2)."""
        return ((rollout.activity - episode["u_teacher"]) ** 2)[self.first:]

    def loss(self, rollout, episode):
        return jnp.mean(self.distance(rollout, episode)) / self.reference_mse

    def explained(self, loss):
        return 1.0 - loss

    def e2l_fitness(self, rollout, episode):
        """E2L's fitness of one trial: minus the L2 norm (mV) of the potentials' difference
        sampled every 1 ms, the first 10 % left out (``error`` in E2L's ``sim.py``)."""
        return -jnp.sqrt(jnp.sum(self.distance(rollout, episode)) * self.network.dt)

    def feature_stats(self):
        """``w``: the spread of the teacher's weights (uniform: mean, (high - low) / sqrt 12),
        the weights a student's rule must reach; without plasticity ``w`` sits at ``w0``
        and a probe would see no spread at all."""
        lo, hi = self.config.teacher_range
        return {"w": ((lo + hi) / 2 + self.config.teacher_shift, max((hi - lo) / 12**0.5, 1e-6))}

    def references(self):
        return {"none": SymbolicRule.from_string("0*w", {}, label="none")}

    def reference_kind(self):
        return "baseline"

