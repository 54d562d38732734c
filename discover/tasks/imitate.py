"""``imitate``: a student rule must reproduce a teacher rule's weight trajectories.

A teacher (any symbolic rule: canonical, or an equation string from a config) drives a
network; the student sees the same inputs from the same initial weights. The meta-loss
of one episode is the normalized squared distance of the weight trajectories,

    L = sum_t |W_s(t) - W_T(t)|^2 / sum_t |W_T(t) - W(0)|^2,

over weights recorded every ``record_every`` steps, so ``1 - L`` is the R^2 of the
teacher's weight changes explained by the student. A student that does nothing scores 0.

With ``observe = "spikes"`` the meta-loss sees only what an experiment records: the
postsynaptic activity (spike counts in bins of ``record_every`` steps), smoothed by a
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

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from ..networks import LIFNetwork, RateNetwork
from ..rules.base import Rule
from .base import Task


@dataclass(frozen=True)
class Imitate(Task):
    teacher: Rule | None = None
    w0_range: tuple[float, float] = (0.2, 0.8)
    # rate inputs: x = mean + scale * L z, with a random correlation factor L per episode
    input_mean_range: tuple[float, float] = (0.0, 1.0)
    input_scale_range: tuple[float, float] = (0.3, 1.5)
    # spiking inputs (Hz)
    pre_rate_range: tuple[float, float] = (5.0, 40.0)
    post_rate_range: tuple[float, float] = (5.0, 40.0)
    pre_modulation_range: tuple[float, float] = (0.0, 0.0)
    pre_frequency_range: tuple[float, float] = (2.0, 20.0)  # Hz
    pre_phase_spread: float = 1.0  # input phases uniform over this fraction of a cycle
    observe: str = "weights"  # weights | spikes
    obs_tau: float = 5.0  # bins
    obs_noise: float = 0.0
    unrecorded_fraction: float = 0.0

    name = "imitate"

    @property
    def spiking(self):
        return isinstance(self.network, LIFNetwork)

    def teacher_params(self):
        return self.teacher.init(jax.random.key(0))

    def sample(self, key, n_episodes):
        k_in, k_noise = jax.random.split(key)
        eps = jax.vmap(self._inputs_one)(jax.random.split(k_in, n_episodes))
        tp = self.teacher_params()
        _, W_teacher, A_teacher, _ = jax.vmap(lambda e: self.trajectory_with_activity(self.teacher, tp, e))(eps)
        out = {**eps, "W_teacher": W_teacher}
        if self.observe == "spikes":
            S = jax.vmap(self.smooth)(A_teacher)
            if self.obs_noise:
                sd = jnp.std(S, axis=(1, 2), keepdims=True)
                S = S + self.obs_noise * sd * jax.random.normal(k_noise, S.shape)
            out["S_teacher"] = S
        return out

    def smooth(self, A):
        """Causal exponential filter over bins: ``S[t] = a S[t-1] + (1 - a) A[t]``."""
        a = jnp.exp(-1.0 / self.obs_tau)

        def f(s, x):
            s = a * s + (1 - a) * x
            return s, s

        return jax.lax.scan(f, jnp.zeros(A.shape[1:], A.dtype), A)[1]

    @property
    def recorded(self):
        n = self.network.n_post
        return max(1, int(round(n * (1.0 - self.unrecorded_fraction))))

    def _inputs_one(self, key):
        net = self.network
        kw, k1, k2, k3 = jax.random.split(key, 4)
        W0 = jax.random.uniform(kw, (net.n_post, net.n_pre), minval=self.w0_range[0], maxval=self.w0_range[1])
        if not self.spiking:
            mu = jax.random.uniform(k1, (net.n_pre,), minval=self.input_mean_range[0], maxval=self.input_mean_range[1])
            lo, hi = jnp.log(self.input_scale_range[0]), jnp.log(self.input_scale_range[1])
            scale = jnp.exp(jax.random.uniform(k2, minval=lo, maxval=hi))
            ka, kz = jax.random.split(k3)
            mix = jnp.eye(net.n_pre) + 0.5 * jax.random.normal(ka, (net.n_pre, net.n_pre)) / jnp.sqrt(net.n_pre)
            x = mu + scale * jax.random.normal(kz, (self.steps, net.n_pre)) @ mix.T
            return {"x": x, "W0": W0}
        dt_s = net.dt * 1e-3
        r_pre = jax.random.uniform(k1, (net.n_pre,), minval=self.pre_rate_range[0], maxval=self.pre_rate_range[1])
        kp, kq = jax.random.split(k3)
        rate = jnp.broadcast_to(r_pre, (self.steps, net.n_pre))
        if self.pre_modulation_range[1] > 0:
            rate = rate * self._modulation(jax.random.fold_in(k1, 1))
        s_pre = jax.random.bernoulli(kp, rate * dt_s).astype(jnp.float32)
        ep = {"s_pre": s_pre, "W0": W0}
        if net.post_mode == "given":
            r_post = jax.random.uniform(k2, (net.n_post,), minval=self.post_rate_range[0],
                                        maxval=self.post_rate_range[1])
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
        km, kf, kphi = jax.random.split(key, 3)
        m = jax.random.uniform(km, minval=self.pre_modulation_range[0], maxval=self.pre_modulation_range[1])
        lo, hi = jnp.log(self.pre_frequency_range[0]), jnp.log(self.pre_frequency_range[1])
        f = jnp.exp(jax.random.uniform(kf, minval=lo, maxval=hi))
        phi = jax.random.uniform(kphi, (self.network.n_pre,), maxval=2 * jnp.pi * self.pre_phase_spread)
        t = jnp.arange(self.steps)[:, None] * self.network.dt * 1e-3
        return 1.0 + m * jnp.sin(2 * jnp.pi * f * t + phi)

    def initial_state(self, episode):
        return self.network.init_state(episode["W0"])

    def inputs(self, episode):
        keys = ("s_pre", "s_post") if self.spiking else ("x",)
        return {k: episode[k] for k in keys if k in episode}

    def loss_and_energy(self, rule, params, episode):
        if self.observe == "spikes":
            _, _, A, energy = self.trajectory_with_activity(rule, params, episode)
            r = self.recorded
            S, St = self.smooth(A)[:, :r], episode["S_teacher"][:, :r]
            den = jnp.sum((St - St.mean(axis=0)) ** 2)
            return jnp.sum((S - St) ** 2) / jnp.maximum(den, 1e-12), energy
        _, Ws, energy = self.trajectory(rule, params, episode)
        Wt = episode["W_teacher"]
        num = jnp.sum((Ws - Wt) ** 2)
        den = jnp.sum((Wt - episode["W0"]) ** 2)
        return num / jnp.maximum(den, 1e-12), energy


def make_imitate(network: RateNetwork | LIFNetwork, teacher: Rule, steps: int, **kw) -> Imitate:
    return Imitate(network=network, steps=steps, teacher=teacher, **kw)
