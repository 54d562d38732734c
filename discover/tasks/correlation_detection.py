"""``correlation_detection``: a spiking neuron must learn, without a teacher, to respond to a
spike pattern hidden in its inputs.

The correlation task of Jordan, Schmidt, Senn & Petrovici 2021 (eLife 10:e66273, "Evolving
interpretable plasticity for spiking networks", section "Correlation-driven learning",
Fig. 5; after Masquelier, Guyonneau & Thorpe 2008, PLoS ONE 3:e1377; code:
Happy-Algorithms-League/e2l-cgp-snn, experiments/correlation_based, ``params.json``,
``main.py``, ``sim_utils.py``): 1000 inputs (``Npre``) fire Poisson spikes at 3 Hz
(``bg_rate``); one frozen 100-ms pattern (``T_stim``) of 3-Hz Poisson spikes is replayed in
all inputs after every 400 ms (``T_inter``), first at 400 ms; one NEST ``iaf_psc_delta``
neuron (E_L = V_reset = 0 mV, V_th = 20 mV, tau_m = 18 ms, NEST's t_ref = 2 ms; an input
spike of weight w makes V jump by w mV after the 1-ms delay) learns for 100 s (``T``) from
one initial weight for all synapses, N(0.384, 0.1) per trial: 0.384 = V_th / (N r - 2
sqrt(N r)) / tau_m, the weight at which the neuron fires about 20 Hz (``main.py``). Weights
stay in [0, 1] (``Wmax``).

Background: E2L's ``build_poisson_input`` cuts the pattern windows out of each input's
background train and then keeps ``alpha = 1 - nu_stim / nu_inter = 1/6`` of what is left
(nu_stim = 1000 / (T_inter + T_stim) = 2, nu_inter = bg_rate T_inter / (T_inter + T_stim)
= 2.4), so between patterns the inputs fire at 0.5 Hz, not 3 Hz: the pattern is also a
step of the input rate. ``background = "e2l"`` (default) is that protocol, so our numbers
stand beside the paper's; ``background = "equal"`` keeps the background at the pattern's
rate (Masquelier et al. 2008: only the timing of the spikes marks the pattern).

Objective (``main.py``, ``simulate``): after learning, the final weights are frozen and the
neuron is run again on the same inputs from the start with the threshold disabled, for
``snr_ms`` (E2L: 11 s in training, 31 s in validation); the signal-to-noise ratio is, per
pattern presentation, ``(max V in the window - mean V between patterns) / s.d. of V between
patterns``, averaged over the presentations. E2L's fitness of a rule is the minimum of this
over 8 trials; the meta-loss here is minus its mean over the meta-batch (``score`` is the
SNR of one trial; ``e2l_fitness`` the same).

Rules are event-driven (``s_post * P(tr_pre, tr_post, w) + s_pre * Q(tr_pre, tr_post, w)``):
E2L's facilitation at a postsynaptic spike (it saw ``w``, the presynaptic trace) and
depression at a presynaptic spike (``w``, the postsynaptic trace), tau = 20 ms both. The
simulation is :class:`~discover.networks.LIFNetwork` with ``synapse = "delta"`` through the
shared rollout (so distillation, verification and the behaviour checks see the same
neuron); the inputs of an episode are kept as booleans and looked up per step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import jax
import jax.numpy as jnp

from ..config import ConfigError, TaskConfig
from ..registry import TASKS
from ..rules.symbolic import SymbolicRule
from .base import SpikesPerStep, Task

# e2l-cgp-snn, experiments/correlation_based/main.py: the initial weight at which the neuron
# fires about 20 Hz, V_th / (Npre * bg_rate - 2 * sqrt(Npre * bg_rate)) / (tau_m * 1e-3)
E2L_W0 = 20.0 / (1000 * 3.0 - 2 * math.sqrt(1000 * 3.0)) / 0.018


@TASKS.register("correlation_detection")
@dataclass(frozen=True)
class CorrelationDetection(SpikesPerStep, Task):
    @dataclass(frozen=True)
    class Config(TaskConfig):
        name: str = "correlation_detection"
        n_pre: int = 1000  # E2L: Npre
        n_post: int = 1  # E2L: Npost
        steps: int = 20000  # learning steps per episode (E2L: T = 100 s; 20 s for meta-training)
        record_every: int = 1000  # weights kept once a second
        pattern_ms: float = 100.0  # E2L: T_stim
        inter_ms: float = 400.0  # E2L: T_inter
        rate: float = 3.0  # Hz (E2L: bg_rate)
        background: str = "e2l"  # e2l (E2L's thinning: 0.5 Hz between patterns) | equal (3 Hz)
        w0_mean: float = round(E2L_W0, 4)  # E2L: the ~20-Hz weight (0.3844)
        w0_sd: float = 0.1  # E2L: one initial weight per trial, N(w0_mean, 0.1)
        snr_ms: float = 11000.0  # the frozen re-run the SNR is measured on (E2L: 11 s; 31 s in validation)
        visited_pre: int = 16  # inputs whose local variables distillation samples (all 1000 do not fit)
        max_weight: float = 100.0
        fit_threshold: float = 0.0  # no share explained: the objective is an SNR

        choices: ClassVar[dict[str, tuple]] = {"background": ("e2l", "equal")}
        positive: ClassVar[tuple[str, ...]] = TaskConfig.positive + ("pattern_ms", "inter_ms", "rate", "snr_ms",
                                                                     "visited_pre")
        nonnegative: ClassVar[tuple[str, ...]] = ("w0_sd",)

        def check(self, cfg):
            super().check(cfg)
            n = cfg.network
            if n.kind != "lif" or n.post_mode != "closed" or n.escape_noise:
                raise ConfigError("task correlation_detection needs a deterministic LIF neuron that makes its own "
                                  "spikes: set [network] kind = \"lif\", post_mode = \"closed\" (and escape_noise "
                                  "= false)")
            dt = n.dt
            for key in ("pattern_ms", "inter_ms", "snr_ms"):
                v = getattr(self, key)
                if abs(v / dt - round(v / dt)) > 1e-9:
                    raise ConfigError(f"[task] {key} = {v} ms is not a whole number of steps of dt = {dt} ms")
            period = round((self.pattern_ms + self.inter_ms) / dt)
            for key, v in (("steps", self.steps), ("snr_ms", round(self.snr_ms / dt))):
                if v % period:
                    raise ConfigError(f"[task] {key} must hold whole cycles of pattern + interval "
                                      f"({self.pattern_ms + self.inter_ms:g} ms = {period} steps); it holds "
                                      f"{v / period:.2f}")
            if self.background == "e2l" and self.inter_ms * self.rate <= 1000.0:
                raise ConfigError("[task] background = \"e2l\" thins the background by 1 - 1000 / (rate * inter_ms), "
                                  f"which is not positive at rate = {self.rate} Hz, inter_ms = {self.inter_ms}: use "
                                  "background = \"equal\"")
            if self.rate * dt * 1e-3 >= 1:
                raise ConfigError(f"[task] rate = {self.rate} Hz gives more than one spike per step of {dt} ms")
            if self.visited_pre > self.n_pre:
                raise ConfigError(f"[task] visited_pre = {self.visited_pre} is more than n_pre = {self.n_pre}")

    name: ClassVar[str] = "correlation_detection"

    # -- the protocol in steps ----------------------------------------------------------------
    @property
    def pattern_steps(self) -> int:
        return round(self.config.pattern_ms / self.network.dt)

    @property
    def period(self) -> int:
        return round((self.config.pattern_ms + self.config.inter_ms) / self.network.dt)

    @property
    def snr_steps(self) -> int:
        return round(self.config.snr_ms / self.network.dt)

    @property
    def background_rate(self) -> float:
        """Hz between patterns: E2L's thinned rate (0.5 Hz) or the pattern's."""
        c = self.config
        if c.background == "equal":
            return c.rate
        nu_stim = 1000.0 / (c.inter_ms + c.pattern_ms)  # sim_utils.build_poisson_input, as E2L writes it
        nu_inter = c.rate * c.inter_ms / (c.inter_ms + c.pattern_ms)
        return c.rate * (1.0 - nu_stim / nu_inter)

    # -- episodes -----------------------------------------------------------------------------
    def sample(self, key, n):
        return jax.vmap(self._sample_one)(jax.random.split(key, n))

    def _sample_one(self, key):
        c, net = self.config, self.network
        kp, kb, kw = jax.random.split(key, 3)
        p = c.rate * net.dt * 1e-3
        T = max(self.steps, self.snr_steps)
        w0 = jnp.clip(c.w0_mean + c.w0_sd * jax.random.normal(kw, ()), 0.0, net.w_max)
        return {"pattern": jax.random.bernoulli(kp, p, (self.pattern_steps, net.n_pre)),
                "background": self._background(kb, T, self.background_rate * net.dt * 1e-3),
                "W0": jnp.full((net.n_post, net.n_pre), w0, jnp.float32)}

    def _background(self, key, T, p, chunk: int = 10_000):
        """``[T, n_pre]`` Bernoulli spikes drawn ``chunk`` steps at a time: the uniform numbers
        of a whole 100-s episode at once would take 400 MB per episode."""
        n = -(-T // chunk)
        draw = lambda k: jax.random.bernoulli(k, p, (min(chunk, T), self.network.n_pre))  # noqa: E731
        return jax.lax.map(draw, jax.random.split(key, n)).reshape(-1, self.network.n_pre)[:T]

    def in_pattern(self, t):
        """Whether step ``t`` lies in a pattern window (the last ``pattern_steps`` of each cycle)."""
        return t % self.period >= self.period - self.pattern_steps

    def spikes(self, episode, t):
        """The input spikes of step ``t`` (``[n_pre]``, 0/1): the pattern in its windows, else
        the background."""
        phase = t % self.period - (self.period - self.pattern_steps)
        s = jnp.where(self.in_pattern(t), episode["pattern"][jnp.maximum(phase, 0)], episode["background"][t])
        return s.astype(jnp.float32)

    # -- the episode ---------------------------------------------------------------------------

    def free_potential(self, W, episode):
        """``V [snr_steps, n_post]``: the neuron at fixed weights ``W`` on the episode's inputs
        from the start, the threshold disabled (E2L: V_th = 20000 mV)."""
        net = self.network

        def f(v, t):
            v, _ = net._membrane(v, net.w_scale * (W @ self.spikes(episode, t - 1)) * (t > 0))
            return v, v

        v0 = jnp.full((net.n_post,), net.v_rest if net.v0 is None else net.v0, jnp.float32)
        return jax.lax.scan(f, v0, jnp.arange(self.snr_steps, dtype=jnp.int32))[1]

    def snr(self, W, episode):
        """E2L's signal-to-noise ratio of the membrane at weights ``W``: per pattern window
        ``(max V - mean V between patterns) / s.d. of V between patterns``, averaged over the
        windows (and over the neurons)."""
        V = self.free_potential(W, episode)  # [T, post]
        n, P = self.snr_steps // self.period, self.period
        V = V[: n * P].reshape(n, P, -1)
        inter, pat = V[:, : P - self.pattern_steps], V[:, P - self.pattern_steps:]
        mean, sd = jnp.mean(inter, axis=(0, 1)), jnp.std(inter, axis=(0, 1))
        return jnp.mean((jnp.max(pat, axis=1) - mean) / jnp.maximum(sd, 1e-6))

    # -- the objective -------------------------------------------------------------------------
    def loss(self, rollout, episode):
        """Minus the SNR after learning (so that lower is better)."""
        return -self.snr(rollout.final["W"], episode)

    diverged_loss: ClassVar[float] = 0.0  # an SNR of 0: no better than a flat potential

    def score(self, rollout, episode):
        return -self.loss(rollout, episode)

    def e2l_fitness(self, rollout, episode):
        """E2L's SNR of one trial (its fitness is the minimum over trials)."""
        return self.snr(rollout.final["W"], episode)

    def behaviour(self, rules, episodes, points: int = 4):
        """Per rule and episode: the SNR curve, E2L's SNR of the weights at ``points`` times
        of learning (``at`` in seconds; the last is the objective's)."""
        rows = []
        n_rec = self.steps // self.record_every
        idx = sorted({max(0, round(n_rec * (i + 1) / points) - 1) for i in range(points)})
        for name, (rule, params) in rules.items():
            def one(e, rule=rule, params=params):
                Ws = self.simulate(rule, params, e).weights
                return jnp.stack([self.snr(Ws[i], e) for i in idx])

            curve = jax.jit(jax.vmap(one))(episodes)
            for j, i in enumerate(idx):
                rows.append((name, "snr", (i + 1) * self.record_every * self.network.dt * 1e-3, curve[:, j]))
        return rows

    def references(self):
        from ..rules.canonical import canonical_rule

        return {"homeostatic_stdp_e2l": canonical_rule("homeostatic_stdp"),  # at E2L's parameters
                "none": SymbolicRule.from_string("0*w", {}, label="none")}

    def reference_kind(self):
        return "baseline"


__all__ = ["CorrelationDetection", "E2L_W0"]
