"""Meta-optimizers: gradients through the unrolled episodes (optax), or evolution (evosax).

Every meta-optimizer has a ``Config`` (a subclass of :class:`discover.config.MetaConfig`;
``[meta] optimizer`` picks it) and two pure functions, optax-style:

- ``init(key, params) -> state``;
- ``step(params, state, episodes, step) -> (params, state, loss, norm)``, jitted by
  :func:`discover.meta.meta_train`, which owns everything they share (episodes,
  validation, checkpoints, NaN handling).

Checkpointed and truncated unrolls belong to the gradient estimator, so their keys live
in :class:`GradientConfig`, not in the task.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import jax
import jax.numpy as jnp
import optax

from .config import ConfigError, MetaConfig
from .registry import META_OPTIMIZERS
from .sharding import batch_sharding, constrain


def batch_loss(task, rule, dw_penalty: float = 0.0, dw_scale: float = 1.0, chunk=None, truncate=False,
               stats: bool = False, l1_penalty: float = 0.0):
    """Mean meta-loss over a batch, plus ``dw_penalty * mean(dw**2) / dw_scale**2`` and
    ``l1_penalty * sum(|core parameters|)``.

    The mean runs over the batch's valid episodes (``episode["valid"]``, e.g. those whose
    teacher stayed bounded); an episode whose weights diverged counts ``task.diverged_loss``
    without gradient (:meth:`discover.tasks.base.Task.episode_loss`), so a few diverging
    episodes slow learning down instead of turning it into NaN. With ``stats`` the
    function returns ``(loss, episodes diverged, valid episodes)``.

    The penalty is a parsimony prior: rule components that do not help the objective
    (e.g. zero-mean terms that only add noise to the weights) cost energy and are driven
    out, which makes the learned rule identifiable. It does not change which terms are
    needed, nor their ratios, only their overall scale.

    The L1 penalty is the lasso of the rule's own parameters (a polynomial's normalized
    coefficients: Shervani-Tabar & Rosenbaum 2023's term pool with L1): where the data are
    few (ten measured protocols, ``fit_protocols``) it keeps only the terms the data need.
    """
    def f(params, episodes):
        loss, energy, diverged = jax.vmap(
            lambda e: task.episode_loss(rule, params, e, chunk=chunk, truncate=truncate))(episodes)
        valid = episodes["valid"] if "valid" in episodes else jnp.ones(loss.shape, bool)
        n = jnp.sum(valid)
        den = jnp.maximum(n, 1)
        out = jnp.sum(jnp.where(valid, loss, 0.0)) / den
        if dw_penalty:
            out = out + dw_penalty * jnp.sum(jnp.where(valid & ~diverged, energy, 0.0)) / den / dw_scale**2
        if l1_penalty:
            out = out + l1_penalty * sum(jnp.sum(jnp.abs(a)) for a in jax.tree_util.tree_leaves(params["core"]))
        if stats:
            return out, jnp.sum(valid & diverged), n
        return out
    return f


# -- gradients ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class GradientConfig(MetaConfig):
    optimizer: str = "adam"  # adam | sgd
    learning_rate: float = 3e-3
    tau_learning_rate: float = 0.0  # learning rate of the log time constants; 0 = learning_rate
    lr_schedule: str = "cosine"  # cosine (warm-up, then decay to 2 %) | constant
    grad_clip: float = 1.0  # global gradient norm
    checkpoint_every: int = 0  # steps per jax.checkpoint segment; 0 = no rematerialization; 1 = every step (rollout)
    truncate_every: int = 0  # steps per truncated-backprop segment (also checkpointed); 0 = full backprop
    # > 0: where the student diverges (all validation episodes, or a non-finite meta-loss), go
    # back to the last validated parameters and halve the step, at most this often, before
    # stopping with the error (discover.meta); 0 = stop at once
    backoff: int = 0

    choices: ClassVar[dict[str, tuple]] = {"lr_schedule": ("cosine", "constant")}
    positive: ClassVar[tuple[str, ...]] = MetaConfig.positive + ("learning_rate", "grad_clip")
    nonnegative: ClassVar[tuple[str, ...]] = MetaConfig.nonnegative + ("backoff",)

    def check(self, cfg):
        super().check(cfg)
        t = cfg.task
        if self.tau_learning_rate < 0:
            raise ConfigError("[meta] tau_learning_rate must be >= 0 (0 = the same as learning_rate)")
        every = self.truncate_every
        if every and (every % t.record_every or t.steps % every):
            raise ConfigError(f"[meta] truncate_every = {every} must be a multiple of [task] record_every = "
                              f"{t.record_every} and divide [task] steps = {t.steps}")
        if self.checkpoint_every and t.steps % self.checkpoint_every:
            raise ConfigError(f"[meta] checkpoint_every = {self.checkpoint_every} must divide [task] steps = "
                              f"{t.steps}")


EXTEND_PEAK = 0.5  # learning rate at the start of each extension block, in units of learning_rate


def make_optimizer(meta: GradientConfig) -> optax.GradientTransformation:
    """Adam or SGD with global-norm clipping; ``tau_learning_rate`` gives the log time
    constants their own rate (same schedule shape)."""
    def schedule(peak):
        if meta.lr_schedule != "cosine":
            return peak
        first = optax.warmup_cosine_decay_schedule(0.0, peak, min(100, meta.steps // 10 + 1), meta.steps,
                                                   end_value=peak * 0.02)
        if meta.max_steps <= meta.steps:
            return first
        # each extension block (discover.meta.planned_end) restarts the decay from half the
        # peak (a warm restart, Loshchilov & Hutter 2017, arXiv:1608.03983): the steps of the
        # first `steps` are those of a run without extension
        block = meta.block
        n = -(-(meta.max_steps - meta.steps) // block)
        rest = [optax.cosine_decay_schedule(peak * EXTEND_PEAK, block, alpha=0.02 / EXTEND_PEAK)] * n
        return optax.join_schedules([first, *rest], [meta.steps + k * block for k in range(n)])

    def base(peak):
        return optax.adam(schedule(peak)) if meta.optimizer == "adam" else optax.sgd(schedule(peak))

    if not meta.tau_learning_rate or meta.tau_learning_rate == meta.learning_rate:
        inner = base(meta.learning_rate)
    else:
        inner = optax.multi_transform({"core": base(meta.learning_rate), "log_tau": base(meta.tau_learning_rate)},
                                      lambda params: {k: k for k in params})
    return optax.chain(optax.clip_by_global_norm(meta.grad_clip), inner)


@META_OPTIMIZERS.register("sgd")
@META_OPTIMIZERS.register("adam")  # the inner decorator registers first: `plasticity list` shows adam first
class GradientDescent:
    """Backprop through the unrolled episodes (``jax.checkpoint`` segments, optional
    truncation), global-norm clipping, Adam or SGD (optax)."""

    Config = GradientConfig
    knob = "learning_rate"  # what to lower when the loss turns NaN
    norm_name = "grad"

    def __init__(self, config: GradientConfig, task, rule):
        self.config = config
        self.tx = make_optimizer(config)
        every = config.truncate_every or config.checkpoint_every
        self.loss = batch_loss(task, rule, config.dw_penalty, getattr(rule, "output_scale", 1.0),
                               chunk=every or None, truncate=bool(config.truncate_every), l1_penalty=config.l1_penalty)
        self.sharding = batch_sharding(config.batch, "[meta] batch")
        self.what = f"meta-batch of {config.batch} episodes"

    def init(self, key, params):
        return self.tx.init(params)

    def step(self, params, state, episodes, step):
        loss, grads = jax.value_and_grad(self.loss)(params, constrain(episodes, self.sharding))
        updates, state = self.tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss, optax.tree.norm(grads)


# -- evolution strategies ------------------------------------------------------------------------
@dataclass(frozen=True)
class ESConfig(MetaConfig):
    optimizer: str = "cma_es"  # cma_es | open_es
    population: int = 16  # members per generation (one generation per step)
    es_sigma: float = 0.1  # (initial) search s.d., in parameter units
    learning_rate: float = 3e-3  # open_es: Adam on the search mean

    positive: ClassVar[tuple[str, ...]] = MetaConfig.positive + ("population", "es_sigma", "learning_rate")


def make_es(kind: str, solution, population: int, sigma: float, learning_rate: float = 3e-3):
    """An evosax strategy and its parameters.

    - ``cma_es``: CMA-ES (Hansen 2016, "The CMA Evolution Strategy: A Tutorial", arXiv:1604.00772;
      evosax's ``CMA_ES``), initial step size ``sigma`` in parameter units. Its cost grows
      as the square of the number of parameters: for polynomial and symbolic rules and
      small MLPs.
    - ``open_es``: OpenAI-ES (Salimans et al. 2017, arXiv:1703.03864; antithetic sampling,
      centered ranks) with Adam at ``learning_rate`` and a fixed ``sigma``: for large MLPs.
    """
    from evosax.algorithms import CMA_ES, Open_ES

    if kind == "cma_es":
        es = CMA_ES(population_size=population, solution=solution)
        # a floor on the step size: on a deterministic objective (a fixed episode pool) CMA-ES
        # otherwise shrinks it to 0 and its covariance update turns NaN
        return es, es.default_params.replace(std_init=sigma, std_min=sigma * 1e-3)
    es = Open_ES(population_size=population, solution=solution, optimizer=optax.adam(learning_rate),
                 std_schedule=optax.constant_schedule(sigma))
    return es, es.default_params


def searched(params, rule):
    """The part of ``params`` an evolution strategy searches: the core, plus, when the rule
    learns them, the log time constants of the traces it reads; :func:`merge` puts a
    member back together (the other time constants keep their values)."""
    out = {"core": params["core"]}
    if rule.learned_timescales:
        out["log_tau"] = {k: params["log_tau"][k] for k in rule.learned_timescales}
    return out


def merge(params, member):
    out = {**params, "core": member["core"]}
    if "log_tau" in member:
        out["log_tau"] = {**params["log_tau"], **member["log_tau"]}
    return out


@META_OPTIMIZERS.register("open_es")
@META_OPTIMIZERS.register("cma_es")
class EvolutionStrategy:
    """One generation per step: ``population`` members, each scored on the same meta-batch
    by forward simulation only (common random numbers), no gradient. It needs no surrogate
    gradient and no truncation, and it is not misled by the rough, chaotic landscape of
    closed spiking loops; the mean of the search distribution is the current rule. Members
    whose loss is not finite rank last instead of stopping the search (evosax's way)."""

    Config = ESConfig
    knob = "es_sigma"
    norm_name = "parameter"

    def __init__(self, config: ESConfig, task, rule):
        self.config, self.rule = config, rule
        self.loss = batch_loss(task, rule, config.dw_penalty, getattr(rule, "output_scale", 1.0),
                               l1_penalty=config.l1_penalty)
        self.sharding = batch_sharding(config.population, "[meta] population")
        self.what = f"population of {config.population}"

    def init(self, key, params):
        self.key = jax.random.fold_in(key, 10**9)
        c = self.config
        self.es, self.es_params = make_es(c.optimizer, searched(params, self.rule), c.population, c.es_sigma,
                                          c.learning_rate)
        return self.es.init(self.key, searched(params, self.rule), self.es_params)

    def step(self, params, state, episodes, step):
        k = jax.random.fold_in(self.key, step)
        pop, state = self.es.ask(k, state, self.es_params)
        pop = constrain(pop, self.sharding)
        fit = jax.vmap(lambda member: self.loss(merge(params, member), episodes))(pop)
        ok = jnp.isfinite(fit)
        state, _ = self.es.tell(k, pop, jnp.where(ok, fit, jnp.finfo(fit.dtype).max), state, self.es_params)
        new = merge(params, self.es.get_mean(state))
        loss = jnp.where(jnp.any(ok), jnp.sum(jnp.where(ok, fit, 0.0)) / jnp.maximum(jnp.sum(ok), 1), jnp.nan)
        return new, state, loss, optax.tree.norm(new)


def is_evolution(name: str) -> bool:
    """Whether ``[meta] optimizer = name`` is an evolution strategy (forward simulations only)."""
    return issubclass(META_OPTIMIZERS.get(name), EvolutionStrategy)


__all__ = ["GradientConfig", "GradientDescent", "ESConfig", "EvolutionStrategy", "make_optimizer", "make_es",
           "batch_loss", "searched", "merge", "is_evolution"]
