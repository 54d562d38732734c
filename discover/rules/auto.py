"""``[rule] kind = "auto"``: the tool picks the student for the vocabulary it sees.

A polynomial where the vocabulary is small, an MLP where it is not (issue 18: defaults
that work without tuning). With weights observed a polynomial student makes imitation a
well-posed regression over its monomials, and it starts silent (all coefficients 0), so
no random student diverges at step 0; an MLP scales to vocabularies whose full
polynomial would have hundreds of terms (seven spiking variables, degree 3: 119).

    features <= 3: polynomial of degree 3 (rate: x, y, w -> 19 monomials)
    features  = 4: polynomial of degree 2
    otherwise    : MLP with one hidden layer of 16 (``hidden``)

``features`` are the rule's non-spike inputs where it is event-driven (spiking networks:
``dw = s_post*P(z) + s_pre*Q(z)``), else all of them. The run's ``rule/rule.json`` holds
the rule that was picked, so every later stage sees an ordinary polynomial or MLP rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from ..config import RuleConfig
from ..registry import RULES
from ..vocabulary import BINARY
from .base import Rule, _tuples
from .mlp import MLPRule
from .polynomial import PolynomialRule


@dataclass(frozen=True)
class AutoConfig(RuleConfig):
    kind: str = "auto"
    output_scale: float = 0.01
    event_driven: bool | None = None  # default: True for spiking networks
    max_polynomial_features: int = 4  # more features than this: an MLP
    hidden: list[int] = field(default_factory=lambda: [16])  # the MLP's, when one is picked

    positive: ClassVar[tuple[str, ...]] = ("output_scale", "max_polynomial_features", "hidden")


def pick(inputs: tuple[str, ...], event_driven: bool, max_polynomial_features: int = 4) -> tuple[str, dict]:
    """``(kind, fields)`` of the student ``auto`` picks for these inputs."""
    features = [n for n in inputs if not (event_driven and n in BINARY)]
    if len(features) <= min(3, max_polynomial_features):
        return "polynomial", {"degree": 3}
    if len(features) <= max_polynomial_features:
        return "polynomial", {"degree": 2}
    return "mlp", {}


@RULES.register("auto")
class AutoRule(Rule):
    """Not a rule of its own: :meth:`from_config` returns the polynomial or MLP it picks."""

    Config: ClassVar[type] = AutoConfig

    @classmethod
    def from_config(cls, cfg: AutoConfig, *, inputs, timescales, spiking, probe=None) -> Rule:
        event = spiking if cfg.event_driven is None else bool(cfg.event_driven)
        kind, extra = pick(tuple(inputs), event, cfg.max_polynomial_features)
        common = dict(inputs=tuple(inputs), timescales=tuple(timescales.items()), output_scale=cfg.output_scale,
                      event_driven=event, learn_timescales=_tuples(cfg.learn_timescales), traces=cfg.traces)
        if kind == "polynomial":
            rule = PolynomialRule(label=PolynomialRule.default_label, **common, **extra)
        else:
            rule = MLPRule(label=MLPRule.default_label, hidden=tuple(cfg.hidden), **common)
        return rule.normalized(probe)


__all__ = ["AutoConfig", "AutoRule", "pick"]
