"""``imitate``: a student rule must reproduce a teacher rule's weight trajectories.

A teacher (any symbolic rule: canonical, or an equation string from a config) drives a
network; the student sees the same inputs from the same initial weights. The meta-loss
of one episode is the normalized squared distance of the weight trajectories,

    L = sum_t |W_s(t) - W_T(t)|^2 / sum_t |W_T(t) - W(0)|^2,

over weights recorded every ``record_every`` steps, so ``1 - L`` is the R^2 of the
teacher's weight changes explained by the student. A student that does nothing scores 0.

With ``observe = "spikes"`` (spiking networks) or ``"activity"`` (any network: a rate
network's ``y``) the meta-loss sees only what an experiment records: the
postsynaptic activity (spike counts or summed rates in bins of ``record_every`` steps), smoothed by a
causal exponential filter of ``obs_tau`` bins, with Gaussian observation noise
(``obs_noise`` times the teacher's activity s.d.) and only the first
``1 - unrecorded_fraction`` of the postsynaptic neurons recorded:

    L = sum |S_s - S_T|^2 / sum |S_T - mean(S_T)|^2   (recorded neurons only).

Gradients reach the rule through the spikes by the surrogate of :mod:`discover.spikes`.

Identifiability: every episode draws its own input statistics (rate networks: per-input
means and an overall scale, log-uniform; spiking networks: per-neuron Poisson rates), its
own initial weights, and (open loop) its own postsynaptic rates, so the teacher's terms
are not collinear over the episode distribution.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import jax
import jax.numpy as jnp

from ..config import ConfigError, TaskConfig
from ..registry import NETWORKS, TASKS
from ..rules.base import Rule
from .base import Task


@dataclass(frozen=True)
class TeacherConfig:
    rule: str = "oja"  # a canonical name or an equation string
    params: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ImitateConfig(TaskConfig):
    name: str = "imitate"
    teacher: TeacherConfig | None = None
    w0_range: list[float] = field(default_factory=lambda: [0.2, 0.8])
    # rate inputs: x = mean + scale * L z, with a random correlation factor L per episode
    input_mean_range: list[float] = field(default_factory=lambda: [0.0, 1.0])
    input_scale_range: list[float] = field(default_factory=lambda: [0.3, 1.5])
    # spiking inputs (Hz)
    pre_rate_range: list[float] = field(default_factory=lambda: [5.0, 40.0])
    post_rate_range: list[float] = field(default_factory=lambda: [5.0, 40.0])  # open loop (given)
    # rates r_i (1 + m sin(2 pi f t + phi_i)); m, f per episode, phi_i per input (0 = constant)
    pre_modulation_range: list[float] = field(default_factory=lambda: [0.0, 0.0])
    pre_frequency_range: list[float] = field(default_factory=lambda: [2.0, 20.0])  # Hz, log-uniform
    pre_phase_spread: float = 1.0  # input phases uniform over this fraction of a cycle
    observe: str = "weights"  # weights | activity (postsynaptic activity only) | spikes (= activity, spiking)
    obs_tau: float = 5.0  # spikes: smoothing time constant in bins of record_every steps
    obs_noise: float = 0.0  # spikes: observation noise, in s.d. of the teacher's activity
    unrecorded_fraction: float = 0.0  # spikes: share of postsynaptic neurons not recorded
    # a teacher that leaves [-max_weight, max_weight] in more than this share of episodes is
    # unbounded on the task: stop before training and say how to bound it (fewer: left out)
    max_diverged: float = 0.05

    choices: ClassVar[dict[str, tuple]] = {"observe": ("weights", "activity", "spikes")}
    # a config that names only the teacher and the network: the student is picked for the
    # vocabulary (discover.rules.auto), with the learning rate and steps it needs
    # (tests/test_recovery.py: degree-3 polynomials recover rate teachers in 1500 steps), and
    # up to 3x as many while the validation loss still falls by 5 % a block and the student
    # explains less than 99.99 % of the teacher (discover.meta.planned_end)
    section_defaults: ClassVar[dict[str, dict]] = {
        "rule": {"kind": "auto"},
        "meta": {"optimizer": "adam", "learning_rate": 0.01, "steps": 1500, "eval_every": 100, "max_steps": 4500,
                 "extend_until": 1e-4},
    }

    def check(self, cfg):
        super().check(cfg)
        if self.teacher is None:
            raise ConfigError("task imitate needs a teacher: add [task.teacher] rule = \"oja\" (a canonical name "
                              "or an equation string) and its parameters under [task.teacher.params]")
        if self.observe == "spikes" and not NETWORKS.get(cfg.network.kind).spiking:
            raise ConfigError("[task] observe = \"spikes\" needs a spiking network: set [network] kind = \"lif\", "
                              "or observe = \"activity\" (a rate network's y)")
        if not 0 <= self.unrecorded_fraction < 1:
            raise ConfigError("[task] unrecorded_fraction must be in [0, 1): at least one neuron must be recorded")
        if not 0 <= self.pre_modulation_range[0] <= self.pre_modulation_range[1] <= 1:
            raise ConfigError("[task] pre_modulation_range must be within [0, 1] (a modulation depth: rates "
                              "stay >= 0)")
        if not 0 <= self.max_diverged < 1:
            raise ConfigError("[task] max_diverged must be in [0, 1): the share of episodes a teacher may diverge in")
        if not 0 <= self.pre_phase_spread <= 1:
            raise ConfigError("[task] pre_phase_spread must be in [0, 1] (a fraction of one cycle)")
        if self.pre_frequency_range[0] <= 0:
            raise ConfigError("[task] pre_frequency_range must be > 0 Hz")


@TASKS.register("imitate")
@dataclass(frozen=True)
class Imitate(Task):
    teacher: Rule | None = None  # default: built from config.teacher

    Config: ClassVar[type] = ImitateConfig
    name: ClassVar[str] = "imitate"

    @classmethod
    def make(cls, network, teacher=None, **kw):
        """``teacher``: a rule, or a :class:`TeacherConfig` (then built from it)."""
        if teacher is None or isinstance(teacher, TeacherConfig):
            return super().make(network, teacher=teacher, **kw)
        config = ImitateConfig(**{"n_pre": network.n_pre, "n_post": network.n_post, **kw})
        return cls(config=config, network=network, teacher=teacher)

    def __post_init__(self):
        if self.teacher is None:
            object.__setattr__(self, "teacher", build_teacher(self.config.teacher, self.network))

    @property
    def spiking(self):
        return self.network.spiking

    def driver(self):
        return self.teacher

    def rule_inputs(self):
        return self.teacher.inputs

    def references(self):
        return {"teacher": self.teacher}

    def teacher_params(self):
        return self.teacher.init(jax.random.key(0))

    def sample(self, key, n_episodes):
        k_in, k_noise = jax.random.split(key)
        eps = jax.vmap(self._inputs_one)(jax.random.split(k_in, n_episodes))
        tp = self.teacher_params()
        ro = jax.vmap(lambda e: self.simulate(self.teacher, tp, e))(eps)
        # a teacher that diverged (left +-max_weight: its trajectory was frozen there) makes
        # an invalid episode: left out everywhere, counted, and its targets kept finite
        diverged_at = ro.diverged_at
        valid = diverged_at < 0
        Wt = jnp.where(valid[:, None, None, None], ro.weights, eps["W0"][:, None])
        out = {**eps, "W_teacher": Wt, "valid": valid, "teacher_diverged_at": diverged_at}
        if self.config.observe != "weights":
            S = jax.vmap(self.smooth)(ro.activity)
            if self.config.obs_noise:
                sd = jnp.std(S, axis=(1, 2), keepdims=True)
                S = S + self.config.obs_noise * sd * jax.random.normal(k_noise, S.shape)
            out["S_teacher"] = jnp.where(valid[:, None, None], S, 0.0)
        return out

    def explained(self, loss):
        return 1.0 - float(loss)  # the R^2 of the teacher's weight changes (or activity)

    def check_episodes(self, episodes):
        """Stop before training when the teacher is unbounded on these episodes."""
        import numpy as np

        at = np.asarray(episodes["teacher_diverged_at"])
        bad, n = int((at >= 0).sum()), at.size
        if not bad:
            return None
        c, net = self.config, self.network
        what = (f"the teacher rule {self.config.teacher.rule!r} diverged (a weight left +-{c.max_weight:g}, "
                f"[task] max_weight, or became non-finite) in {bad} of {n} episodes, first at time step "
                f"{int(at[at >= 0].min())} of {c.steps}")
        if bad <= c.max_diverged * n:
            return f"note: {what}; those episodes are left out of meta-training, distillation and verification"
        bounds = getattr(net, "w_min", None) is not None or getattr(net, "w_max", None) is not None
        fix = ("bound the weights: set [network] w_min = 0.0 and w_max = 1.0 (teacher and student are clipped "
               "alike)" if not bounds else
               f"tighten the weight bounds ([network] w_min = {net.w_min}, w_max = {net.w_max})")
        raise ConfigError(f"{what}: the teacher is unbounded on this task's episodes, so there is nothing "
                          f"stable to imitate. To fix it, {fix}, or shorten [task] steps, or narrow the input "
                          f"ranges; [task] max_diverged = {c.max_diverged:g} is the share of episodes that "
                          "may diverge and be left out")

    def smooth(self, A):
        """Causal exponential filter over bins: ``S[t] = a S[t-1] + (1 - a) A[t]``."""
        a = jnp.exp(-1.0 / self.config.obs_tau)

        def f(s, x):
            s = a * s + (1 - a) * x
            return s, s

        return jax.lax.scan(f, jnp.zeros(A.shape[1:], A.dtype), A)[1]

    @property
    def recorded(self):
        n = self.network.n_post
        return max(1, int(round(n * (1.0 - self.config.unrecorded_fraction))))

    def _inputs_one(self, key):
        net, c = self.network, self.config
        kw, k1, k2, k3 = jax.random.split(key, 4)
        W0 = jax.random.uniform(kw, (net.n_post, net.n_pre), minval=c.w0_range[0], maxval=c.w0_range[1])
        if not self.spiking:
            mu = jax.random.uniform(k1, (net.n_pre,), minval=c.input_mean_range[0], maxval=c.input_mean_range[1])
            lo, hi = jnp.log(c.input_scale_range[0]), jnp.log(c.input_scale_range[1])
            scale = jnp.exp(jax.random.uniform(k2, minval=lo, maxval=hi))
            ka, kz = jax.random.split(k3)
            mix = jnp.eye(net.n_pre) + 0.5 * jax.random.normal(ka, (net.n_pre, net.n_pre)) / jnp.sqrt(net.n_pre)
            x = mu + scale * jax.random.normal(kz, (self.steps, net.n_pre)) @ mix.T
            return {"x": x, "W0": W0}
        dt_s = net.dt * 1e-3
        r_pre = jax.random.uniform(k1, (net.n_pre,), minval=c.pre_rate_range[0], maxval=c.pre_rate_range[1])
        kp, kq = jax.random.split(k3)
        rate = jnp.broadcast_to(r_pre, (self.steps, net.n_pre))
        if c.pre_modulation_range[1] > 0:
            rate = rate * self._modulation(jax.random.fold_in(k1, 1))
        s_pre = jax.random.bernoulli(kp, rate * dt_s).astype(jnp.float32)
        ep = {"s_pre": s_pre, "W0": W0}
        if net.post_mode == "given":
            r_post = jax.random.uniform(k2, (net.n_post,), minval=c.post_rate_range[0],
                                        maxval=c.post_rate_range[1])
            ep["s_post"] = jax.random.bernoulli(kq, r_post * dt_s, (self.steps, net.n_post)).astype(jnp.float32)
        return ep

    def _modulation(self, key):
        """``1 + m sin(2 pi f t + phi_i)``: depth ``m`` and frequency ``f`` (log-uniform) per
        episode, a phase per input, uniform over ``pre_phase_spread`` of a cycle (below 1 the
        inputs are partly synchronous, so the postsynaptic neuron follows the rhythm and each
        input leads or lags it by its own delay). Inputs then have temporal correlations at
        every lag, with per-input delays: the pairing statistics that make a rule's trace
        time constants identifiable (with constant Poisson rates a pair rule's drift depends only on
        ``A_plus*tau_pre - A_minus*tau_post`` and its causal part on ``A_plus``)."""
        c = self.config
        km, kf, kphi = jax.random.split(key, 3)
        m = jax.random.uniform(km, minval=c.pre_modulation_range[0], maxval=c.pre_modulation_range[1])
        lo, hi = jnp.log(c.pre_frequency_range[0]), jnp.log(c.pre_frequency_range[1])
        f = jnp.exp(jax.random.uniform(kf, minval=lo, maxval=hi))
        phi = jax.random.uniform(kphi, (self.network.n_pre,), maxval=2 * jnp.pi * c.pre_phase_spread)
        t = jnp.arange(self.steps)[:, None] * self.network.dt * 1e-3
        return 1.0 + m * jnp.sin(2 * jnp.pi * f * t + phi)

    def loss(self, rollout, episode):
        if self.config.observe != "weights":
            r = self.recorded
            S, St = self.smooth(rollout.activity)[:, :r], episode["S_teacher"][:, :r]
            den = jnp.sum((St - St.mean(axis=0)) ** 2)
            return jnp.sum((S - St) ** 2) / jnp.maximum(den, 1e-12)
        Wt = episode["W_teacher"]
        num = jnp.sum((rollout.weights - Wt) ** 2)
        den = jnp.sum((Wt - episode["W0"]) ** 2)
        return num / jnp.maximum(den, 1e-12)


def build_teacher(teacher: TeacherConfig | None, network) -> Rule:
    """The teacher rule of ``[task.teacher]``: a canonical name or an equation string."""
    from ..equations import EquationError
    from ..rules import make_symbolic_rule

    if teacher is None:
        raise ConfigError("task imitate needs a teacher: add [task.teacher] rule = \"oja\"")
    try:
        rule = make_symbolic_rule(teacher.rule, teacher.params, label="teacher")
    except (EquationError, KeyError) as e:
        msg = e.args[0] if e.args else str(e)
        raise ConfigError(f"[task.teacher] rule: {msg}") from None
    allowed = set(network.local_variables)
    bad = [v for v in rule.inputs if v not in allowed]
    if bad:
        raise ConfigError(f"[task.teacher] rule uses {bad}, which a {network.kind} network does not have; "
                          f"its variables are {', '.join(sorted(allowed))}")
    return rule


def make_imitate(network, teacher: Rule, steps: int, **kw) -> Imitate:
    return Imitate.make(network, teacher=teacher, steps=steps, **kw)
