"""MLP rules: a small network applied independently at every synapse.

For rate networks ``dw = scale * f(z)``; for spiking networks the event-driven form
``dw = scale * (s_post * f(z) + s_pre * g(z))`` (DESIGN.md section 3), where ``z`` are the
rule's non-spike inputs, normalized by fixed per-input shifts and scales.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import ClassVar

import jax
import jax.numpy as jnp

from ..config import RuleConfig
from ..registry import RULES
from .base import EventDriven, Rule


@dataclass(frozen=True)
class MLPConfig(RuleConfig):
    kind: str = "mlp"
    hidden: list[int] = field(default_factory=lambda: [16, 16])
    output_scale: float = 0.01
    event_driven: bool | None = None  # default: True for spiking networks

    positive: ClassVar[tuple[str, ...]] = ("output_scale", "hidden")


@RULES.register("mlp")
@dataclass(frozen=True)
class MLPRule(EventDriven, Rule):
    hidden: tuple[int, ...] = (16, 16)
    output_scale: float = 0.01
    event_driven: bool = False
    # (shift, scale) per non-spike input, so that the MLP sees O(1) numbers
    norm: tuple[tuple[float, float], ...] = ()
    init_gain: float = 0.1

    Config: ClassVar[type] = MLPConfig
    default_label: ClassVar[str] = "neural"

    def normalized(self, probe):
        return self if probe is None else replace(self, norm=probe(self))

    def init_core(self, key):
        sizes = (len(self.features), *self.hidden, max(1, len(self.heads)))
        layers = []
        keys = jax.random.split(key, len(sizes) - 1)
        for i, (k, a, b) in enumerate(zip(keys, sizes[:-1], sizes[1:])):
            gain = self.init_gain if i == len(sizes) - 2 else 1.0
            W = gain * jax.random.normal(k, (a, b), jnp.float32) / jnp.sqrt(max(a, 1))
            layers.append({"W": W, "b": jnp.zeros((b,), jnp.float32)})
        return layers

    def apply(self, core, local):
        norm = self.norm or tuple((0.0, 1.0) for _ in self.features)
        shape = jnp.broadcast_shapes(*[jnp.shape(local[n]) for n in self.inputs])
        z = jnp.stack(
            [(jnp.broadcast_to(local[n], shape) - s) / c for n, (s, c) in zip(self.features, norm)], axis=-1
        )
        h = z
        for layer in core[:-1]:
            h = jnp.tanh(h @ layer["W"] + layer["b"])
        out = h @ core[-1]["W"] + core[-1]["b"]
        if not self.heads:
            return self.output_scale * out[..., 0]
        dw = sum(out[..., i] * local[s] for i, s in enumerate(self.heads))
        return self.output_scale * dw
