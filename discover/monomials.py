"""Monomial libraries over the vocabulary, aware that spike indicators are 0/1.

Shared by the polynomial rule (discover) and the sparse-regression backend (distill), so
both count and name terms the same way.
"""

from __future__ import annotations

import itertools

import numpy as np
import sympy

from .vocabulary import BINARY, SYMBOLS


def monomial_exponents(names: tuple[str, ...], degree: int, include_constant: bool = False) -> np.ndarray:
    """All exponent vectors of total degree ``1..degree`` (``0..`` with a constant).

    Spike indicators (``s_pre``, ``s_post``) get exponent at most 1, since ``s**2 == s``.
    Rows are ordered by total degree, then lexicographically.
    """
    caps = [1 if n in BINARY else degree for n in names]
    rows = []
    for d in range(0 if include_constant else 1, degree + 1):
        for combo in itertools.combinations_with_replacement(range(len(names)), d):
            e = np.bincount(np.asarray(combo, dtype=int), minlength=len(names)) if combo else np.zeros(len(names), int)
            if all(e[i] <= caps[i] for i in range(len(names))):
                rows.append(e)
    return np.asarray(rows, dtype=int).reshape(-1, len(names))


def monomial_exprs(names: tuple[str, ...], exponents: np.ndarray) -> list[sympy.Expr]:
    """sympy expressions of the monomials given by ``exponents`` rows."""
    syms = [SYMBOLS[n] if n in SYMBOLS else sympy.Symbol(n, real=True) for n in names]
    return [sympy.Mul(*[s**int(k) for s, k in zip(syms, row) if k]) for row in exponents]


def evaluate_monomials(values, exponents, xp=np):
    """Evaluate monomials: ``values[..., n_vars]`` -> ``[..., n_terms]`` (numpy or jax)."""
    values = xp.asarray(values)
    out = []
    for row in exponents:
        term = xp.ones(values.shape[:-1], dtype=values.dtype)
        for i, k in enumerate(row):
            for _ in range(int(k)):
                term = term * values[..., i]
        out.append(term)
    return xp.stack(out, axis=-1)
