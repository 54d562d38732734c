"""``inhibitory_balance``: plastic inhibitory synapses must bring a neuron driven by tuned
excitation to a target rate, and in doing so balance excitation channel by channel.

After Vogels, Sprekeler, Zenke, Clopath & Gerstner 2011 (Science 334:1569, Fig. 1 and its
supplementary methods): one conductance-based LIF neuron (tau_m = 20 ms, V_rest = -60 mV,
V_th = -50 mV, reset -60 mV, 5 ms refractory, E_E = 0 mV, E_I = -80 mV, excitatory and
inhibitory conductances decaying with 5 and 10 ms) receives 800 excitatory and 200
inhibitory inputs in 8 channels (100 + 25 per channel; the inhibitory ones first); all inputs of a channel fire as
Poisson processes with that channel's time-varying rate. Excitatory weights are tuned,
``(0.3 + 1.1 / (1 + (c - P)**4)) / 1.4`` for channel ``c`` and preferred channel ``P``
(their tuning curve, scaled into [0, 1]), fixed; inhibitory weights start weak and equal,
and are plastic. With inhibitory STDP (``vogels_istdp``) the output rate settles at
``rho0`` and the inhibitory weights come to mirror the excitatory tuning (detailed balance).

Our protocol (the paper's learning takes minutes of simulated time): episodes of
``steps`` at ``dt`` (default 20 s at 0.5 ms), channel rates ``rate * max(0, 1 + signal_sd *
z_c(t))`` with ``z_c`` an Ornstein-Uhlenbeck process of unit variance and time constant
``signal_ms``, a new preferred channel, tuning noise and signals per episode (held-out
tunings). The meta-loss is ``((r - rho0) / rho0)**2``, ``r`` the output rate after learning
(:meth:`frozen_rate`: the final weights, frozen, on the episode's inputs from the start for
``rate_ms``; measured during learning instead, a rule gains by clamping its own spike count
with a huge learning rate, which no slice rule does), plus ``balance_weight * (1 - corr)``, ``corr`` the correlation of
the excitatory and inhibitory tuning curves (mean weight per channel) at the end. The
objective verification reports (``score``) is ``1 - |r - rho0| / rho0`` (0.9: the rate
within 10 % of the target), less the same balance term. :meth:`tuning_correlation` gives the
balance; ``benchmarks/inhibitory_balance.py`` tabulates both per rule.

Inputs are generated per step from the episode's channel rates and a key (a 20-s episode of
1000 inputs would take 160 MB as spikes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import jax
import jax.numpy as jnp

from ..config import ConfigError, TaskConfig
from ..registry import TASKS
from ..rollout import rollout
from ..rules.symbolic import SymbolicRule
from .base import SpikesPerStep, Task


@TASKS.register("inhibitory_balance")
@dataclass(frozen=True)
class InhibitoryBalance(SpikesPerStep, Task):
    @dataclass(frozen=True)
    class Config(TaskConfig):
        name: str = "inhibitory_balance"
        n_pre: int = 1000  # Vogels et al. 2011: 800 excitatory + 200 inhibitory
        n_post: int = 1
        steps: int = 40000  # 20 s at dt = 0.5 ms
        record_every: int = 200  # weights and spike counts every 100 ms
        channels: int = 8  # Vogels et al. 2011: 8 input signals
        target_rate: float = 5.0  # Hz, rho0 (Vogels et al. 2011: 5 Hz)
        rate: float = 10.0  # Hz, the channels' mean input rate (ours)
        signal_sd: float = 1.0  # the channel rates' modulation (ours)
        signal_ms: float = 50.0  # their correlation time (ours)
        rate_ms: float = 10000.0  # the output rate: a frozen re-run of this long after learning (frozen_rate)
        tuning_noise: float = 0.05  # +- uniform noise on every excitatory weight
        w_inh0: float = 0.1  # initial inhibitory weight (all equal)
        balance_weight: float = 0.0  # weight of 1 - corr(E tuning, I tuning) in the meta-loss
        visited_pre: int = 50  # inhibitory inputs whose locals distillation samples
        fit_threshold: float = 0.0  # no share explained
        max_weight: float = 100.0

        positive: ClassVar[tuple[str, ...]] = TaskConfig.positive + (
            "channels", "target_rate", "rate", "signal_ms", "rate_ms", "visited_pre")
        nonnegative: ClassVar[tuple[str, ...]] = ("signal_sd", "tuning_noise", "w_inh0", "balance_weight")

        def check(self, cfg):
            super().check(cfg)
            n = cfg.network
            if n.kind != "lif" or n.post_mode != "closed" or not getattr(n, "n_inh", 0) or n.plastic != "inh":
                raise ConfigError("task inhibitory_balance needs a LIF neuron with inhibitory inputs whose synapses "
                                  "learn: set [network] kind = \"lif\", post_mode = \"closed\", synapse = "
                                  "\"conductance\", n_inh = 200 (the first inputs) and plastic = \"inh\"")
            n_exc = self.n_pre - n.n_inh
            if n_exc <= 0 or n_exc % self.channels or n.n_inh % self.channels:
                raise ConfigError(f"[task] channels = {self.channels} must divide both the {n_exc} excitatory and the "
                                  f"{n.n_inh} inhibitory inputs (n_pre - n_inh and [network] n_inh)")
            T_ms = self.steps * n.dt
            if self.rate_ms > T_ms:
                raise ConfigError(f"[task] rate_ms = {self.rate_ms} is longer than the episode ({T_ms:g} ms), whose "
                                  "inputs the frozen re-run replays")
            if abs(self.rate_ms / n.dt - round(self.rate_ms / n.dt)) > 1e-9:
                raise ConfigError(f"[task] rate_ms = {self.rate_ms} is not a whole number of steps of {n.dt} ms")
            if self.visited_pre > n.n_inh:
                raise ConfigError(f"[task] visited_pre = {self.visited_pre} is more than the {n.n_inh} inhibitory "
                                  "inputs")
            if 2 * self.rate * n.dt * 1e-3 >= 1:
                raise ConfigError(f"[task] rate = {self.rate} Hz is too high for dt = {n.dt} ms (a channel's rate "
                                  "must stay well below one spike per step)")

    name: ClassVar[str] = "inhibitory_balance"
    diverged_loss: ClassVar[float] = 1.0

    # -- populations ---------------------------------------------------------------------------
    @property
    def n_exc(self) -> int:
        return self.network.n_pre - self.network.n_inh

    def channel_of_input(self):
        """``[n_pre]`` channel of each input: the inhibitory ones first (the network's
        convention), channel by channel, then the excitatory ones. The inhibitory inputs of
        the channels are interleaved (input ``j`` is in channel ``j % channels``), so that
        the first ``visited_pre`` of them sample every channel."""
        C = self.config.channels
        inh = jnp.arange(self.network.n_inh) % C
        exc = jnp.repeat(jnp.arange(C), self.n_exc // C)
        return jnp.concatenate([inh, exc])

    # -- episodes -----------------------------------------------------------------------------
    def sample(self, key, n):
        return jax.vmap(self._sample_one)(jax.random.split(key, n))

    def _sample_one(self, key):
        c, net = self.config, self.network
        ks, kp, kn, kspk = jax.random.split(key, 4)
        a = jnp.exp(-net.dt / c.signal_ms)

        def ou(z, xi):
            z = a * z + jnp.sqrt(1 - a * a) * xi
            return z, z

        z0 = jax.random.normal(jax.random.fold_in(ks, 1), (c.channels,))
        _, z = jax.lax.scan(ou, z0, jax.random.normal(ks, (self.steps, c.channels)))
        rates = c.rate * jnp.maximum(0.0, 1.0 + c.signal_sd * z)  # [T, C] Hz
        P = jax.random.randint(kp, (), 0, c.channels)
        ch = jnp.arange(c.channels)
        tuning = (0.3 + 1.1 / (1.0 + (ch - P).astype(jnp.float32) ** 4)) / 1.4  # Vogels et al. 2011, in [0, 1]
        w_exc = tuning[self.channel_of_input()[net.n_inh:]]
        w_exc = w_exc + c.tuning_noise * jax.random.uniform(kn, w_exc.shape, minval=-1.0, maxval=1.0)
        w = jnp.concatenate([jnp.full((net.n_inh,), c.w_inh0), jnp.clip(w_exc, 0.0, 1.0)])
        return {"rates": rates.astype(jnp.float32), "key": jax.random.key_data(kspk),
                "W0": jnp.broadcast_to(w, (net.n_post, net.n_pre)).astype(jnp.float32),
                "tuning": tuning}

    def spikes(self, episode, t):
        """The input spikes of step ``t``: Poisson at each input's channel rate."""
        p = episode["rates"][t][self.channel_of_input()] * (self.network.dt * 1e-3)
        u = jax.random.uniform(jax.random.fold_in(jax.random.wrap_key_data(episode["key"]), t), p.shape)
        return (u < p).astype(jnp.float32)


    # -- the objective -------------------------------------------------------------------------
    @property
    def rate_steps(self) -> int:
        return round(self.config.rate_ms / self.network.dt)

    def frozen_rate(self, W, episode):
        """Hz of the neuron at fixed weights ``W`` (no plasticity) on the episode's inputs from
        the start, over ``rate_ms`` (mean over the output neurons): the rate the learned
        weights give, which a rule cannot improve by chasing its own spike count while it
        learns."""
        from ..rules.symbolic import SymbolicRule

        off = SymbolicRule.from_string("0*w", {}, label="none")
        out = rollout(self.network, off, off.init(jax.random.key(0)), self.network.init_state(W),
                      lambda t: {"s_pre": self.spikes(episode, t)}, steps=self.rate_steps,
                      record_every=self.rate_steps)
        return jnp.mean(out.activity[-1]) / (self.config.rate_ms * 1e-3)

    def output_rate(self, rollout, episode):
        """The output rate after learning: :meth:`frozen_rate` of the final weights (Hz)."""
        return self.frozen_rate(rollout.final["W"], episode)

    def tuning_correlation(self, W, episode=None):
        """Pearson correlation over channels of the mean excitatory and the mean inhibitory
        weight per channel (``W [n_post, n_pre]``; mean over output neurons)."""
        C, ni = self.config.channels, self.network.n_inh
        e = W[:, ni:].reshape(W.shape[0], C, -1).mean(axis=(0, 2))
        i = W[:, :ni].reshape(W.shape[0], -1, C).mean(axis=(0, 1))  # interleaved: input j in channel j % C
        e, i = e - e.mean(), i - i.mean()
        return jnp.sum(e * i) / jnp.maximum(jnp.sqrt(jnp.sum(e * e) * jnp.sum(i * i)), 1e-12)

    def loss(self, rollout, episode):
        rho0 = self.config.target_rate
        out = ((self.output_rate(rollout, episode) - rho0) / rho0) ** 2
        if self.config.balance_weight:
            out = out + self.config.balance_weight * (1.0 - self.tuning_correlation(rollout.final["W"]))
        return out

    def score(self, rollout, episode):
        rho0 = self.config.target_rate
        out = 1.0 - jnp.abs(self.output_rate(rollout, episode) - rho0) / rho0
        if self.config.balance_weight:  # what the loss asks for, in the same units
            out = out - self.config.balance_weight * (1.0 - self.tuning_correlation(rollout.final["W"]))
        return out

    def behaviour(self, rules, episodes):
        """Per rule and episode: the output rate of the learned weights (Hz) and the E/I
        tuning correlation (detailed balance)."""
        rows = []
        for name, (rule, params) in rules.items():
            def one(e, rule=rule, params=params):
                out = self.simulate(rule, params, e)
                return self.output_rate(out, e), self.tuning_correlation(out.final["W"])

            rate, corr = jax.jit(jax.vmap(one))(episodes)
            rows += [(name, "rate_hz", None, rate), (name, "tuning_correlation", None, corr)]
        return rows

    def references(self):
        from ..rules.canonical import canonical_rule

        # Vogels et al. 2011 with alpha = 2*rho0*tau for this task's target rate, eta = 0.01
        return {"vogels2011": canonical_rule("vogels_istdp", {"alpha": 2 * self.config.target_rate * 1e-3 * 20.0}),
                "none": SymbolicRule.from_string("0*w", {}, label="none")}

    def reference_kind(self):
        return "baseline"


__all__ = ["InhibitoryBalance"]
