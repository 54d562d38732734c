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
- ``score(rollout, episode)``: higher is better, default ``1 - loss``;
- optionally ``explained(loss)``: the share of the target a rule with this mean
  meta-loss explains (imitate: ``1 - loss``, an R^2), checked against ``[task]
  fit_threshold`` so that a poor fit is said, not hidden;
- optionally an ``episode["valid"]`` flag (e.g. the teacher stayed bounded): invalid
  episodes are left out of every stage and counted.

Divergence: every rollout of a task runs with the guard ``w_limit = [task] max_weight``;
an episode whose weights leave it is frozen there and counts ``diverged_loss`` (no
gradient), so one diverging episode cannot turn the meta-loss into NaN.

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

import jax
import jax.numpy as jnp

from ..config import TaskConfig
from ..rollout import Rollout, rollout


@dataclass(frozen=True)
class Task:
    config: TaskConfig
    network: object

    Config: ClassVar[type] = TaskConfig
    name: ClassVar[str] = "task"
    diverged_loss: ClassVar[float] = 1.0  # what an episode with diverged weights counts (imitate: doing nothing)
    # whether visited() steps between spikes too; False where a task simulates spike events
    # only (fit_protocols), so that distillation samples events alone
    between_spikes: ClassVar[bool] = True
    # the local variable a rollout records as its activity (None: the network's, y or s_post)
    activity: ClassVar[str | None] = None
    # distillation adds a polynomial student itself and its prunings to the front
    # (distill.stage.pruned_student), where a regression on its dw drops terms it needs
    prune_student: ClassVar[bool] = False

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

    def training_sample(self, key, n):
        """The episodes meta-training draws (default: :meth:`sample`); a task whose episodes
        are a finite recording keeps the ones validation and verification see out of it."""
        return self.sample(key, n)

    def evaluation_sample(self, key, n):
        """The episodes verification scores rules on (default: :meth:`sample`); a task whose
        rules must be judged on data no stage of meta-training saw (held-out classes) draws
        them apart."""
        return self.sample(key, n)

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

    def feature_stats(self) -> dict[str, tuple[float, float]]:
        """``{variable: (mean, sd)}`` a student's input normalization takes instead of the
        probe's, where the task knows better than episodes without plasticity (the spread
        of the weights its solutions span; default: none)."""
        return {}

    def rule_variables(self) -> tuple[str, ...] | None:
        """The local variables this task's rules can see (``None``: all of the network's),
        e.g. those a rule applied once per trial reads."""
        return None

    def rule_inputs(self) -> tuple[str, ...]:
        """Local variables a student must see besides its defaults (e.g. a teacher's)."""
        return ()

    def references(self) -> dict:
        """Rules verification runs beside the learned one: ``{name: rule}`` (e.g. a teacher)."""
        return {}

    def reference_kind(self) -> str:
        """What ``references()`` are, as ``verification.csv`` names them: ``"teacher"`` (a rule
        the task imitates), ``"published"`` (published fits to the task's data) or ``"baseline"``
        (hand-made rules to beat, such as no plasticity)."""
        return "teacher"

    def explained(self, loss: float) -> float | None:
        """The share of the target explained by a rule of mean meta-loss ``loss``; ``None``:
        this task has no such measure (then no poor-fit warning)."""
        return None

    def chi_square(self, mean_loss: float) -> float | None:
        """The chi-square of a rule of mean meta-loss ``mean_loss`` where the meta-loss is a
        squared error in units of measurement errors (fit_protocols: ``N * E``), for the
        ``aic`` selection policy; ``None``: this task has none."""
        return None

    def data_candidates(self, rule, params, names, max_degree: int) -> list:
        """Equations (sympy) distillation adds to its front beside those fitted to the neural
        rule, e.g. term sets fitted to a task's data directly (fit_protocols); default none."""
        return []

    def data_predictions(self, rules: dict):
        """A table of the task's data beside each rule's prediction (``{name: (rule,
        params)}``), which verification writes as ``data_fit.csv``; ``None``: no data."""
        return None

    def behaviour(self, rules: dict, episodes):
        """What each rule does on the task beyond its objective, which verification writes
        as ``behaviour.csv`` and the report shows: ``[(rule, metric, at, values)]``, ``values``
        one number per episode (their mean and 95 % interval are written), ``at`` a point of
        a curve (e.g. seconds of learning) or ``None`` for a single number. ``rules``:
        ``{name: (rule, params)}`` (neural, selected, references); default: nothing."""
        return None

    def classification(self, rules: dict):
        """A table of methods (the rules, baselines) and their accuracy on a learning task,
        which verification writes as ``classification.csv`` (columns ``method,
        accuracy_mean, ci_low, ci_high, seeds``, more optional) and the report shows;
        ``rules`` as for :meth:`behaviour`; default: none."""
        return None

    def check_episodes(self, episodes) -> str | None:
        """Look at sampled episodes before meta-training: raise where they cannot train a
        rule (e.g. a teacher that diverges), return a note to print, or ``None``."""
        return None

    @property
    def w_limit(self) -> float | None:
        return getattr(self.config, "max_weight", None)

    @staticmethod
    def valid_mask(episodes):
        """Per-episode validity of a batch (all ``True`` without a ``valid`` entry)."""
        import numpy as np

        if "valid" in episodes:
            return np.asarray(episodes["valid"], bool)
        return np.ones(jax.tree_util.tree_leaves(episodes)[0].shape[0], bool)

    @classmethod
    def keep_valid(cls, episodes):
        """The valid episodes of a batch (host-side: the batch shrinks)."""
        mask = cls.valid_mask(episodes)
        if mask.all():
            return episodes
        idx = jax.numpy.asarray(mask.nonzero()[0])
        return jax.tree_util.tree_map(lambda a: a[idx], episodes)

    # -- run by the stages (one rollout each) ---------------------------------------------------
    def simulate(self, rule, params, episode, *, chunk=None, truncate=False, record_locals=False) -> Rollout:
        return rollout(self.network, rule, params, self.initial_state(episode), self.inputs(episode),
                       record_every=self.record_every, steps=self.steps, chunk=chunk, truncate=truncate,
                       record_locals=record_locals, w_limit=self.w_limit, activity=self.activity)

    def episode_loss(self, rule, params, episode, *, chunk=None, truncate=False):
        """``(meta-loss, mean squared dw per synapse and step, diverged)`` of one episode; a
        diverged episode's loss is ``diverged_loss``, without gradient."""
        out = self.simulate(rule, params, episode, chunk=chunk, truncate=truncate)
        loss = self.loss(out, episode)
        loss = jnp.where(out.diverged, jax.lax.stop_gradient(jnp.asarray(self.diverged_loss, loss.dtype)), loss)
        return loss, out.energy, out.diverged

    def episode_score(self, rule, params, episode):
        return self.score(self.simulate(rule, params, episode), episode)

    def visited(self, rule, params, episode):
        """The local variables the synapses saw at every step: ``{name: [T, post, pre]}``;
        in a network whose full record would pass :data:`VISITED_MAX` values per variable,
        the synapses of the first ``VISITED_MAX // (T * post)`` presynaptic inputs only (the
        probe of the rule's input normalization and distillation's samples read this; a
        1000 x 100 network over 2,000 steps would take 25 GB in full)."""
        T, n_post, n_pre = int(self.steps), int(self.network.n_post), int(self.network.n_pre)
        cols = True if T * n_post * n_pre <= VISITED_MAX else max(1, VISITED_MAX // (T * n_post))
        return self.simulate(rule, params, episode, record_locals=cols).local


class SpikesPerStep:
    """For a spiking task whose input spikes are looked up per step (``self.spikes(episode,
    t) -> [n_pre]``) instead of held as ``[T, n_pre]`` arrays, and whose distillation samples
    the first ``[task] visited_pre`` inputs' synapses (``correlation_detection``,
    ``inhibitory_balance``); list it before :class:`Task`."""

    def simulate(self, rule, params, episode, *, chunk=None, truncate=False, record_locals=False) -> Rollout:
        return rollout(self.network, rule, params, self.initial_state(episode),
                       lambda t: {"s_pre": self.spikes(episode, t)}, steps=self.steps,
                       record_every=self.record_every, chunk=chunk, truncate=truncate,
                       record_locals=record_locals, w_limit=self.w_limit)

    def visited(self, rule, params, episode):
        """The local variables of the first ``visited_pre`` inputs' synapses at every step."""
        return self.simulate(rule, params, episode, record_locals=self.config.visited_pre).local


#: most values per local variable and episode that :meth:`Task.visited` records
VISITED_MAX = 2**24

__all__ = ["Task", "SpikesPerStep", "VISITED_MAX"]
