"""``reward_driven``: a stochastic spiking neuron must learn, from a binary reward alone, to
spike for some patterns and stay silent for others.

The reward-driven task of Jordan, Schmidt, Senn & Petrovici 2021 (eLife 10:e66273,
"Evolving interpretable plasticity for spiking networks", section "Reward-driven
learning", Fig. 3; code: Happy-Algorithms-League/e2l-cgp-snn, experiments/reward_based,
``sim.py`` and ``sim_params.json``): 30 frozen patterns (``n_stimuli``), each 500 ms of
Poisson spikes of 50 inputs at 6 Hz with a label +1 or -1 drawn at random; one
escape-noise neuron (NEST ``iaf_psc_exp`` with ``rho = 0.01`` Hz, ``delta = 0.2`` mV,
V_th = -55 mV, C_m = 250 pF, tau_m = 10 ms, tau_syn = 2 ms, reset to E_L = -70 mV,
t_ref = 2 ms); each input connected with probability 0.8 (``input_connectivity``) at a
weight drawn from N(0, 1000 pA) (``initial_weight``). In each of 500 trials
(``n_training_trials``) a pattern drawn at random is shown from rest; the reward is
``m = +1`` when (the neuron spiked during the pattern) equals (label = +1), else ``-1``;
then the rule ``f(m, elig, w)`` changes every weight once. ``elig`` is the
eligibility trace of the trial (Urbanczik & Senn 2009; :class:`~discover.networks.LIFNetwork`,
``escape_noise``), which starts at 0 in each trial as E2L's network is rebuilt.

E2L's fitness of a rule is the cumulative reward over the 500 trials, averaged over 10
pattern sets. The meta-loss here is the share of unrewarded trials, ``(1 - m) / 2``
averaged over trials (0.5: chance; cumulative reward = ``trials * (1 - 2 * loss)``);
:meth:`RewardDriven.e2l_fitness` gives E2L's number. The reward is binary and the spikes
are stochastic: no gradient reaches the rule, so the config meta-trains it with evolution
strategies (every member on the same pattern sets and noise: common random numbers).

Simulation: within a trial the weights are fixed, so each input's unit-weight PSP and
synaptic current are computed once per pattern (the membrane is linear in them) and a
trial is a scan over one potential per neuron; the eligibility trace at the trial's end is
one product of the PSPs with the postsynaptic drive. :meth:`RewardDriven.trial` is tested
step for step against the network's own ``step`` (the same spikes, the same trace).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import jax
import jax.numpy as jnp

from ..config import ConfigError, TaskConfig
from ..registry import TASKS
from ..rollout import Rollout
from ..rules.symbolic import SymbolicRule
from .base import Task

#: the local variables a rule applied at the end of a trial sees
TRIAL_VARIABLES = ("m", "elig", "w")


@TASKS.register("reward_driven")
@dataclass(frozen=True)
class RewardDriven(Task):
    @dataclass(frozen=True)
    class Config(TaskConfig):
        name: str = "reward_driven"
        n_pre: int = 50  # E2L: n_inputs
        steps: int = 500  # time steps per trial: 500 ms at dt = 1 ms (E2L: stimulus_duration)
        trials: int = 500  # E2L: n_training_trials
        patterns: int = 30  # E2L: n_stimuli
        rate: float = 6.0  # Hz, every input during every pattern (E2L: input_rate)
        connectivity: float = 0.8  # probability that an input reaches the neuron (E2L: input_connectivity)
        w_sd: float = 1000.0  # pA, s.d. of the initial weights N(0, w_sd) (E2L: initial_weight)
        max_weight: float = 1e6

        applies: ClassVar[tuple[str, ...]] = ("trial_end",)
        draws_escape_noise: ClassVar[bool] = True  # the noise of every step: RewardDriven.noise
        positive: ClassVar[tuple[str, ...]] = TaskConfig.positive + ("trials", "patterns", "rate", "w_sd")

        def check(self, cfg):
            super().check(cfg)
            n = cfg.network
            if n.kind != "lif" or n.synapse != "current" or n.integration != "exact" or not n.escape_noise:
                raise ConfigError("task reward_driven needs a current-based escape-noise LIF neuron with exact "
                                  "integration: set [network] kind = \"lif\", synapse = \"current\", integration = "
                                  "\"exact\", escape_noise = true")
            if self.record_every != 1:
                raise ConfigError("task reward_driven records the weights once per trial by itself: leave [task] "
                                  "record_every out")
            if not 0 < self.connectivity <= 1:
                raise ConfigError(f"[task] connectivity = {self.connectivity} must be in (0, 1] (a probability)")

    name: ClassVar[str] = "reward_driven"

    @property
    def steps(self) -> int:
        """Time steps of a whole episode (all trials)."""
        return self.config.trials * self.config.steps

    @property
    def record_every(self) -> int:
        """Weights are recorded once per trial, after its update."""
        return self.config.steps

    def rule_variables(self):
        return TRIAL_VARIABLES

    def rule_inputs(self):
        return TRIAL_VARIABLES

    # -- episodes -----------------------------------------------------------------------------
    def sample(self, key, n):
        return jax.vmap(self._sample_one)(jax.random.split(key, n))

    def _sample_one(self, key):
        c, net = self.config, self.network
        ks, kl, kc, kw, ko, kn = jax.random.split(key, 6)
        shape = (c.patterns, c.steps, net.n_pre)
        s_pre = jax.random.poisson(ks, c.rate * net.dt * 1e-3, shape).astype(jnp.float32)
        psp, isyn = jax.vmap(self.unit_inputs)(s_pre)
        mask = jax.random.bernoulli(kc, c.connectivity, (net.n_post, net.n_pre)).astype(jnp.float32)
        W0 = c.w_sd * jax.random.normal(kw, (net.n_post, net.n_pre)) * mask
        return {"s_pre": s_pre, "psp": psp, "isyn": isyn, "mask": mask, "W0": W0,
                "labels": jax.random.choice(kl, jnp.array([-1.0, 1.0]), (c.patterns,)),
                "order": jax.random.randint(ko, (c.trials,), 0, c.patterns),
                "noise_key": jax.random.key_data(kn)}

    def unit_inputs(self, s_pre):
        """``(psp, isyn)`` of spike trains ``s_pre [T, n_pre]``: the unit-weight PSP the rule's
        trace reads in each step, and the unit-weight synaptic current that enters the
        membrane in each step (the network's ``g`` is ``isyn @ W.T``)."""
        net = self.network

        def f(c, s):
            psp, isyn = c
            psp_new, isyn_dec = net._psp_step(psp, isyn)
            return (psp_new, isyn_dec + net.w_scale * s), (psp_new, isyn)
        z = jnp.zeros(s_pre.shape[1:], jnp.float32)
        return jax.lax.scan(f, (z, z), s_pre)[1]

    def noise(self, episode, trial):
        """The uniform numbers the escape noise of ``trial`` draws against, ``[T, n_post]``."""
        key = jax.random.fold_in(jax.random.wrap_key_data(episode["noise_key"]), trial)
        return jax.random.uniform(key, (self.config.steps, self.network.n_post))

    # -- one trial ----------------------------------------------------------------------------
    def trial(self, W, psp, isyn, noise):
        """One trial from rest at fixed weights ``W``: ``(s_post [T, n_post], elig [post, pre])``,
        the spikes and the eligibility trace at the trial's end (from 0 at its start)."""
        net = self.network
        g = isyn @ W.T  # [T, post]: the synaptic current entering the membrane in each step
        n_ref = float(max(round(net.t_ref / net.dt) - 1, 0))

        def f(carry, x):
            v, ref = carry
            g_t, u = x
            refractory = ref > 0
            v = jnp.where(refractory, v, net._membrane(v, g_t)[0])  # the network's exact step
            s = net.fire(v, u) * (1.0 - refractory)
            drive = net.elig_drive(v, s, refractory.astype(jnp.float32))
            if net.reset:
                v = v * (1.0 - s) + net.v_reset * s
                ref = jnp.where(s > 0, n_ref, jnp.maximum(ref - 1.0, 0.0))
            return (v, ref), (s, drive)

        z = jnp.zeros((net.n_post,), jnp.float32)
        _, (s, drive) = jax.lax.scan(f, (z + net.v_rest, z), (g, noise))
        a = math.exp(-net.dt / net.tau_elig)
        T = s.shape[0]
        kernel = (1.0 - a) * a ** jnp.arange(T - 1, -1, -1, dtype=jnp.float32)  # step t's weight at the end
        return s, (kernel[:, None] * drive).T @ psp

    def reward(self, s_post, label):
        """``+1`` when the population's vote (most neurons spiked during the trial) equals
        ``label == +1``, else ``-1`` (E2L's ``compute_reward``; one neuron: it spiked)."""
        spiked = jnp.mean((jnp.sum(s_post, axis=0) > 0).astype(jnp.float32)) >= 0.5
        return jnp.where(spiked == (label > 0), 1.0, -1.0)

    # -- the episode ---------------------------------------------------------------------------
    def simulate(self, rule, params, episode, *, chunk=None, truncate=False, record_locals=False) -> Rollout:
        del chunk, truncate  # no gradient flows through the stochastic spikes
        net, limit = self.network, self.w_limit

        def one(carry, x):
            W, div, energy = carry
            p, k = x
            s, elig = self.trial(W, episode["psp"][p], episode["isyn"][p], self.noise(episode, k))
            m = self.reward(s, episode["labels"][p])
            local = {"m": m, "elig": elig, "w": W}
            dw = rule(params, local) * episode["mask"]
            W_new = W + dw
            if net.w_min is not None or net.w_max is not None:
                W_new = jnp.clip(W_new, net.w_min, net.w_max)
            ok = (div < 0) & jnp.all(jnp.isfinite(W_new) & (jnp.abs(W_new) <= limit))
            div = jnp.where((div < 0) & ~ok, k * self.config.steps, div)
            W_new = jnp.where(ok, W_new, W)
            energy = energy + jnp.mean((W_new - W) ** 2)
            rec = {n: jnp.broadcast_to(v, W.shape) for n, v in local.items()} if record_locals else None
            return (W_new, div, energy), (W_new, jnp.sum(s, axis=0), m, rec)

        c = self.config
        carry0 = (episode["W0"], jnp.full((), -1, jnp.int32), jnp.zeros((), jnp.float32))
        xs = (episode["order"], jnp.arange(c.trials, dtype=jnp.int32))
        (W, div, energy), (Ws, counts, m, locs) = jax.lax.scan(one, carry0, xs)
        return Rollout({"W": W, "m": m}, Ws, counts, energy / self.steps, locs, div)

    # -- the objective -------------------------------------------------------------------------
    def loss(self, rollout, episode):
        """The share of unrewarded trials (0.5: chance)."""
        return jnp.mean((1.0 - rollout.final["m"]) / 2.0)

    diverged_loss: ClassVar[float] = 0.5  # diverged weights count as a rule that guesses

    def e2l_fitness(self, rollout, episode):
        """E2L's fitness of one pattern set: the cumulative reward over its trials."""
        return jnp.sum(rollout.final["m"])

    def references(self):
        return {"none": SymbolicRule.from_string("0*w", {}, label="none")}

    def reference_kind(self):
        return "baseline"


__all__ = ["RewardDriven", "TRIAL_VARIABLES"]
