"""``rate_layers``: a multi-layer rate network that learns online, one sample per step, with
an error signal sent back through fixed random feedback weights.

The network of Shervani-Tabar & Rosenbaum 2023 (Nat. Commun. 14:1805, "Meta-learning
biologically plausible plasticity rules with random feedback pathways"; code:
NeuralDynamicsAndComputing/MetaLearning-Plasticity, ``main.py`` and ``optim.py``):
inputs ``h_0 = x`` pass through hidden layers ``h_l = softplus_beta(W_l h_(l-1))`` (no
biases, ``beta = 10``) to a softmax readout ``p = softmax(W_L h_(L-1))``. At each step the
network sees one sample and its label (``target``, one-hot), and every synapse of every
layer runs the same plasticity rule on its local variables:

- ``x``: the presynaptic rate (``h_(l-1)``), ``y``: the postsynaptic rate (``h_l``; the
  readout's is its softmax probability), ``w``: the weight;
- ``e_post``: the postsynaptic neuron's error, ``p - target`` at the readout and
  ``e_l = (B_(l+1)^T e_(l+1)) * g'(z_l)`` below it, with ``g'(z) = 1 - exp(-beta h)`` (the
  softplus derivative written in the neuron's own rate, as in their ``optim.py``), ``B``
  fixed random feedback matrices the shape of ``W`` (``feedback = "random"``) or ``W``
  itself (``feedback = "symmetric"``: then ``-eta * e_post * x`` is exactly backprop's SGD
  step on the sample's cross-entropy);
- ``e_pre``: the presynaptic neuron's error (0 for the input layer, whose units receive
  no feedback);
- ``m``: the global third factor (the task's, default 0).

State: every layer's weights in one flat vector ``W [1, N]`` (``N`` the synapses of all
layers, layer by layer, row-major ``[post, pre]``), so that a rollout records, bounds and
samples all of them at once and one rule serves every layer; ``B`` the same for the
feedback. A :class:`~discover.rules.RuleSet` with types ``hidden`` and ``readout`` runs
one rule on the hidden layers' synapses and another on the readout's (baselines such as
Hebbian hidden layers with a delta-rule readout); a plain rule serves both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from .config import ConfigError, NetworkConfig
from .networks import Network, _clip
from .registry import NETWORKS
from .rules.base import Rule

FEEDBACK = ("random", "symmetric")


@dataclass(frozen=True)
class LayeredConfig(NetworkConfig):
    kind: str = "rate_layers"
    hidden: list[int] = field(default_factory=lambda: [40, 30])  # hidden layer sizes, input side first
    beta: float = 10.0  # softplus sharpness (Shervani-Tabar & Rosenbaum 2023: Beta = 10)
    feedback: str = "random"  # error pathway: fixed random B, or "symmetric" (B = W: backprop)
    w_min: float | None = None
    w_max: float | None = None

    choices: ClassVar[dict[str, tuple]] = {"feedback": FEEDBACK}
    positive: ClassVar[tuple[str, ...]] = ("beta",)

    def check(self, cfg):
        super().check(cfg)
        if not self.hidden or any(int(h) != h or h < 1 for h in self.hidden):
            raise ConfigError(f"[network] hidden = {self.hidden} must list one or more layer sizes (positive "
                              "integers), e.g. [40, 30]")


@NETWORKS.register("rate_layers")
@dataclass(frozen=True)
class LayeredRateNetwork(Network):
    n_pre: int
    n_post: int
    hidden: tuple[int, ...] = (40, 30)
    beta: float = 10.0
    feedback: str = "random"
    w_min: float | None = None
    w_max: float | None = None

    Config: ClassVar[type] = LayeredConfig
    kind: ClassVar[str] = "rate_layers"
    spiking = False
    activity = "y"
    input_names = ("x", "target", "m")
    local_variables = ("x", "y", "w", "e_post", "e_pre", "m")
    # a RuleSet with these types runs one rule on the hidden layers and one on the readout
    # (not synapse_types: a learned rule is one rule for every layer)
    parts: ClassVar[tuple[str, ...]] = ("hidden", "readout")

    def __post_init__(self):
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        if self.feedback not in FEEDBACK:
            raise ValueError(f"network.feedback {self.feedback!r} unknown; use one of {', '.join(FEEDBACK)}")

    # -- layout ---------------------------------------------------------------------------------
    @property
    def sizes(self) -> tuple[int, ...]:
        return (self.n_pre, *self.hidden, self.n_post)

    @property
    def shapes(self) -> tuple[tuple[int, int], ...]:
        """``(post, pre)`` of each layer's weights, input side first."""
        s = self.sizes
        return tuple((b, a) for a, b in zip(s[:-1], s[1:]))

    @cached_property
    def offsets(self) -> tuple[int, ...]:
        return tuple(int(v) for v in np.cumsum([0] + [a * b for a, b in self.shapes]))

    @property
    def n_synapses(self) -> int:
        return self.offsets[-1]

    @cached_property
    def readout_mask(self) -> np.ndarray:
        """``[1, N]``: 1 on the readout's synapses."""
        m = np.zeros((1, self.n_synapses), np.float32)
        m[0, self.offsets[-2]:] = 1.0
        return m

    @cached_property
    def strata(self) -> np.ndarray:
        """``[N]``: each synapse's layer (0 = the input layer's); distillation samples every
        layer alike (:func:`distill.sampling.visited_samples`)."""
        return np.repeat(np.arange(len(self.shapes)), [a * b for a, b in self.shapes])

    def layers(self, flat) -> list:
        """The weight matrices ``[post, pre]`` of a flat ``[..., N]`` vector (leading axes kept)."""
        flat = jnp.asarray(flat)
        lead = flat.shape[:-1]
        return [flat[..., a:b].reshape(lead + s) for (a, b), s in
                zip(zip(self.offsets[:-1], self.offsets[1:]), self.shapes)]

    def flatten(self, mats) -> jax.Array:
        return jnp.concatenate([jnp.reshape(m, m.shape[:-2] + (-1,)) for m in mats], axis=-1)

    def glorot(self, key) -> jax.Array:
        """Weights ``[1, N]`` drawn layer by layer from Glorot & Bengio's uniform
        ``U(-r, r)``, ``r = sqrt(6 / (fan_in + fan_out))`` (Shervani-Tabar & Rosenbaum's
        ``weights_init``, for forward and feedback weights alike)."""
        mats = []
        for i, (o, n) in enumerate(self.shapes):
            r = math.sqrt(6.0 / (n + o))
            mats.append(jax.random.uniform(jax.random.fold_in(key, i), (o, n), jnp.float32, -r, r))
        return self.flatten(mats)[None, :]

    # -- dynamics -------------------------------------------------------------------------------
    def init_state(self, W0, B0=None):
        W0 = jnp.asarray(W0, jnp.float32).reshape(1, self.n_synapses)
        B0 = jnp.zeros_like(W0) if B0 is None else jnp.asarray(B0, jnp.float32).reshape(1, self.n_synapses)
        return {"W": W0, "B": B0}

    def act(self, z):
        return jax.nn.softplus(self.beta * z) / self.beta

    def forward(self, Ws, x):
        """Rates of every layer (``[x, h_1, ..., h_(L-1)]``) and the readout's logits; ``x``
        ``[n_pre]`` or ``[batch, n_pre]``."""
        hs = [x]
        for W in Ws[:-1]:
            hs.append(self.act(hs[-1] @ W.T))
        return hs, hs[-1] @ Ws[-1].T

    def logits(self, flat_W, x):
        """The readout's logits for inputs ``x [..., n_pre]`` under weights ``flat_W [1, N]``."""
        return self.forward(self.layers(flat_W[0]), x)[1]

    def errors(self, Ws, Bs, hs, p, target):
        """Each layer's postsynaptic error ``e_l`` (readout last) and the inputs' zeros."""
        back = Ws if self.feedback == "symmetric" else Bs
        e = [p - target]
        for k in range(len(Ws) - 1, 0, -1):
            e.insert(0, (e[0] @ back[k]) * (1.0 - jnp.exp(-self.beta * hs[k])))
        return [jnp.zeros_like(hs[0])] + e

    def step(self, rule: Rule, rparams, state, inp):
        from .rules.ruleset import RuleSet, rule_for

        W, x = state["W"], inp["x"]
        Ws, Bs = self.layers(W[0]), self.layers(state["B"][0])
        hs, logits = self.forward(Ws, x)
        p = jax.nn.softmax(logits)
        e = self.errors(Ws, Bs, hs, p, inp["target"])
        post = hs[1:] + [p]

        def flat(pre_side, vals):
            return jnp.concatenate([
                jnp.broadcast_to(v[None, :] if pre_side else v[:, None], s).reshape(-1)
                for v, s in zip(vals, self.shapes)])[None, :]

        local = {"x": flat(True, hs), "y": flat(False, post), "w": W, "e_post": flat(False, e[1:]),
                 "e_pre": flat(True, e[:-1]), "m": inp.get("m", jnp.zeros((), jnp.float32))}
        if isinstance(rule, RuleSet):
            r_h, p_h = rule_for(rule, rparams, "hidden")
            r_o, p_o = rule_for(rule, rparams, "readout")
            dw = jnp.where(self.readout_mask > 0, r_o(p_o, local), r_h(p_h, local))
        else:
            dw = rule(rparams, local)
        return {"W": _clip(W + dw, self.w_min, self.w_max), "B": state["B"]}, local


__all__ = ["LayeredRateNetwork", "LayeredConfig"]
