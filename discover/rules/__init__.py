"""Plasticity rules: one interface, three parameterizations (symbolic, MLP, polynomial)."""

from .base import DEFAULT_TIMESCALES, Rule

from .mlp import MLPRule  # isort: skip  (registration order = the order `plasticity list` shows)
from .polynomial import PolynomialRule  # isort: skip
from .symbolic import SymbolicRule  # isort: skip
from .auto import AutoRule  # isort: skip
from .ruleset import RuleSet, rule_for  # isort: skip
from .canonical import (  # isort: skip
    CANONICAL, PFISTER_GERSTNER, canonical_rule, make_symbolic_rule, pfister_gerstner, pfister_gerstner_free)

__all__ = ["Rule", "SymbolicRule", "MLPRule", "PolynomialRule", "AutoRule", "RuleSet", "rule_for", "CANONICAL",
           "canonical_rule",
           "make_symbolic_rule", "DEFAULT_TIMESCALES", "PFISTER_GERSTNER", "pfister_gerstner", "pfister_gerstner_free"]
