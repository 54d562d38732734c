"""A task = an episode sampler + a meta-loss on a rollout (learned_optimization's split).

A task says what the network must achieve; it does not run the simulation. The stages
run :func:`discover.rollout.rollout` on what the task provides and hand the result to
its loss, so every task gets checkpointing, truncation, sharding, distillation and
verification for free:

- ``Config``: a frozen dataclass subclassing :class:`discover.config.TaskConfig` with the
  task's own keys (only those are valid under ``[task]`` when ``name`` picks this task);
- ``sample(key, n) -> episodes``: a batched pytree, leading axis ``n``; by default an
  episode holds ``W0`` (initial weights) and the network's inputs (``x``, or ``s_pre`` /
  ``s_post``, and ``m``), time-major;
- ``loss(rollout, episode) -> scalar``: the meta-loss of one episode, from its
  :class:`~discover.rollout.Rollout` (recorded weights, activity, final state);
- ``score(rollout, episode)``: higher is better, default ``1 - loss``.

Example (a rate neuron whose output must reach a target mean rate):

    @TASKS.register("target_rate")
    class TargetRate(Task):
        @dataclass(frozen=True)
        class Config(TaskConfig):
            target: float = 2.0

        def sample(self, key, n):
            x = jax.random.uniform(key, (n, self.steps, self.network.n_pre))
            return {"x": x, "W0": jnp.full((n, self.network.n_post, self.network.n_pre), 0.1)}

        def loss(self, rollout, episode):
            y = rollout.activity[-10:] / self.record_every
            return jnp.mean((y - self.config.target) ** 2)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from ..config import TaskConfig
from ..rollout import Rollout, rollout


@dataclass(frozen=True)
class Task:
    config: TaskConfig
    network: object

    Config: ClassVar[type] = TaskConfig
    name: ClassVar[str] = "task"

    @classmethod
    def from_config(cls, cfg, network) -> "Task":
        """The task of a whole :class:`~discover.config.Config` (``cfg.task`` is ``cls.Config``)."""
        return cls(config=cfg.task, network=network)

    @classmethod
    def make(cls, network, **kw) -> "Task":
        """Shortcut for scripts and tests: ``Imitate.make(net, steps=100, teacher=rule)``;
        keys of ``cls.Config`` go to the config (sizes default to the network's), the rest
        to the task."""
        keys = {f.name for f in dataclasses.fields(cls.Config)}
        config = {"n_pre": network.n_pre, "n_post": network.n_post,
                  **{k: v for k, v in kw.items() if k in keys}}
        return cls(config=cls.Config(**config), network=network, **{k: v for k, v in kw.items() if k not in keys})

    @property
    def steps(self) -> int:
        return self.config.steps

    @property
    def record_every(self) -> int:
        return self.config.record_every

    # -- what a task defines ------------------------------------------------------------------
    def sample(self, key, n):
        raise NotImplementedError(f"{type(self).__name__} must define sample(key, n)")

    def loss(self, rollout: Rollout, episode):
        raise NotImplementedError(f"{type(self).__name__} must define loss(rollout, episode)")

    def score(self, rollout: Rollout, episode):
        return 1.0 - self.loss(rollout, episode)

    def initial_state(self, episode):
        return self.network.init_state(episode["W0"])

    def inputs(self, episode):
        return {k: episode[k] for k in self.network.input_names if k in episode}

    # hooks a task may override
    def driver(self):
        """A rule that drives the network where a student's input normalization is probed
        (a teacher); ``None``: no plasticity."""
        return None

    def rule_inputs(self) -> tuple[str, ...]:
        """Local variables a student must see besides its defaults (e.g. a teacher's)."""
        return ()

    def references(self) -> dict:
        """Rules verification runs beside the learned one: ``{name: rule}`` (e.g. a teacher)."""
        return {}

    # -- run by the stages (one rollout each) ---------------------------------------------------
    def simulate(self, rule, params, episode, *, chunk=None, truncate=False, record_locals=False) -> Rollout:
        return rollout(self.network, rule, params, self.initial_state(episode), self.inputs(episode),
                       record_every=self.record_every, steps=self.steps, chunk=chunk, truncate=truncate,
                       record_locals=record_locals)

    def episode_loss(self, rule, params, episode, *, chunk=None, truncate=False):
        """``(meta-loss, mean squared dw per synapse and step)`` of one episode."""
        out = self.simulate(rule, params, episode, chunk=chunk, truncate=truncate)
        return self.loss(out, episode), out.energy

    def episode_score(self, rule, params, episode):
        return self.score(self.simulate(rule, params, episode), episode)

    def visited(self, rule, params, episode):
        """The local variables every synapse saw at every step: ``{name: [T, post, pre]}``."""
        return self.simulate(rule, params, episode, record_locals=True).local


__all__ = ["Task"]
