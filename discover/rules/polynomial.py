"""Polynomial rules: monomials of the inputs with learnable coefficients.

The parameterization of Confavreux et al. 2020 (NeurIPS, "A meta-learning approach to
(re)discover plasticity rules that carve a desired function into a neural network") and
Mehta et al. 2024; a baseline and a sanity check for the MLP. ``s**2 == s`` is built in.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
import sympy

from ..monomials import evaluate_monomials, monomial_exponents, monomial_exprs
from .base import Rule


@dataclass(frozen=True)
class PolynomialRule(Rule):
    degree: int = 3
    output_scale: float = 0.01

    @property
    def exponents(self) -> np.ndarray:
        return monomial_exponents(self.inputs, self.degree)

    def init_core(self, key):
        return {"coef": jnp.zeros((len(self.exponents),), jnp.float32)}

    def apply(self, core, local):
        shape = jnp.broadcast_shapes(*[jnp.shape(local[n]) for n in self.inputs])
        vals = jnp.stack([jnp.broadcast_to(local[n], shape) for n in self.inputs], axis=-1)
        feats = evaluate_monomials(vals, self.exponents, xp=jnp)
        return self.output_scale * feats @ core["coef"]

    def as_expr(self, params) -> sympy.Expr:
        coef = np.asarray(params["core"]["coef"]) * self.output_scale
        return sympy.Add(*[sympy.Float(c) * m for c, m in zip(coef, monomial_exprs(self.inputs, self.exponents))])
