"""One rule per plastic synapse type: :class:`RuleSet`.

A network with several plastic synapse types (``rate_lateral``: feed-forward ``ff`` and
lateral ``lat``; an E/I network: ``ee``, ``ie``) gives every synapse of a type the same
rule, and each type its own: its own parameterization, inputs and time constants
(``[rule.<type>]`` over the shared ``[rule]``). The network asks :func:`rule_for` for the
rule of each type; a plain rule (a canonical or distilled equation) serves every type.

Parameters: ``{"core": {type: core}, "log_tau": {type: log_tau}}``, so that an
evolution strategy searches the cores (:func:`discover.optimizers.searched`) and a
gradient reaches each type's learned time constants through its own rule's ``tau``.

Example:
  >>> from discover.rules import canonical_rule
  >>> rs = RuleSet.of({"ff": canonical_rule("oja"), "lat": canonical_rule("foldiak")})
  >>> params = rs.init(jax.random.key(0))
  >>> rule, p = rs.part(params, "lat")
  >>> rule.label
  'foldiak'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import jax
import numpy as np

from .base import Rule


@dataclass(frozen=True)
class RuleSet(Rule):
    """Not a ``[rule] kind`` (a config composes one from ``[rule.<type>]``); ``rule.json``
    names it ``"ruleset"``, which :func:`discover.build.rule_from_spec` knows."""

    rules: tuple = ()  # ((synapse type, Rule), ...), in the network's order

    default_label: ClassVar[str] = "ruleset"

    @property
    def kind(self) -> str:
        return "ruleset"

    @classmethod
    def of(cls, rules: dict, label: str = "ruleset") -> "RuleSet":
        inputs = tuple(dict.fromkeys(n for r in rules.values() for n in r.inputs))
        return cls(inputs=inputs, timescales=(), label=label, rules=tuple(rules.items()))

    def __post_init__(self):
        super().__post_init__()
        if not self.rules:
            raise ValueError("a RuleSet needs at least one (synapse type, rule) pair")
        bad = [t for t, r in self.rules if not isinstance(r, Rule) or isinstance(r, RuleSet)]
        if bad:
            raise ValueError(f"RuleSet: the rule of synapse type {bad[0]!r} must be a plain rule (not a RuleSet)")

    @property
    def types(self) -> tuple[str, ...]:
        return tuple(t for t, _ in self.rules)

    def rule(self, synapse: str) -> Rule:
        for t, r in self.rules:
            if t == synapse:
                return r
        raise KeyError(f"this rule set has no rule for synapse type {synapse!r}; it has {', '.join(self.types)}")

    def part(self, params: dict, synapse: str) -> tuple[Rule, dict]:
        """The rule of one synapse type and its parameters."""
        return self.rule(synapse), {"core": params["core"][synapse], "log_tau": params["log_tau"][synapse]}

    def replace(self, params: dict, synapse: str, rule: Rule, rparams: dict) -> tuple["RuleSet", dict]:
        """This set with ``synapse``'s rule (and parameters) replaced: a distilled equation
        run beside the other types' neural rules."""
        self.rule(synapse)  # a KeyError naming the types, for a type this set lacks
        rules = {t: (rule if t == synapse else r) for t, r in self.rules}
        new = {"core": {**params["core"], synapse: rparams["core"]},
               "log_tau": {**params["log_tau"], synapse: rparams["log_tau"]}}
        return RuleSet.of(rules, self.label), new

    # -- parameters ---------------------------------------------------------------------
    def init(self, key):
        parts = {t: r.init(jax.random.fold_in(key, i)) for i, (t, r) in enumerate(self.rules)}
        return {"core": {t: p["core"] for t, p in parts.items()},
                "log_tau": {t: p["log_tau"] for t, p in parts.items()}}

    def tau(self, params):  # each type's rule has its own: see part()
        return {}

    @property
    def used_timescales(self):
        return ()

    @property
    def learned_timescales(self):
        # each type's learned time constants get their gradient through its own rule; an
        # evolution strategy searches the cores only
        return ()

    @property
    def output_scale(self) -> float:
        """The root mean square of the types' output scales (the dw penalty's unit)."""
        scales = [float(getattr(r, "output_scale", 1.0)) for _, r in self.rules]
        return float(np.sqrt(np.mean(np.square(scales))))

    def __call__(self, params, local):
        raise TypeError(f"a RuleSet holds one rule per synapse type ({', '.join(self.types)}); a network applies "
                        "each through rule_for(rule, params, type)")

    # -- specs -------------------------------------------------------------------------
    def to_spec(self) -> dict:
        return {"kind": self.kind, "label": self.label, "rules": {t: r.to_spec() for t, r in self.rules}}

    @classmethod
    def from_spec(cls, spec: dict) -> "RuleSet":
        from ..build import rule_from_spec

        rules = spec.get("rules")
        if not isinstance(rules, dict) or not rules:
            raise ValueError("a ruleset spec needs a table 'rules' of synapse type -> rule")
        return cls.of({t: rule_from_spec(s) for t, s in rules.items()}, spec.get("label", "ruleset"))


def rule_for(rule: Rule, params: dict, synapse: str) -> tuple[Rule, dict]:
    """The rule and parameters that synapses of type ``synapse`` run: their part of a
    :class:`RuleSet`, or ``rule`` itself (one rule for every type)."""
    if isinstance(rule, RuleSet):
        return rule.part(params, synapse)
    return rule, params


__all__ = ["RuleSet", "rule_for"]
