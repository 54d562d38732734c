"""Networks as pure step functions: ``(state, inputs_t) -> (state, locals_t)``.

Both networks keep the weight matrix ``W[post, pre]`` in their state and apply the
plasticity rule once per step to every synapse, with the local variables of DESIGN.md
section 2 broadcast over ``[post, pre]``. They are unrolled by :mod:`discover.unroll`
and batched over episodes with ``vmap`` by the tasks.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from . import eventsim
from .config import ConfigError, NetworkConfig
from .registry import NETWORKS
from .rules.base import Rule, add_spike
from .spikes import spike

ACTIVATIONS = {
    "linear": lambda u: u,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "relu": jax.nn.relu,
    "softplus": jax.nn.softplus,
}


class Network:
    """What every network provides (DESIGN.md section 4):

    - ``Config``: a dataclass subclassing :class:`discover.config.NetworkConfig` (the keys
      valid under ``[network]`` when ``kind`` picks this network);
    - ``init_state(W0) -> state`` (a dict holding ``W [post, pre]``);
    - ``step(rule, params, state, inputs_t) -> (state, local)``, ``local`` the vocabulary's
      variables broadcastable over ``[post, pre]``;
    - ``kind``, ``spiking``, ``activity`` (the local variable a rollout records),
      ``input_names`` (what an episode's inputs may hold), ``local_variables``;
    - with several plastic synapse types: ``synapse_types``, ``weight_keys`` (the state key
      of each type's matrix) and ``locals_of(local, type)``.
    """

    Config: ClassVar[type] = NetworkConfig
    # networks with several plastic synapse types name them (one rule each: discover.rules.RuleSet)
    # and the state key of each type's matrix; () / None: one type, W
    synapse_types: ClassVar[tuple[str, ...]] = ()
    weight_keys: ClassVar[dict[str, str] | None] = None

    @classmethod
    def from_config(cls, cfg: NetworkConfig, n_pre: int, n_post: int):
        fields = {f.name for f in dataclasses.fields(cls)}
        kw = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.name in fields}
        return cls(n_pre=n_pre, n_post=n_post, **kw)


def _clip(W, lo, hi):
    if lo is None and hi is None:
        return W
    return jnp.clip(W, lo, hi)


@functools.lru_cache(maxsize=64)
def fan_in_mask(n_post: int, n_pre: int, fan_in: int, seed: int) -> np.ndarray:
    """Fixed fan-in connectivity: ``mask [n_post, n_pre]`` (float32 0/1), each postsynaptic
    neuron connected to ``fan_in`` presynaptic ones drawn without replacement (numpy's
    generator from ``seed``: the same network on every machine)."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((n_post, n_pre), np.float32)
    for i in range(n_post):
        mask[i, rng.choice(n_pre, size=fan_in, replace=False)] = 1.0
    mask.setflags(write=False)
    return mask


class Connectivity:
    """``fan_in`` (0: all to all) and ``fan_in_seed`` fields of a network with one ``W``:
    absent synapses are 0 in the initial weights and stay 0 (their ``dw`` is dropped)."""

    @property
    def mask(self) -> np.ndarray | None:
        """The connectivity ``[n_post, n_pre]`` (0/1), ``None`` for all to all."""
        if not self.fan_in or self.fan_in >= self.n_pre:
            return None
        return fan_in_mask(self.n_post, self.n_pre, int(self.fan_in), int(self.fan_in_seed))

    def _connect(self, W):
        return W if self.mask is None else W * self.mask

    def _check_fan_in(self):
        if self.fan_in < 0 or self.fan_in > self.n_pre:
            raise ValueError(f"network.fan_in = {self.fan_in} must be between 0 (all to all) and n_pre = {self.n_pre}")


def present(network, values) -> np.ndarray:
    """``values [..., n_post, k]`` (a recording of locals, the first ``k`` inputs' synapses)
    flattened, without the synapses fixed fan-in leaves out (all of them where it leaves
    none out): distillation's samples and the normalization probe see only real synapses."""
    v = np.asarray(values)
    mask = getattr(network, "sample_mask", getattr(network, "mask", None))
    if mask is None or v.ndim < 2 or v.shape[-2] != mask.shape[0]:
        return v.reshape(-1)
    keep = np.broadcast_to(mask[:, :v.shape[-1]] > 0, v.shape)
    return v[keep]


def check_fan_in(cfg) -> None:
    """``[network] fan_in`` against ``[task] n_pre`` (a config's check)."""
    k = getattr(cfg.network, "fan_in", 0)
    if k and k > cfg.task.n_pre:
        raise ConfigError(f"[network] fan_in = {k} is more than the n_pre = {cfg.task.n_pre} inputs; use at most "
                          f"{cfg.task.n_pre} (or 0: all to all)")


@dataclass(frozen=True)
class RateConfig(NetworkConfig):
    kind: str = "rate"
    activation: str = "linear"
    w_min: float | None = None
    w_max: float | None = None
    fan_in: int = 0  # > 0: each neuron has this many inputs, drawn once from fan_in_seed (0: all to all)
    fan_in_seed: int = 0

    choices: ClassVar[dict[str, tuple]] = {"activation": ("linear", "tanh", "sigmoid", "relu", "softplus")}
    nonnegative: ClassVar[tuple[str, ...]] = ("fan_in",)

    def check(self, cfg):
        super().check(cfg)
        check_fan_in(cfg)


@NETWORKS.register("rate")
@dataclass(frozen=True)
class RateNetwork(Connectivity, Network):
    """``y = f(W x)``; traces for BCM (``theta``) and the covariance rule (means).

    ``theta`` is the low-pass of ``y**2`` with time constant ``tau_theta`` (steps), as in
    Intrator & Cooper 1992; ``x_mean``, ``y_mean`` low-pass ``x``, ``y`` with ``tau_mean``.
    Traces are updated with the current step's activity before the rule reads them.
    ``fan_in > 0``: fixed sparse connectivity (:func:`fan_in_mask`).
    """

    n_pre: int
    n_post: int
    activation: str = "linear"
    w_min: float | None = None
    w_max: float | None = None
    fan_in: int = 0
    fan_in_seed: int = 0

    Config: ClassVar[type] = RateConfig
    kind: ClassVar[str] = "rate"
    spiking = False
    activity = "y"  # the activity variable a rollout records
    input_names = ("x", "m")  # what an episode's inputs may hold, per step
    local_variables = ("x", "y", "w", "theta", "x_mean", "y_mean", "m")

    def __post_init__(self):
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"network.activation {self.activation!r} unknown; use one of {', '.join(ACTIVATIONS)}")
        self._check_fan_in()

    def init_state(self, W0, theta0=None):
        W0 = self._connect(jnp.asarray(W0, jnp.float32))
        return {
            "W": W0,
            "theta": jnp.zeros((self.n_post,), jnp.float32) if theta0 is None else jnp.asarray(theta0, jnp.float32),
            "x_mean": jnp.zeros((self.n_pre,), jnp.float32),
            "y_mean": jnp.zeros((self.n_post,), jnp.float32),
        }

    def step(self, rule: Rule, rparams, state, inp):
        tau = rule.tau(rparams)
        W, x = state["W"], inp["x"]
        y = ACTIVATIONS[self.activation](W @ x)
        theta = state["theta"] + (y * y - state["theta"]) / tau["tau_theta"]
        x_mean = state["x_mean"] + (x - state["x_mean"]) / tau["tau_mean"]
        y_mean = state["y_mean"] + (y - state["y_mean"]) / tau["tau_mean"]
        local = {
            "x": x[None, :], "y": y[:, None], "w": W, "theta": theta[:, None],
            "x_mean": x_mean[None, :], "y_mean": y_mean[:, None],
            "m": inp.get("m", jnp.zeros((), jnp.float32)),
        }
        dw = rule(rparams, local)
        new = {"W": self._connect(_clip(W + dw, self.w_min, self.w_max)), "theta": theta, "x_mean": x_mean,
               "y_mean": y_mean}
        return new, local


@dataclass(frozen=True)
class LateralConfig(NetworkConfig):
    kind: str = "rate_lateral"
    w_min: float | None = None
    w_max: float | None = None
    lateral_max: float = 0.8  # largest eigenvalue of (L + L^T)/2: I - L stays invertible (see the network)

    positive: ClassVar[tuple[str, ...]] = ("lateral_max",)

    def check(self, cfg):
        super().check(cfg)
        if self.lateral_max >= 1:
            raise ConfigError(f"[network] lateral_max = {self.lateral_max} must be below 1: where (L + L^T)/2 has an "
                              "eigenvalue of 1 or more, I - L can be singular (outputs without bound)")


@NETWORKS.register("rate_lateral")
@dataclass(frozen=True)
class LateralRateNetwork(Network):
    """Linear rate neurons with plastic feed-forward and lateral weights (Foldiak 1989;
    Rubner & Tavan 1989): the outputs settle to ``y = W x + L y``, i.e.
    ``y = (I - L)^-1 W x``, with ``L [post, post]`` zero on its diagonal.

    Two synapse types, each with its own rule (:class:`discover.rules.RuleSet`):
    ``ff`` (``W``; locals ``x`` the input, ``y`` the output, ``w = W_ij``) and ``lat``
    (``L``; locals ``x = y_j`` the presynaptic output, ``y = y_i``, ``w = L_ij``). A
    rollout records ``W``; the final state holds ``L``. ``lateral_max = c < 1`` keeps the
    largest eigenvalue of the symmetric part ``(L + L^T)/2`` at most ``c`` (after each
    update, ``L`` is scaled down where it would pass): then ``I - L`` is invertible, with
    ``|(I - L)^-1|_2 <= 1 / (1 - c)``, since ``v^T (I - L) v >= (1 - c)|v|^2``. This is the
    exact bound for symmetric ``L`` (singular at an eigenvalue 1), and it lets mutual
    inhibition be as strong as ``-c`` per pair, where a per-entry clip keeping ``I - L``
    diagonally dominant would stop it at ``-c/(k - 1)``. The scale is taken without
    gradient (a projection), so the meta-gradient never meets a near-singular ``I - L``.

    Recorded locals: the ``ff`` names plain (``x``, ``y``, ``w``, ``m``), the ``lat`` ones
    as ``lat.x``, ``lat.y``, ``lat.w``, ``lat.m`` (:meth:`locals_of` picks one type's).
    """

    n_pre: int
    n_post: int
    w_min: float | None = None
    w_max: float | None = None
    lateral_max: float = 0.8

    Config: ClassVar[type] = LateralConfig
    kind: ClassVar[str] = "rate_lateral"
    spiking = False
    activity = "y"
    input_names = ("x", "m")
    local_variables = ("x", "y", "w", "m")
    synapse_types: ClassVar[tuple[str, ...]] = ("ff", "lat")
    weight_keys: ClassVar[dict[str, str]] = {"ff": "W", "lat": "L"}

    def init_state(self, W0, L0=None):
        k = self.n_post
        L0 = jnp.zeros((k, k), jnp.float32) if L0 is None else jnp.asarray(L0, jnp.float32) * (1 - jnp.eye(k))
        return {"W": jnp.asarray(W0, jnp.float32), "L": L0}

    def step(self, rule: Rule, rparams, state, inp):
        from .rules.ruleset import rule_for

        W, L, x = state["W"], state["L"], inp["x"]
        k = self.n_post
        y = jnp.linalg.solve(jnp.eye(k, dtype=W.dtype) - L, W @ x)
        m = inp.get("m", jnp.zeros((), jnp.float32))
        ff = {"x": x[None, :], "y": y[:, None], "w": W, "m": m}
        lat = {"x": y[None, :], "y": y[:, None], "w": L, "m": m}
        r_ff, p_ff = rule_for(rule, rparams, "ff")
        r_lat, p_lat = rule_for(rule, rparams, "lat")
        dW = r_ff(p_ff, ff)
        dL = r_lat(p_lat, lat) * (1.0 - jnp.eye(k, dtype=W.dtype))
        new = {"W": _clip(W + dW, self.w_min, self.w_max), "L": self.bound_lateral(L + dL)}
        return new, {**ff, **{f"lat.{n}": v for n, v in lat.items()}}

    def bound_lateral(self, L):
        """``L`` scaled so that the symmetric part's largest eigenvalue is at most ``lateral_max``."""
        top = jax.lax.stop_gradient(jnp.linalg.eigvalsh(0.5 * (L + L.T))[-1])
        c = self.lateral_max
        return L * jnp.where(top > c, c / jnp.maximum(top, c), 1.0)

    @classmethod
    def locals_of(cls, local: dict, synapse: str) -> dict:
        """One synapse type's locals out of a step's (or a recording's)."""
        if synapse == cls.synapse_types[0]:
            return {n: v for n, v in local.items() if "." not in n}
        pre = f"{synapse}."
        return {n[len(pre):]: v for n, v in local.items() if n.startswith(pre)}


def plastic_matrices(network, state) -> list:
    """The plastic weight matrices of a network's state (one per synapse type; ``W`` alone
    for a network with one type)."""
    keys = getattr(network, "weight_keys", None) or {"": "W"}
    return [state[k] for k in keys.values()]


def local_matrix(network, name: str) -> str:
    """The state key of the weight matrix whose shape the local variable ``name`` takes
    (``lat.y`` of ``rate_lateral``: ``L``)."""
    keys = getattr(network, "weight_keys", None)
    t, dot, _ = name.partition(".")
    return keys[t] if dot and keys and t in keys else "W"


@dataclass(frozen=True)
class LIFConfig(NetworkConfig):
    kind: str = "lif"
    dt: float = 1.0  # ms
    tau_m: float = 20.0
    v_rest: float = -70.0
    v_th: float = -54.0
    v_reset: float = -60.0
    t_ref: float = 2.0
    synapse: str = "current"  # current | conductance | delta
    tau_syn: float = 5.0
    E_e: float = 0.0
    w_scale: float = 1.0
    integration: str = "exact"  # exact | euler
    w_min: float | None = 0.0
    w_max: float | None = 1.0
    post_mode: str = "given"  # given (open loop) | closed
    surrogate_beta: float = 1.0
    feedback_gradient: bool = True  # closed loop: false = no meta-gradient from spikes back into plasticity
    reset: bool = True  # false: spikes leave the membrane alone (no reset, no refractoriness)
    dw_tau: float = 0.0  # ms; > 0: the rule's output is low-passed with this time constant before it changes w
    # escape noise (stochastic firing, Gerstner et al. 2014 sec. 9.1): intensity rho*exp((v - v_th)/delta)
    escape_noise: bool = False
    rho: float = 0.01  # Hz, the intensity at v = v_th (E2L reward task: NEST iaf_psc_exp rho)
    delta: float = 0.2  # mV, the sharpness of the escape noise (E2L: delta)
    tau_elig: float = 500.0  # ms, the eligibility trace's low-pass (E2L: usrl_synapse tau_M)
    # the intensity the eligibility trace assumes (0: the neuron's own rho, delta); E2L's
    # synapse uses its own, softer one (usrl_connection.h: rho_ = 0.01 per ms, delta_ = 5 mV)
    elig_rho: float = 0.0  # Hz
    elig_delta: float = 0.0  # mV
    # how plasticity and synaptic input are computed each step (same results): "dense" (every
    # synapse), "event" (only the rows and columns of neurons that spiked: discover.eventsim),
    # "auto" (event where it is faster: an event-driven rule, >= EVENT_MIN_SYNAPSES synapses,
    # dt <= EVENT_MAX_DT, a CPU)
    engine: str = "auto"
    event_capacity: int = 0  # most spikes per step and side the event engine takes, else dense (0: from n, dt)
    fan_in: int = 0  # > 0: each neuron has this many inputs, drawn once from fan_in_seed (0: all to all)
    fan_in_seed: int = 0
    # excitatory and inhibitory inputs (conductance synapses): the first n_inh inputs are
    # inhibitory, reversal E_i, conductance decay tau_syn_i, each spike adds w_scale_i * w
    n_inh: int = 0
    E_i: float = -80.0
    tau_syn_i: float = 10.0
    w_scale_i: float = 1.0
    plastic: str = "all"  # which inputs' synapses the rule changes: "all", "exc" or "inh"

    choices: ClassVar[dict[str, tuple]] = {"plastic": ("all", "exc", "inh"),
                                           "synapse": ("current", "conductance", "delta"),
                                           "integration": ("exact", "euler"), "post_mode": ("given", "closed"),
                                           "engine": ("auto", "dense", "event")}
    positive: ClassVar[tuple[str, ...]] = ("dt", "tau_m", "tau_syn", "rho", "delta", "tau_elig", "tau_syn_i")
    nonnegative: ClassVar[tuple[str, ...]] = ("t_ref", "w_scale", "dw_tau", "elig_rho", "elig_delta", "event_capacity",
                                              "fan_in", "n_inh", "w_scale_i")

    def check(self, cfg):
        super().check(cfg)
        for name in ("tau_m",) if self.synapse == "delta" else ("tau_m", "tau_syn"):
            tau = getattr(self, name)
            if self.dt >= tau:
                raise ConfigError(f"[network] dt = {self.dt} ms must be below {name} = {tau} ms: a step as long as the "
                                  "membrane's time constant integrates nothing it can resolve; use dt <= "
                                  f"{tau / 10:g} ms (a tenth of {name})")
        if self.v_reset >= self.v_th:
            raise ConfigError(f"[network] v_reset = {self.v_reset} mV must be below v_th = {self.v_th} mV")
        if self.escape_noise and not getattr(cfg.task, "draws_escape_noise", False):
            raise ConfigError(f"[network] escape_noise = true needs a task that draws the neuron's noise for every "
                              f"step (reward_driven); task {cfg.task.name} does not: set escape_noise = false")
        if self.escape_noise and self.post_mode != "closed":
            raise ConfigError("[network] escape_noise = true makes the neuron's own spikes stochastic; it needs "
                              "post_mode = \"closed\" (with \"given\" the spikes come from the episode)")
        why = dense_only(self)
        if self.engine == "event" and why:
            raise ConfigError(f"[network] engine = \"event\" cannot simulate this network: {why}; use engine = "
                              "\"auto\" (picks the dense path here) or \"dense\"")
        check_fan_in(cfg)
        if self.n_inh:
            if self.synapse != "conductance":
                raise ConfigError(f"[network] n_inh = {self.n_inh} inhibitory inputs need conductance synapses (their "
                                  "reversal potential E_i): set synapse = \"conductance\"")
            if self.n_inh > cfg.task.n_pre:
                raise ConfigError(f"[network] n_inh = {self.n_inh} is more than the n_pre = {cfg.task.n_pre} inputs")
            if self.dt >= self.tau_syn_i:
                raise ConfigError(f"[network] dt = {self.dt} ms must be below tau_syn_i = {self.tau_syn_i} ms")
        elif self.plastic != "all":
            raise ConfigError(f"[network] plastic = \"{self.plastic}\" needs inhibitory inputs: set n_inh > 0 (the "
                              "first n_inh inputs are inhibitory)")


#: the auto engine's smallest network for the event path (n_pre * n_post; below it the
#: dense step's few fused operations beat the event step's gathers and loops on a CPU)
EVENT_MIN_SYNAPSES = 10_000
#: the auto engine's longest time step for the event path (ms). Its work grows with the spikes
#: per step: pair STDP at 1000 x 100, batch 16, 15 Hz at dt = 0.1 ms (0.0015 spikes per neuron
#: and step): event 5x faster than dense; configs/stdp_pair.toml widened to 1000 x 100, 20-30 Hz
#: at dt = 1 ms (~0.025): CMA-ES generations 0.88x dense (benchmarks/simulator_throughput.py)
EVENT_MAX_DT = 0.5


def dense_only(net) -> str | None:
    """Why the network's settings need the dense path (``None``: they do not)."""
    if net.dw_tau > 0:
        return f"dw_tau = {net.dw_tau} ms low-passes every synapse's dw, which then changes in every step"
    if net.escape_noise:
        return "escape_noise = true keeps a per-synapse eligibility trace (elig) that changes in every step"
    if net.n_inh:
        return "n_inh > 0: excitatory and inhibitory inputs drive two conductances, summed apart"
    return None


@NETWORKS.register("lif")
@dataclass(frozen=True)
class LIFNetwork(Connectivity, Network):
    """Leaky integrate-and-fire neurons driven by presynaptic spike trains.

    Membrane (mV, ms): ``tau_m dv/dt = (v_rest - v) + I`` (current-based, ``I`` in mV,
    each input spike adds ``w_scale * w`` to ``I``, which decays with ``tau_syn``) or
    ``tau_m dv/dt = (v_rest - v) + g (E_e - v)`` (conductance-based, ``g`` in units of the
    leak conductance, each spike adds ``w_scale * w``) or ``"delta"``: each input spike
    makes ``v`` jump by ``w_scale * w`` mV in the next step (NEST's ``iaf_psc_delta``;
    ``tau_syn`` unused). Integration: ``"exact"`` (exact
    exponential for the linear current-based system; exponential Euler with ``g`` frozen
    over the step for conductances, as Brian2's ``exponential_euler``) or ``"euler"``.

    Order within a step follows Brian2's schedule (state update, threshold, synapses,
    reset): an input spike in step ``t`` reaches the membrane from step ``t + 1``. Traces
    decay by ``exp(-dt/tau)`` each step (exact, like Brian2's event-driven traces); the
    rule sees ``tr_pre`` after this step's presynaptic spike was added and ``tr_post``
    before this step's postsynaptic spike is added (the presynaptic pathway runs first,
    so a pre and post spike in the same step potentiate: ``dt = 0`` gives ``+A_plus``),
    and slow traces before their own spike's increment (Pfister & Gerstner 2006); a rule with
    ``traces = "nearest"`` has each spike set its traces to 1 instead of adding 1.

    ``psp`` (current synapses) is each input's unit-weight PSP: the membrane response above
    rest to that input's spikes through a synapse of weight 1, so that ``v - v_rest = W @ psp``
    for fixed weights without reset (Urbanczik & Senn 2014's PSP; Jordan et al. 2021). A
    task may give a teaching potential ``u_target [n_post]`` per step (without one it is the
    neuron's own potential: no teaching signal, no error). ``reset = False``: a
    spike leaves the membrane alone (no reset, no refractoriness; E2L's error-driven task).
    ``dw_tau > 0``: the rule's output is low-passed with that time constant (ms) and the
    low-pass, not the output, is added to ``w`` each step (the plasticity induction variable
    of Jordan et al. 2021's ``us_sympy_synapse``, ``tau_I``).

    ``fan_in = K > 0``: fixed sparse connectivity, each neuron with ``K`` inputs drawn once
    from ``fan_in_seed`` (:func:`fan_in_mask`); absent synapses stay 0 on both engines.

    ``n_inh > 0`` (conductance synapses): the first ``n_inh`` inputs are inhibitory, with a
    conductance of their own (reversal ``E_i``, decay ``tau_syn_i``, ``w_scale_i`` per unit
    weight): ``tau_m dv/dt = (v_rest - v) + g_e (E_e - v) + g_i (E_i - v)`` (Vogels et al.
    2011's neuron; exact exponential with both conductances frozen over the step).
    ``plastic = "inh"`` (or ``"exc"``) lets the rule change only those synapses; the others
    keep their initial weights.

    ``post_mode = "given"`` takes postsynaptic spikes from the inputs (open loop);
    ``"closed"`` generates them from the membrane, with a surrogate gradient.

    ``escape_noise = True`` (closed loop): the neuron fires stochastically with intensity
    ``phi(v) = rho * exp((v - v_th) / delta)`` (rho in Hz, the escape-noise neuron of
    Gerstner et al. 2014, "Neuronal Dynamics", sec. 9.1; NEST's ``iaf_psc_exp`` with
    ``delta > 0`` as in Jordan et al. 2021): it spikes in a step when the episode's
    uniform ``noise [n_post]`` of that step is below ``1 - exp(-phi(v) dt)`` (no gradient
    flows through these spikes: evolution strategies or score functions). The rule may
    then read ``elig``, the eligibility trace of Urbanczik & Senn 2009 as Jordan et al.
    2021's ``usrl_synapse`` computes it, a low-pass with ``tau_elig`` (unit gain) of
    ``psp * (s_post / dt - phi(v_post)) / delta``: the score ``d log P(spikes) / d w`` of
    the neuron's spike train per unit time (E2L's ``psp * (s_post - phi * dt) / delta``
    divided by dt, so that a spike's contribution does not depend on the time step, and in
    the exact form of a Bernoulli spike per step: :meth:`elig_drive`). ``elig_rho``,
    ``elig_delta`` give the trace an intensity of its own, as E2L's ``usrl_synapse`` has
    (rho = 10 Hz, delta = 5 mV against its neuron's 0.01 Hz, 0.2 mV): a softer one, with
    which a neuron far below threshold still gets credit (a pseudo-derivative, as
    surrogate gradients are).

    ``feedback_gradient = False`` (closed loop) lets the meta-gradient reach the loss
    through the postsynaptic spikes (W -> membrane -> surrogate spike -> activity) but
    not back into plasticity: the rule, the postsynaptic traces and the reset see the
    spikes as constants. This cuts the positive feedback loop W -> spike -> STDP -> W that
    makes full gradients explode over long episodes, while, unlike truncated backprop, it
    keeps the effect of every earlier weight change on later activity (the drift of the
    weights over the whole episode, which is what the meta-loss of a plasticity rule
    mostly measures). The forward simulation is unchanged.
    """

    n_pre: int
    n_post: int
    dt: float = 1.0
    tau_m: float = 20.0
    v_rest: float = -70.0
    v_th: float = -54.0
    v_reset: float = -60.0
    t_ref: float = 2.0
    synapse: str = "current"
    tau_syn: float = 5.0
    E_e: float = 0.0
    w_scale: float = 1.0
    integration: str = "exact"
    w_min: float | None = 0.0
    w_max: float | None = 1.0
    post_mode: str = "closed"
    surrogate_beta: float = 1.0
    feedback_gradient: bool = True
    reset: bool = True
    dw_tau: float = 0.0
    escape_noise: bool = False
    rho: float = 0.01
    delta: float = 0.2
    tau_elig: float = 500.0
    elig_rho: float = 0.0
    elig_delta: float = 0.0
    engine: str = "auto"
    event_capacity: int = 0
    fan_in: int = 0
    fan_in_seed: int = 0
    n_inh: int = 0
    E_i: float = -80.0
    tau_syn_i: float = 10.0
    w_scale_i: float = 1.0
    plastic: str = "all"
    v0: float | None = None

    Config: ClassVar[type] = LIFConfig
    kind: ClassVar[str] = "lif"
    spiking = True
    activity = "s_post"
    input_names = ("s_pre", "s_post", "m", "u_target", "noise")
    local_variables = ("s_pre", "s_post", "tr_pre", "tr_post", "tr_pre_slow", "tr_post_slow", "v_post", "w", "m",
                       "psp", "u_target", "elig")

    def __post_init__(self):
        for field, choices in LIFConfig.choices.items():  # the config's own choices, not a copy
            value = getattr(self, field)
            if value not in choices:
                raise ValueError(f"network.{field} = {value!r} unknown; use one of {', '.join(choices)}")
        why = dense_only(self)
        if self.engine == "event" and why:
            raise ValueError(f"network.engine = \"event\" cannot simulate this network: {why}; use engine = "
                             "\"auto\" (picks the dense path here) or \"dense\"")
        self._check_fan_in()
        if self.n_inh and (self.synapse != "conductance" or self.n_inh > self.n_pre):
            raise ValueError(f"network.n_inh = {self.n_inh} needs synapse = \"conductance\" and at most n_pre = "
                             f"{self.n_pre} inputs")

    @property
    def n_exc(self) -> int:
        return self.n_pre - self.n_inh

    @property
    def plastic_columns(self) -> np.ndarray | None:
        """``[n_pre]`` 0/1: the inputs whose synapses the rule changes (``None``: all)."""
        if self.plastic == "all" or not self.n_inh:
            return None
        cols = np.zeros(self.n_pre, np.float32)
        cols[: self.n_inh] = 1.0  # the first n_inh inputs are inhibitory
        return cols if self.plastic == "inh" else 1.0 - cols

    @property
    def sample_mask(self) -> np.ndarray | None:
        """``[n_post, n_pre]`` 0/1: the synapses that exist and learn (distillation's samples)."""
        cols, mask = self.plastic_columns, self.mask
        if cols is None:
            return mask
        return cols[None, :] * (np.ones((self.n_post, self.n_pre), np.float32) if mask is None else mask)

    def engine_for(self, rule: Rule) -> str:
        """``"dense"`` or ``"event"``: how :meth:`step` computes plasticity and synaptic input
        for ``rule`` (``engine = "auto"``: event for an event-driven rule on a CPU from
        :data:`EVENT_MIN_SYNAPSES` synapses at ``dt <=`` :data:`EVENT_MAX_DT`; the two agree to
        float rounding)."""
        if self.engine == "dense":
            return "dense"
        why = dense_only(self) or eventsim.why_dense(rule)
        if self.engine == "event":
            if why:
                raise ValueError(f"network.engine = \"event\" cannot run rule {rule.label!r}: {why}. The event "
                                 "engine needs dw = s_post*P(...) + s_pre*Q(...) over per-neuron variables; use "
                                 "engine = \"auto\" (picks the dense path for this rule) or \"dense\"")
            return "event"
        if (why or self.n_pre * self.n_post < EVENT_MIN_SYNAPSES or self.dt > EVENT_MAX_DT
                or jax.default_backend() != "cpu"):
            return "dense"
        return "event"

    def init_state(self, W0):
        z_post = jnp.zeros((self.n_post,), jnp.float32)
        z_pre = jnp.zeros((self.n_pre,), jnp.float32)
        v0 = self.v_rest if self.v0 is None else self.v0
        state = {
            "W": self._connect(jnp.asarray(W0, jnp.float32)),
            "v": z_post + v0, "g": z_post, "ref": z_post, **({"gi": z_post} if self.n_inh else {}),
            "tr_pre": z_pre, "tr_post": z_post, "tr_pre_slow": z_pre, "tr_post_slow": z_post,
            "psp": z_pre, "isyn": z_pre,
        }
        if self.dw_tau > 0:
            state["dw_lp"] = jnp.zeros_like(state["W"])
        if self.escape_noise:
            state["elig"] = jnp.zeros_like(state["W"])
        return state

    def phi(self, v, rho=None, delta=None):
        """The escape-noise intensity (per ms) at membrane potential ``v`` (mV); its exponent
        is capped at 60 (a spike within the step is then certain), so that it stays finite."""
        rho, delta = rho or self.rho, delta or self.delta
        return rho * 1e-3 * jnp.exp(jnp.minimum((v - self.v_th) / delta, 60.0))

    def fire(self, v, noise):
        """Escape-noise spikes (0/1): ``noise`` (uniform) below ``1 - exp(-phi(v) dt)``."""
        p = -jnp.expm1(-self.phi(v) * self.dt)
        return jax.lax.stop_gradient((noise < p).astype(jnp.float32))

    def elig_drive(self, v, s_post, refractory=0.0):
        """What the eligibility trace low-passes per postsynaptic neuron (times each input's
        ``psp``): the score ``d log P(s_post) / d v`` of this step's Bernoulli spike, per ms,
        ``(s_post * x / (e^x - 1) - (1 - s_post) * x) / (delta * dt)`` with ``x = phi(v) dt``
        (``phi``, ``delta``: ``elig_rho``, ``elig_delta`` where set). For ``x << 1`` it is
        Urbanczik & Senn 2009's ``(s_post / dt - phi(v)) / delta``; unlike that form it stays
        finite where one step takes the potential far above threshold (a certain spike
        earns no credit). Refractory steps, which cannot spike, add nothing."""
        delta = self.elig_delta or self.delta
        x = self.phi(v, self.elig_rho, delta) * self.dt
        credit = jnp.where(x < 1e-6, 1.0 - x / 2.0, x / jnp.expm1(jnp.maximum(x, 1e-6)))
        return (s_post * credit - (1.0 - s_post) * x) / (delta * self.dt) * (1.0 - refractory)

    def _psp_step(self, psp, isyn):
        """One step of the unit-weight PSP (current synapse, no reset): the membrane's
        response, above rest, to a synapse of weight 1, so that ``v - v_rest = W @ psp``
        for fixed weights without reset."""
        if self.synapse not in ("current", "delta"):
            return psp, isyn
        new_v, new_g = self._membrane(psp + self.v_rest, isyn)
        return new_v - self.v_rest, new_g

    def unit_psp(self, s_pre):
        """The unit-weight PSP of each input over spike trains ``s_pre [T, n_pre]`` as the
        rule sees it in each step (``[T, n_pre]``): a teacher's membrane potential is
        ``v_rest + psp @ w`` (a fixed-weight neuron without reset)."""
        def f(c, s):
            psp, isyn = self._psp_step(*c)
            return (psp, isyn + self.w_scale * s), psp
        z = jnp.zeros(s_pre.shape[1:], jnp.float32)
        return jax.lax.scan(f, (z, z), s_pre)[1]

    def _membrane(self, v, g, gi=None):
        dt, tau_m = self.dt, self.tau_m
        if gi is not None:  # excitatory and inhibitory conductances (Vogels et al. 2011's neuron)
            if self.integration == "euler":
                dv = ((self.v_rest - v) + g * (self.E_e - v) + gi * (self.E_i - v)) / tau_m
                return v + dt * dv, g - dt * g / self.tau_syn, gi - dt * gi / self.tau_syn_i
            G = 1.0 + g + gi
            v_inf = (self.v_rest + g * self.E_e + gi * self.E_i) / G
            v_new = v_inf + (v - v_inf) * jnp.exp(-dt * G / tau_m)
            return v_new, g * math.exp(-dt / self.tau_syn), gi * math.exp(-dt / self.tau_syn_i)
        if self.synapse == "delta":  # g: the jump the last step's input spikes give v (NEST iaf_psc_delta)
            if self.integration == "euler":
                return v + dt * (self.v_rest - v) / tau_m + g, jnp.zeros_like(g)
            return self.v_rest + (v - self.v_rest) * math.exp(-dt / tau_m) + g, jnp.zeros_like(g)
        if self.synapse == "current":
            if self.integration == "euler":
                return v + dt * ((self.v_rest - v) + g) / tau_m, g - dt * g / self.tau_syn
            em, es = math.exp(-dt / tau_m), math.exp(-dt / self.tau_syn)
            if abs(self.tau_syn - tau_m) < 1e-9:
                coef = dt / tau_m * em
            else:
                coef = self.tau_syn / (self.tau_syn - tau_m) * (es - em)
            return self.v_rest + (v - self.v_rest) * em + g * coef, g * es
        # conductance-based
        if self.integration == "euler":
            dv = ((self.v_rest - v) + g * (self.E_e - v)) / tau_m
            return v + dt * dv, g - dt * g / self.tau_syn
        v_inf = (self.v_rest + g * self.E_e) / (1.0 + g)
        v_new = v_inf + (v - v_inf) * jnp.exp(-dt * (1.0 + g) / tau_m)
        return v_new, g * math.exp(-dt / self.tau_syn)

    def step(self, rule: Rule, rparams, state, inp):
        tau = rule.tau(rparams)
        s_pre = inp["s_pre"]
        refractory = state["ref"] > 0
        if self.n_inh:
            v_int, g, gi = self._membrane(state["v"], state["g"], state["gi"])
        else:
            v_int, g = self._membrane(state["v"], state["g"])
        v = jnp.where(refractory, state["v"], v_int)
        psp, isyn = self._psp_step(state["psp"], state["isyn"])
        if self.post_mode == "given":
            s_post = inp["s_post"]
        elif self.escape_noise:
            if "noise" not in inp:
                raise KeyError("an escape-noise neuron needs the episode's uniform noise per step (inputs['noise'] "
                               "[T, n_post])")
            s_post = self.fire(v, inp["noise"]) * (1.0 - refractory)
        else:
            s_post = spike(v - self.v_th, self.surrogate_beta) * (1.0 - refractory)
        s_out = s_post  # what the activity readout sees
        if not self.feedback_gradient:
            s_post = jax.lax.stop_gradient(s_post)
        decay = {k: jnp.exp(-self.dt / tau[k]) for k in ("tau_pre", "tau_post", "tau_pre_slow", "tau_post_slow")}
        def add(tr, s):
            return add_spike(rule, tr, s)

        tr_pre = add(state["tr_pre"] * decay["tau_pre"], s_pre)
        tr_post = state["tr_post"] * decay["tau_post"]
        tr_pre_slow = state["tr_pre_slow"] * decay["tau_pre_slow"]
        tr_post_slow = state["tr_post_slow"] * decay["tau_post_slow"]
        W = state["W"]
        engine = self.engine_for(rule)
        local = {
            "s_pre": s_pre[None, :], "s_post": s_post[:, None],
            "tr_pre": tr_pre[None, :], "tr_post": tr_post[:, None],
            "tr_pre_slow": tr_pre_slow[None, :], "tr_post_slow": tr_post_slow[:, None],
            "v_post": v[:, None], "w": W,
            "m": inp.get("m", jnp.zeros((), jnp.float32)),
            "psp": psp[None, :], "u_target": inp.get("u_target", v)[:, None],  # no teacher: no error
        }
        new = {}
        if engine == "event":  # only the rows and columns of neurons that spiked (discover.eventsim)
            reads = set(rule.inputs) | {"s_pre", "s_post"}
            vec = {"s_pre": s_pre, "tr_pre": tr_pre, "tr_pre_slow": tr_pre_slow, "psp": psp, "s_post": s_post,
                   "tr_post": tr_post, "tr_post_slow": tr_post_slow, "v_post": v,
                   "u_target": inp.get("u_target", v)}
            W_new, syn = eventsim.plastic_update(
                rule, rparams, W, {n: vec[n] for n in eventsim.PRE_SIDE if n in reads},
                {n: vec[n] for n in eventsim.POST_SIDE if n in reads}, {"m": local["m"]} if "m" in reads else {},
                w_min=self.w_min, w_max=self.w_max, k_pre=eventsim.capacity(self.n_pre, self.dt, self.event_capacity),
                k_post=eventsim.capacity(self.n_post, self.dt, self.event_capacity),
                fan_in=(self.fan_in, self.fan_in_seed) if self.mask is not None else None)
            local["s_post"] = s_out[:, None]
        else:
            if self.escape_noise:
                a = math.exp(-self.dt / self.tau_elig)
                drive = self.elig_drive(v, s_post, refractory.astype(jnp.float32))
                elig = new["elig"] = state["elig"] * a + (1.0 - a) * drive[:, None] * psp[None, :]
                local["elig"] = elig
            dw = rule(rparams, local)
            if self.plastic_columns is not None:  # only the chosen population's synapses learn
                dw = dw * self.plastic_columns
            local["s_post"] = s_out[:, None]
            if self.dw_tau > 0:  # the synapse's plasticity induction variable (Jordan et al. 2021, us_sympy_synapse)
                a = math.exp(-self.dt / self.dw_tau)
                dw = new["dw_lp"] = state["dw_lp"] * a + (1.0 - a) * dw
            W_new = self._connect(_clip(W + dw, self.w_min, self.w_max))
            syn = W @ s_pre
        if self.n_inh:  # the first n_inh inputs inhibitory, the others excitatory
            ni = self.n_inh
            syn = W[:, ni:] @ s_pre[ni:]
            new["gi"] = gi + self.w_scale_i * (W[:, :ni] @ s_pre[:ni])
        g = g + self.w_scale * syn
        if self.reset:
            v = v * (1.0 - s_post) + self.v_reset * s_post
            # Brian2's rule: a neuron may fire again once t - t_spike >= t_ref, so the membrane
            # is held for the n_ref - 1 steps after the spike step.
            n_ref = max(round(self.t_ref / self.dt) - 1, 0)
            ref = jnp.where(s_post > 0, float(n_ref), jnp.maximum(state["ref"] - 1.0, 0.0))
        else:
            ref = state["ref"]
        new.update({
            "W": W_new, "v": v, "g": g, "ref": ref,
            "tr_pre": tr_pre, "tr_post": add(tr_post, s_post),
            "tr_pre_slow": add(tr_pre_slow, s_pre), "tr_post_slow": add(tr_post_slow, s_post),
            "psp": psp, "isyn": isyn + self.w_scale * s_pre,
        })
        return new, local
