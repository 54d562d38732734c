"""Polynomial rules: monomials of the inputs with learnable coefficients.

The parameterization of Confavreux et al. 2020 (NeurIPS, "A meta-learning approach to
(re)discover plasticity rules that carve a desired function into a neural network") and
Mehta et al. 2024; a baseline and a sanity check for the MLP. ``s**2 == s`` is built in.

``event_driven`` (spiking networks) gives the event form of DESIGN.md section 3,

    dw = s_post * P(z) + s_pre * Q(z),

with ``P``, ``Q`` polynomials of degree ``<= degree`` (constant included) over the
non-spike inputs ``z`` (traces, ``w``). It spends no parameters on the ~99 % of time steps
without a spike and cannot represent a rule that changes weights between spikes, which
is what pair and triplet STDP look like; a full polynomial of degree 3 over seven spiking
variables has 119 terms, mostly products of rare events, and does not meta-train stably.

``scales`` (one per non-spike input) make the monomials O(1): the rule evaluates the
monomials of ``z / scale`` (a slow trace at 50 Hz is ~5, its square ~30). The printed
equation (:meth:`as_expr`) is in the original variables. A rule applied every step to
inputs far from 0 (membrane potentials in mV) takes ``normalize = true``: monomials of
``(z - shift) / scale``, a constant term included, the same polynomials reparameterized.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import jax.numpy as jnp
import numpy as np
import sympy

from ..config import ConfigError, RuleConfig
from ..monomials import monomial_exponents, monomial_exprs, monomial_terms, polynomial
from ..registry import RULES
from ..vocabulary import SYMBOLS, VARIABLES
from .base import EventDriven, Rule, tidy


@dataclass(frozen=True)
class PolynomialConfig(RuleConfig):
    kind: str = "polynomial"
    degree: int = 3
    output_scale: float = 0.01
    event_driven: bool | None = None  # default: True for spiking networks
    # input normalization from the task's episodes; None: event-driven rules only (z / rms z).
    # True for a rule applied every step: (z - mean) / sd, with a constant term (inputs far
    # from 0, such as membrane potentials in mV); False: raw inputs
    normalize: bool | None = None
    # where the search starts: an equation of the rule's monomials (e.g. "-0.1*e_post*x", the
    # pseudo-gradient); "" starts at 0 (no plasticity)
    start: str = ""

    positive: ClassVar[tuple[str, ...]] = ("degree", "output_scale")

    def check(self, cfg):
        super().check(cfg)
        if self.start:
            from ..equations import EquationError

            try:
                init_coefficients(self.start, tuple(self.inputs or ()) or None, self.degree)
            except (EquationError, ValueError) as e:
                raise ConfigError(f"[rule] start: {e.args[0] if e.args else e}") from None


@RULES.register("polynomial")
@dataclass(frozen=True)
class PolynomialRule(EventDriven, Rule):
    degree: int = 3
    output_scale: float = 0.01
    event_driven: bool = False
    scales: tuple[float, ...] = ()  # per feature; () = all 1
    normalize: bool | None = None  # None: event-driven rules only
    shifts: tuple[float, ...] = ()  # per feature, subtracted before scaling (every-step rules); () = none
    start: str = ""  # the starting rule, an equation of the monomials ("" = 0)

    Config: ClassVar[type] = PolynomialConfig
    default_label: ClassVar[str] = "polynomial"

    def normalized(self, probe):
        """Monomials of normalized inputs where the episodes visit them (so that Adam's steps
        fit all terms): event-driven, ``z / rms(z)``; applied every step (``normalize =
        True``), ``(z - mean) / sd`` with a constant term, variables of one unit (the
        membrane potentials ``v_post``, ``u_target``) sharing a pooled mean and sd, so that
        their difference is a difference of normalized values. The equation is in raw ``z``."""
        on = self.event_driven if self.normalize is None else self.normalize
        if probe is None or not on:
            return self
        stats = probe(self)
        if self.event_driven:
            return replace(self, scales=tuple(tidy(float(np.hypot(m, s))) or 1.0 for m, s in stats))
        stats = [list(ms) for ms in stats]
        groups = {}
        for i, n in enumerate(self.features):
            if VARIABLES[n].unit:
                groups.setdefault(VARIABLES[n].unit, []).append(i)
        for idx in groups.values():  # one shift and scale per unit: z1 - z2 stays a difference
            means = np.array([stats[i][0] for i in idx])
            sd = float(np.sqrt(np.mean([stats[i][1] ** 2 for i in idx]) + means.var()))
            for i in idx:
                stats[i] = [float(means.mean()), sd]
        return replace(self, shifts=tuple(tidy(float(m)) for m, _ in stats),
                       scales=tuple(tidy(float(s)) or 1.0 for _, s in stats))

    @property
    def exponents(self) -> np.ndarray:
        return monomial_exponents(self.features, self.degree, include_constant=self.event_driven or bool(self.shifts))

    def _shifts(self) -> np.ndarray:
        s = np.asarray(self.shifts or (0.0,) * len(self.features), np.float64)
        if s.shape != (len(self.features),):
            raise ValueError(f"shifts {self.shifts} must be one number per feature {self.features}")
        return s

    def _scales(self) -> np.ndarray:
        s = np.asarray(self.scales or (1.0,) * len(self.features), np.float64)
        if s.shape != (len(self.features),) or not np.all(s > 0):
            raise ValueError(f"scales {self.scales} must be one positive number per feature {self.features}")
        return s

    def init_core(self, key):
        n = len(self.exponents)
        shape = (len(self.heads), n) if self.event_driven else (n,)
        if not self.start:
            return {"coef": jnp.zeros(shape, jnp.float32)}
        if self.event_driven or self.shifts:
            raise ValueError("a polynomial rule's start is for rules of raw inputs applied every step (event_driven = "
                             "false, normalize = false)")
        values = init_coefficients(self.start, self.features, self.degree)
        unscale = np.prod(self._scales()[None, :] ** (-self.exponents.astype(np.float64)), axis=1)
        coef = np.zeros(n)
        for row, v in values.items():
            i = next(k for k, r in enumerate(self.exponents) if tuple(int(a) for a in r) == row)
            coef[i] = v / (self.output_scale * unscale[i])
        return {"coef": jnp.asarray(coef, jnp.float32)}

    def apply(self, core, local):
        coef = core["coef"]
        if not self.event_driven:
            shape = jnp.broadcast_shapes(*[jnp.shape(local[n]) for n in self.inputs])
            vals = [(local[n] - m) / c for n, m, c in zip(self.features, self._shifts(), self._scales())]
            # products broadcast as they go: y**3 stays [post, 1]
            return jnp.broadcast_to(self.output_scale * polynomial(monomial_terms(vals, self.exponents), coef), shape)
        monos = monomial_terms([local[n] / c for n, c in zip(self.features, self._scales())], self.exponents)
        return self.output_scale * sum(local[h] * polynomial(monos, coef[i]) for i, h in enumerate(self.heads))

    def as_expr(self, params) -> sympy.Expr:
        coef = np.asarray(params["core"]["coef"], np.float64) * self.output_scale
        if self.shifts and not self.event_driven:  # monomials of (z - m) / s, expanded in z
            zs = [(sym - sympy.Float(m)) / sympy.Float(c) for sym, m, c in
                  zip(monomial_exprs(self.features, np.eye(len(self.features), dtype=int)), self._shifts(),
                      self._scales())]
            terms = [sympy.Float(k) * sympy.Mul(*[z**int(e) for z, e in zip(zs, row) if e])
                     for k, row in zip(coef, self.exponents)]
            return sympy.expand(sympy.Add(*terms))
        # monomial of z/scale = monomial of z times prod(scale**-e)
        unscale = np.prod(self._scales()[None, :] ** (-self.exponents.astype(np.float64)), axis=1)
        monos = monomial_exprs(self.features, self.exponents)
        if not self.event_driven:
            return sympy.Add(*[sympy.Float(c * u) * m for c, u, m in zip(coef, unscale, monos)])
        return sympy.Add(*[SYMBOLS[h] * sympy.Float(c * u) * m
                           for h, row in zip(self.heads, coef) for c, u, m in zip(row, unscale, monos)])


def init_coefficients(text: str, features: tuple[str, ...] | None, degree: int) -> dict[tuple[int, ...], float]:
    """``{exponents: coefficient}`` of an equation that is a polynomial of ``features`` of
    degree at most ``degree`` (a polynomial rule's starting point); a term outside that
    basis is an error naming it."""
    from ..equations import EquationError, parse_equation

    expr = sympy.expand(parse_equation(text))
    used = sorted(s.name for s in expr.free_symbols)
    feats = tuple(features) if features else tuple(used)
    extra = [n for n in used if n not in feats]
    if extra:
        raise EquationError(f"start = {text!r} uses {extra}, which are not inputs of the rule ({', '.join(feats)})")
    poly = sympy.Poly(expr, *[SYMBOLS[n] for n in feats])
    out = {}
    for mono, c in poly.terms():
        if sum(mono) == 0 or sum(mono) > degree:
            raise EquationError(f"start = {text!r} has a term of degree {sum(mono)}, outside the rule's monomials "
                                f"(degree 1 to {degree})")
        out[tuple(int(a) for a in mono)] = float(c)
    return out
