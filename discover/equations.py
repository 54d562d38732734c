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

from .suggest import did_you_mean, non_ascii
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

CONSTANTS = {"E": sympy.E, "pi": sympy.pi}  # unless a variable or parameter has the name

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


MAX_LENGTH = 20_000  # characters of an equation string (a 1,000-term sum is about 9,000)
MAX_DEPTH = 100  # nesting of parentheses and function calls (sums and products are flat)
FLOAT32_MAX = 3.4028234663852886e38  # rules run in float32


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
      EquationError: on a syntax error, an unknown symbol (with the nearest valid name, and
        non-ASCII look-alikes named), an unsupported construct (attribute access,
        subscripts, keyword arguments, calls to anything that is not one of
        :data:`FUNCTIONS`), with the column of the problem; on a text longer than
        :data:`MAX_LENGTH` characters or nested deeper than :data:`MAX_DEPTH`; on a
        constant that is not finite in float32 (e.g. ``exp(1000)``). Sums and products
        of any length up to :data:`MAX_LENGTH` parse (the tree is walked without recursion).
    """
    if not isinstance(text, str) or not text.strip():
        raise EquationError(f"cannot use equation {text!r}: it is empty; write e.g. 'x*y - y**2*w'")
    if len(text) > MAX_LENGTH:
        raise EquationError(f"cannot use equation {text[:40]!r}... : it is too long ({len(text):,} characters; at "
                            f"most {MAX_LENGTH:,}); collect like terms or write it with parameters")
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
    depth = _nesting(text)
    if depth > MAX_DEPTH:
        raise EquationError(f"cannot use equation {text[:40]!r}...: it is nested {depth} deep (parentheses and "
                            f"calls; at most {MAX_DEPTH}); remove the redundant parentheses")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as e:
        col = (e.offset or 1) - 1
        bad = non_ascii(text) if not text.isascii() else ""
        raise EquationError(
            f"cannot use equation {text!r}: syntax error ({e.msg}).{bad}\n    {text}\n    {' ' * col}^ "
            f"(column {col + 1})"
        ) from None
    except (RecursionError, MemoryError):
        raise EquationError(f"cannot use equation {text[:40]!r}...: it is nested too deeply to parse; "
                            "remove redundant parentheses or signs") from None

    def leaf(node: ast.AST) -> sympy.Expr:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                raise _fail(text, node, f"only numbers may appear as constants, not {node.value!r}")
            return sympy.Integer(node.value) if isinstance(node.value, int) else sympy.Float(node.value)
        if node.id in allowed:
            return allowed[node.id]
        if node.id in CONSTANTS:  # as sympy prints them (exp(1) is "E")
            return CONSTANTS[node.id]
        if node.id in FUNCTIONS:
            raise _fail(text, node, f"{node.id} is a function; call it as {node.id}(...)")
        known = ", ".join(variables)
        extra = f"; declared parameters: {', '.join(params)}" if params else ""
        raise _fail(
            text,
            node,
            f"unknown symbol {node.id!r}.{did_you_mean(node.id, list(allowed), cutoff=0.8)} Use the vocabulary "
            f"({known}){extra}, or declare it as a parameter (e.g. under [task.teacher.params])",
        )

    def children(node: ast.AST) -> list[ast.AST]:
        """The operands of ``node``, after checking that it is allowed."""
        if isinstance(node, ast.Expression):
            return [node.body]
        if isinstance(node, (ast.Constant, ast.Name)):
            return []
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return [node.left, node.right]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            return [node.operand]
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else None
            if name not in FUNCTIONS:
                shown = ast.unparse(node.func)
                raise _fail(
                    text,
                    node,
                    f"calling {shown}() is not allowed; the functions are {', '.join(FUNCTIONS)}."
                    + (did_you_mean(name, FUNCTIONS) if name else ""),
                )
            if node.keywords:
                raise _fail(text, node, f"{name}() takes no keyword arguments")
            n_args = 2 if name in ("min", "max") else 1
            if len(node.args) != n_args:
                raise _fail(text, node, f"{name}() takes {n_args} argument(s), got {len(node.args)}")
            return list(node.args)
        raise _fail(text, node, f"{type(node).__name__} is not allowed in an equation; use numbers, "
                    "symbols, + - * / ** and the functions " + ", ".join(FUNCTIONS))

    def combine(node: ast.AST, args: list[sympy.Expr]) -> sympy.Expr:
        if isinstance(node, ast.Expression):
            return args[0]
        if isinstance(node, ast.BinOp):
            return _BINOPS[type(node.op)](*args)
        if isinstance(node, ast.UnaryOp):
            return -args[0] if isinstance(node.op, ast.USub) else args[0]
        return FUNCTIONS[node.func.id](*args)

    # post-order walk with an explicit stack: a 1,000-term sum is a left spine 1,000 deep
    values: list[sympy.Expr] = []
    stack: list[tuple[ast.AST, int | None]] = [(tree, None)]  # (node, operand count once expanded)
    while stack:
        node, n = stack.pop()
        if isinstance(node, (ast.Constant, ast.Name)):
            values.append(leaf(node))
            continue
        if n is None:
            kids = children(node)
            stack.append((node, len(kids)))
            stack.extend((k, None) for k in reversed(kids))
            continue
        args = values[len(values) - n:]
        del values[len(values) - n:]
        values.append(combine(node, args))
    expr = values[0]
    if expr.has(sympy.zoo, sympy.oo, -sympy.oo, sympy.nan):
        raise EquationError(f"cannot use equation {text!r}: it is not finite (it divides by zero or "
                            "contains an infinity); fix the constant that makes it so")
    for sub in sympy.preorder_traversal(expr):
        if sub.is_number and not sub.is_Integer or (sub.is_Integer and abs(int(sub)) > FLOAT32_MAX):
            try:
                value = complex(sympy.N(sub, 20))
            except (TypeError, ValueError, OverflowError):
                continue
            if abs(value) > FLOAT32_MAX:
                raise EquationError(
                    f"cannot use equation {text!r}: its constant {sub} = {sympy.N(sub, 4)} overflows float32 "
                    f"(the largest number a rule computes with is {FLOAT32_MAX:.3g}), so every weight change "
                    "would be infinite; use a smaller constant")
    return expr


def _nesting(text: str) -> int:
    """The deepest nesting of parentheses in ``text`` (calls included)."""
    depth = best = 0
    for ch in text:
        if ch == "(":
            depth += 1
            best = max(best, depth)
        elif ch == ")":
            depth -= 1
    return best


def free_parameters(expr: sympy.Expr, variables: Iterable[str] = NAMES) -> tuple[str, ...]:
    """Names of the symbols in ``expr`` that are not vocabulary variables, sorted."""
    variables = set(variables)
    return tuple(sorted(s.name for s in expr.free_symbols if s.name not in variables))


def used_variables(expr: sympy.Expr) -> tuple[str, ...]:
    """Vocabulary variables used by ``expr``, in vocabulary order."""
    names = {s.name for s in expr.free_symbols}
    return tuple(n for n in NAMES if n in names)
