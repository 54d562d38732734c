"""Simplify, round and measure candidate equations, the same way for every engine.

Whatever produced a candidate (sparse regression, genetic programming, PySR), it goes
through the same steps before it is compared with the others (DESIGN.md section 7):
expand, apply ``s**k -> s`` to spike indicators, drop terms that carry less than ~1 % of
the signal, refit the remaining coefficients by least squares, and count its complexity
as the number of nodes of the sympy tree.

Expressions are evaluated on data with :func:`evaluate`, a small numpy tree walker (like
:mod:`discover.compile`, but float64 numpy and no JAX), so no generated source is ever
``exec``-ed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import sympy

from discover.vocabulary import BINARY, SYMBOLS, reduce_binary

_NP_FUNCS = {
    sympy.exp: np.exp,
    sympy.log: np.log,
    sympy.tanh: np.tanh,
    sympy.Abs: np.abs,
    sympy.sin: np.sin,
    sympy.cos: np.cos,
    sympy.sqrt: np.sqrt,
}


def symbols_for(names: Sequence[str]) -> list[sympy.Symbol]:
    """The sympy symbols of ``names``: the vocabulary's real symbols, or new real ones."""
    return [SYMBOLS[n] if n in SYMBOLS else sympy.Symbol(n, real=True) for n in names]


def evaluate(expr: sympy.Expr, X: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Evaluate ``expr`` on the rows of ``X`` (float64 numpy, no ``exec``).

    Args:
      expr: a sympy expression over (a subset of) ``names``.
      X: data, shape ``[n, len(names)]``; column ``j`` holds variable ``names[j]``.
      names: the variable name of each column.

    Returns:
      ``f(X)`` of shape ``[n]``; invalid operations give ``nan``/``inf``, not errors.

    Raises:
      ValueError: if ``expr`` uses a symbol that is not in ``names``.
      TypeError: on a node type this evaluator does not know.
    """
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    cols = {name: X[:, j] for j, name in enumerate(names)}
    missing = sorted(s.name for s in expr.free_symbols if s.name not in cols)
    if missing:
        raise ValueError(f"expression {expr} uses {missing}, which are not columns of the data "
                         f"(columns: {', '.join(names)})")

    def ev(e):
        if e.is_Symbol:
            return cols[e.name]
        if e.is_Number:
            if e.is_finite is False or e is sympy.nan:
                return np.full(n, np.nan)
            return float(e)
        if e is sympy.pi:
            return np.pi
        if e is sympy.E:
            return np.e
        if e.is_Add:
            out = ev(e.args[0])
            for a in e.args[1:]:
                out = out + ev(a)
            return out
        if e.is_Mul:
            out = ev(e.args[0])
            for a in e.args[1:]:
                out = out * ev(a)
            return out
        if e.is_Pow:
            base, ex = e.args
            b = ev(base)
            if ex.is_Integer:
                k = int(ex)
                return b**k if k >= 0 else 1.0 / (np.asarray(b, dtype=np.float64) ** (-k))
            return np.power(b, ev(ex))
        if isinstance(e, sympy.Min):
            return np.minimum(*[ev(a) for a in e.args])
        if isinstance(e, sympy.Max):
            return np.maximum(*[ev(a) for a in e.args])
        fn = _NP_FUNCS.get(e.func)
        if fn is not None:
            return fn(ev(e.args[0]))
        raise TypeError(f"cannot evaluate {e} ({type(e).__name__}) with numpy")

    with np.errstate(all="ignore"):
        out = ev(sympy.sympify(expr))
        return np.broadcast_to(np.asarray(out, dtype=np.float64), (n,)).copy()


def complexity(expr: sympy.Expr) -> int:
    r"""Complexity of an equation: the number of nodes of its sympy tree.

    .. math:: C(f) = |\mathrm{preorder}(f)|

    The same count for every engine, so fronts of different engines are comparable.
    E.g. ``0.01*x*y`` has 4 nodes (``Mul``, ``0.01``, ``x``, ``y``).

    Args:
      expr: a sympy expression.

    Returns:
      The node count, at least 1.
    """
    return len(list(sympy.preorder_traversal(sympy.sympify(expr))))


def _round_sig(v: float, sig: int) -> float:
    return float(f"{v:.{sig}g}")


def round_expr(expr: sympy.Expr, sig: int = 3) -> sympy.Expr:
    """Round every floating-point number in ``expr`` to ``sig`` significant figures.

    Integers and exact rationals are left alone. Print the result with
    ``sympy.sstr(e, full_prec=False)`` (or ``sympy.latex``) to get the short form.

    Args:
      expr: a sympy expression.
      sig: significant figures to keep, at least 1.

    Returns:
      The expression with each ``Float`` replaced by its rounded value.

    Example:
      >>> round_expr(0.0104987*x*y, 3)   # 0.0105*x*y
    """
    if sig < 1:
        raise ValueError(f"sig must be >= 1 significant figure, got {sig}")
    expr = sympy.sympify(expr)
    reps = {f: sympy.Float(_round_sig(float(f), sig)) for f in expr.atoms(sympy.Float)}
    return expr.xreplace(reps) if reps else expr


def format_equation(expr: sympy.Expr, sig: int = 4) -> str:
    """The short text of an equation (the ``equation`` column): floats to ``sig`` figures."""
    return sympy.sstr(round_expr(expr, sig), full_prec=False)


def latex_equation(expr: sympy.Expr, sig: int = 3) -> str:
    """LaTeX of an equation (the ``latex`` column): floats to ``sig`` figures."""
    return sympy.latex(round_expr(expr, sig))


def terms(expr: sympy.Expr) -> dict[sympy.Expr, float]:
    """Split an expression into its additive terms: ``{term without coefficient: coefficient}``.

    For a polynomial this is ``{monomial: coefficient}``; the constant term has key
    ``sympy.Integer(1)``. A non-polynomial term keeps its inner constants in the key
    (``0.01*x*y/(0.98*y**2 + 1)`` -> ``{x*y/(0.98*y**2 + 1): 0.01}``).

    Args:
      expr: a sympy expression (it is expanded and ``s**k -> s`` is applied first).

    Returns:
      A dict from term to float coefficient; terms with coefficient 0 are left out.

    Example:
      >>> terms(0.01*x*y - 0.01*w*y**2)   # {x*y: 0.01, w*y**2: -0.01}
    """
    expr = reduce_binary(sympy.expand(sympy.sympify(expr)))
    out: dict[sympy.Expr, float] = {}
    for t in sympy.Add.make_args(expr):
        if t == 0:
            continue
        c, basis = t.as_coeff_Mul()
        if not c.is_Number:  # defensive: as_coeff_Mul always returns a Number first
            c, basis = sympy.Integer(1), t
        out[basis] = out.get(basis, 0.0) + float(c)
    return {k: v for k, v in out.items() if v != 0.0}


def _normalize_denominator(term: sympy.Expr, syms: Sequence[sympy.Symbol]) -> sympy.Expr:
    """Scale a rational term so its denominator's constant coefficient is 1.

    ``(2*x*y)/(2 + 2*y**2)`` -> ``x*y/(y**2 + 1)``: one coefficient in front, so it can
    be refitted and compared with a canonical form.
    """
    num, den = sympy.fraction(sympy.together(term))
    if den == 1 or den.is_Number or not den.is_polynomial(*syms):
        return term
    den = sympy.expand(den)
    c0 = den.subs({s: 0 for s in syms})
    if not c0.is_Number or c0 == 0:
        return term
    return sympy.expand(num / c0) / sympy.expand(den / c0)


def _prune_denominator(basis: sympy.Expr, X: np.ndarray, names: Sequence[str], rel_tol: float,
                       sample_weight: np.ndarray | None) -> sympy.Expr:
    """Drop the terms of a polynomial denominator that carry < ``rel_tol`` of its RMS.

    ``x*y/(1 + y**2 - 0.0015*x*y)`` -> ``x*y/(1 + y**2)``. The remaining inner constants
    are kept as they are (they are not linear coefficients).
    """
    num, den = sympy.fraction(basis)
    if not den.is_Add:
        return basis
    parts = sympy.Add.make_args(den)
    den_rms = np.sqrt(_wmean(evaluate(den, X, names) ** 2, sample_weight))
    if not np.isfinite(den_rms) or den_rms == 0:
        return basis
    keep = [t for t in parts
            if t.is_Number or np.sqrt(_wmean(evaluate(t, X, names) ** 2, sample_weight)) >= rel_tol * den_rms]
    return basis if len(keep) == len(parts) else num / sympy.Add(*keep)


def scaled_lstsq(A: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least squares with the columns of ``A`` scaled to unit RMS first: terms of variables
    in other units differ by decades (an eligibility trace ~1e-7, ``w`` ~1e3), and a plain
    ``lstsq`` would cut the small columns as rank deficiency."""
    s = np.sqrt(np.mean(A**2, axis=0)) if len(A) else np.ones(A.shape[1])
    s = np.where(s > 0, s, 1.0)
    return np.linalg.lstsq(A / s, y, rcond=None)[0] / s


def _weighted_lstsq(A: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None) -> np.ndarray:
    if sample_weight is not None:
        sw = np.sqrt(np.asarray(sample_weight, dtype=np.float64))
        A, y = A * sw[:, None], y * sw
    return scaled_lstsq(A, y)


def _wmean(v: np.ndarray, sample_weight: np.ndarray | None) -> float:
    if sample_weight is None:
        return float(np.mean(v))
    return float(np.sum(sample_weight * v) / np.sum(sample_weight))


def polish(
    expr: sympy.Expr,
    X: np.ndarray,
    y: np.ndarray,
    names: Sequence[str],
    rel_tol: float = 0.01,
    sample_weight: np.ndarray | None = None,
) -> sympy.Expr:
    r"""Simplify a candidate and refit its coefficients on the data.

    Steps: ``sympy.expand``; ``s**k -> s`` for spike indicators; each rational term is
    scaled so its denominator's constant is 1, and denominator terms under ``rel_tol``
    of the denominator's RMS are dropped; then, repeatedly, the smallest term whose
    share of the signal is below ``rel_tol`` is dropped,

    .. math:: \frac{\mathrm{RMS}(c_k b_k(X))}{\mathrm{RMS}(y)} < \mathrm{rel\_tol},

    and the remaining outer coefficients :math:`c_k` are refitted by (weighted) least
    squares, :math:`\min_c \sum_i w_i (y_i - \sum_k c_k b_k(X_i))^2`. The expression is
    linear in these coefficients whatever its terms :math:`b_k` are (monomials, or
    nonlinear terms such as ``x*y/(1 + 0.98*y**2)`` whose inner constants stay fixed).

    Args:
      expr: the candidate.
      X: data, shape ``[n, len(names)]``.
      y: targets (``dw``), shape ``[n]``.
      names: the variable name of each column of ``X``.
      rel_tol: terms carrying less than this fraction of the RMS of ``y`` are dropped.
      sample_weight: optional non-negative weights, shape ``[n]``.

    Returns:
      The simplified expression (``0`` if nothing is left). If the refit is not finite
      (e.g. a term is ``inf`` on the data), the expanded expression is returned as is.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    syms = symbols_for(names)
    expr = reduce_binary(sympy.expand(sympy.sympify(expr)))
    parts = terms(expr)
    if not parts:
        return sympy.Integer(0)
    merged: dict[sympy.Expr, float] = {}
    for b, c in parts.items():
        nb = _normalize_denominator(c * b, syms)
        for b2, c2 in terms(nb).items():
            b2 = _prune_denominator(b2, X, names, rel_tol, sample_weight)
            merged[b2] = merged.get(b2, 0.0) + c2
    basis = list(merged)
    cols = np.stack([evaluate(b, X, names) for b in basis], axis=1)
    if not np.all(np.isfinite(cols)):
        return expr
    y_rms = np.sqrt(_wmean(y**2, sample_weight))
    keep = list(range(len(basis)))
    coef = np.zeros(0)
    while keep:
        sub = cols[:, keep]
        c = _weighted_lstsq(sub, y, sample_weight)
        if not np.all(np.isfinite(c)):
            return expr
        share = np.sqrt([_wmean((ck * sub[:, k]) ** 2, sample_weight) for k, ck in enumerate(c)])
        share = share / y_rms if y_rms > 0 else share
        k_min = int(np.argmin(share))
        if share[k_min] >= rel_tol:
            coef = c
            break
        keep.pop(k_min)
    if not keep:
        return sympy.Integer(0)
    return sympy.Add(*[sympy.Float(float(ck)) * basis[k] for ck, k in zip(coef, keep)])


def finite_at_spikes(expr: sympy.Expr, names: Sequence[str], X: np.ndarray | None = None) -> bool:
    """Whether ``expr`` stays finite when each spike indicator is 0 and when it is 1.

    Spike indicators (``s_pre``, ``s_post``) only take the values 0 and 1, so an
    equation such as ``x/(s_pre - 1)`` can fit the data where ``s_pre = 0`` and still be
    useless (DESIGN.md section 7: genetic programming returns such equations). Every
    combination of 0/1 for the spike indicators in ``expr`` is substituted, symbolically
    and, when ``X`` is given, on (up to 2,000 of) its rows.

    Args:
      expr: a candidate equation.
      names: the variable names of the columns of ``X``.
      X: optional data, shape ``[n, len(names)]``.

    Returns:
      ``True`` if no combination gives ``inf``/``nan`` (``zoo`` symbolically).
    """
    expr = sympy.sympify(expr)
    spikes = [s for s in expr.free_symbols if s.name in BINARY]
    if X is not None:
        X = np.asarray(X, dtype=np.float64)[:2000]
        if not np.all(np.isfinite(evaluate(expr, X, names))):
            return False
    for values in np.ndindex(*([2] * len(spikes))):
        sub = expr.xreplace({s: sympy.Integer(v) for s, v in zip(spikes, values)})
        if sub.has(sympy.zoo, sympy.oo, -sympy.oo, sympy.nan):
            return False
        if X is not None and spikes:
            Xs = X.copy()
            for s, v in zip(spikes, values):
                Xs[:, list(names).index(s.name)] = v
            if not np.all(np.isfinite(evaluate(expr, Xs, names))):
                return False
    return True
