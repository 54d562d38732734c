"""Plasticity rules: one interface, three parameterizations (symbolic, MLP, polynomial)."""

from .base import DEFAULT_TIMESCALES, Rule
from .canonical import CANONICAL, canonical_rule, make_symbolic_rule
from .mlp import MLPRule
from .polynomial import PolynomialRule
from .symbolic import SymbolicRule

__all__ = ["Rule", "SymbolicRule", "MLPRule", "PolynomialRule", "CANONICAL", "canonical_rule",
           "make_symbolic_rule", "DEFAULT_TIMESCALES"]
