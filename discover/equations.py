"""A restricted parser from equation strings to sympy expressions.

Users write rules as text (``"eta*(x*y - y**2*w)"``) in configs and on the command line.
Such text is never passed to ``eval`` (nor to ``sympy.sympify``, which evaluates): it is
parsed by :func:`ast.parse`, which only builds a syntax tree, and the tree is walked with
a whitelist of node types — numbers, names from the vocabulary or declared parameters,
``+ - * / **`` (``^`` is read as power, as Operon and PySR print it), and calls to a
few named math functions. Everything else is an :class:`EquationError` that points at the
offending column, in the spirit of Brian2's equation errors.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable

import sympy

from .vocabulary import NAMES, SYMBOLS


class EquationError(ValueError):
    """An equation string that cannot be used; the message says where and how to fix it."""


FUNCTIONS = {
    "exp": sympy.exp,
    "log": sympy.log,
    "sqrt": sympy.sqrt,
    "tanh": sympy.tanh,
    "abs": sympy.Abs,
    "sigmoid": lambda z: 1 / (1 + sympy.exp(-z)),
    "min": sympy.Min,
    "max": sympy.Max,
}

_BINOPS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Pow: lambda a, b: a**b,
}


def _fail(text: str, node: ast.AST | None, what: str) -> EquationError:
    col = getattr(node, "col_offset", None)
    where = ""
    if col is not None:
        where = f"\n    {text}\n    {' ' * col}^ (column {col + 1})"
    return EquationError(f"cannot use equation {text!r}: {what}{where}")


def parse_equation(
    text: str,
    params: Iterable[str] = (),
    variables: Iterable[str] = NAMES,
) -> sympy.Expr:
    """Parse ``text`` into a sympy expression without evaluating any Python.

    Args:
      text: the equation, e.g. ``"A_plus*tr_pre*s_post - A_minus*tr_post*s_pre"``.
      params: names of free parameters the equation may use besides the vocabulary.
      variables: the vocabulary names allowed (default: all of DESIGN.md section 2).

    Returns:
      A sympy expression over real symbols named as in the text.

    Raises:
      EquationError: on a syntax error, an unknown symbol, an unsupported construct
        (attribute access, subscripts, keyword arguments, calls to anything that is not
        one of :data:`FUNCTIONS`), with the column of the problem.
    """
    if not isinstance(text, str) or not text.strip():
        raise EquationError(f"cannot use equation {text!r}: it is empty; write e.g. 'x*y - y**2*w'")
    # '^' is power as Operon and PySR print it; Python would read it as xor, with the wrong
    # precedence, so rewrite it before parsing (columns below refer to this text).
    text = text.strip().replace("^", "**")
    variables = tuple(variables)
    params = tuple(params)
    allowed = {n: SYMBOLS[n] if n in SYMBOLS else sympy.Symbol(n, real=True) for n in variables}
    for p in params:
        if p in FUNCTIONS:
            raise EquationError(f"parameter name {p!r} clashes with the function {p}(); rename it")
        allowed.setdefault(p, sympy.Symbol(p, real=True))
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as e:
        col = (e.offset or 1) - 1
        raise EquationError(
            f"cannot use equation {text!r}: syntax error ({e.msg})\n    {text}\n    {' ' * col}^ (column {col + 1})"
        ) from None

    def walk(node: ast.AST) -> sympy.Expr:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                raise _fail(text, node, f"only numbers may appear as constants, not {node.value!r}")
            return sympy.Integer(node.value) if isinstance(node.value, int) else sympy.Float(node.value)
        if isinstance(node, ast.Name):
            if node.id in allowed:
                return allowed[node.id]
            if node.id in FUNCTIONS:
                raise _fail(text, node, f"{node.id} is a function; call it as {node.id}(...)")
            known = ", ".join(variables)
            extra = f"; declared parameters: {', '.join(params)}" if params else ""
            raise _fail(
                text,
                node,
                f"unknown symbol {node.id!r}. Use the vocabulary ({known}){extra}, "
                "or declare it as a parameter (e.g. under [task.teacher.params])",
            )
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = walk(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else None
            if name not in FUNCTIONS:
                shown = ast.unparse(node.func)
                raise _fail(
                    text,
                    node,
                    f"calling {shown}() is not allowed; the functions are {', '.join(FUNCTIONS)}",
                )
            if node.keywords:
                raise _fail(text, node, f"{name}() takes no keyword arguments")
            n_args = 2 if name in ("min", "max") else 1
            if len(node.args) != n_args:
                raise _fail(text, node, f"{name}() takes {n_args} argument(s), got {len(node.args)}")
            return FUNCTIONS[name](*[walk(a) for a in node.args])
        raise _fail(text, node, f"{type(node).__name__} is not allowed in an equation; use numbers, "
                    "symbols, + - * / ** and the functions " + ", ".join(FUNCTIONS))

    expr = walk(tree)
    if expr.has(sympy.zoo, sympy.oo, -sympy.oo, sympy.nan):
        raise EquationError(f"cannot use equation {text!r}: it is not finite (it divides by zero or "
                            "contains an infinity); fix the constant that makes it so")
    return expr


def free_parameters(expr: sympy.Expr, variables: Iterable[str] = NAMES) -> tuple[str, ...]:
    """Names of the symbols in ``expr`` that are not vocabulary variables, sorted."""
    variables = set(variables)
    return tuple(sorted(s.name for s in expr.free_symbols if s.name not in variables))


def used_variables(expr: sympy.Expr) -> tuple[str, ...]:
    """Vocabulary variables used by ``expr``, in vocabulary order."""
    names = {s.name for s in expr.free_symbols}
    return tuple(n for n in NAMES if n in names)
