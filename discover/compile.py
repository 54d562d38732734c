"""Compile sympy expressions to JAX functions by walking the expression tree.

A small, explicit translator (in the spirit of ``sympy2jax``) instead of
``sympy.lambdify``, which generates Python source and ``exec``s it. The result is a pure
function of a mapping ``name -> array`` that works under ``jit``, ``vmap`` and ``grad``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import sympy

_FUNCS: dict[type, Callable] = {
    sympy.exp: jnp.exp,
    sympy.log: jnp.log,
    sympy.tanh: jnp.tanh,
    sympy.Abs: jnp.abs,
    sympy.sin: jnp.sin,
    sympy.cos: jnp.cos,
}


def compile_expr(expr: sympy.Expr) -> Callable[[Mapping[str, jax.Array]], jax.Array]:
    """Return ``f(env)`` evaluating ``expr`` with symbols looked up by name in ``env``."""

    def ev(e: sympy.Basic, env):
        if e.is_Symbol:
            return env[e.name]
        if e.is_Integer:
            return int(e)
        if e.is_Rational:
            return float(e)
        if e.is_Number:
            return float(e)
        if e is sympy.pi:
            return jnp.pi
        if e.is_Add:
            out = ev(e.args[0], env)
            for a in e.args[1:]:
                out = out + ev(a, env)
            return out
        if e.is_Mul:
            out = ev(e.args[0], env)
            for a in e.args[1:]:
                out = out * ev(a, env)
            return out
        if e.is_Pow:
            base, exp = e.args
            if exp.is_Integer:
                k = int(exp)
                b = ev(base, env)
                if k == 2:
                    return b * b
                return b**k if k > 0 else 1.0 / (b ** (-k))
            if exp == sympy.Rational(1, 2):
                return jnp.sqrt(ev(base, env))
            return ev(base, env) ** ev(exp, env)
        if isinstance(e, sympy.Min):
            return functools.reduce(jnp.minimum, [ev(a, env) for a in e.args])
        if isinstance(e, sympy.Max):
            return functools.reduce(jnp.maximum, [ev(a, env) for a in e.args])
        if e.is_NumberSymbol:  # E, pi, ...
            return float(e)
        fn = _FUNCS.get(type(e)) or _FUNCS.get(e.func)
        if fn is not None:
            return fn(ev(e.args[0], env))
        raise TypeError(f"cannot compile {e} ({type(e).__name__}) to JAX")

    expr = sympy.sympify(expr)
    ev(expr, _Probe())  # fail now, not inside a jitted function, on unsupported nodes

    def f(env: Mapping[str, jax.Array]) -> jax.Array:
        return ev(expr, env)

    return f


class _Probe(dict):
    def __missing__(self, key):
        return 1.0
