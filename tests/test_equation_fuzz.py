"""The equation parser under fuzzing (issue 17): random strings parse or raise a clear
:class:`EquationError`, never anything else; random valid expressions round-trip through
sympy; long sums and deep nesting up to the stated sizes parse, beyond them a clear error."""

from __future__ import annotations

import string

import pytest
import sympy
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from discover.equations import MAX_DEPTH, MAX_LENGTH, EquationError, parse_equation
from discover.vocabulary import SYMBOLS

NAMES = ["x", "y", "w", "s_pre", "s_post", "tr_pre", "tr_post", "m"]
ALPHABET = string.ascii_letters + string.digits + "+-*/^().,_ =[]{}'\"\\:;!@#$%&|<>?~`\u0445\u00d7\u2212"

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.text(alphabet=ALPHABET, max_size=60))
def test_random_text_parses_or_is_a_clear_error(text):
    try:
        expr = parse_equation(text)
    except EquationError as e:
        msg = str(e)
        assert msg.startswith("cannot use equation") or "not ASCII" in msg or "empty" in msg, msg
        return
    assert isinstance(expr, sympy.Basic)


@FAST
@given(st.binary(max_size=40))
def test_random_bytes_decoded_any_way_are_a_clear_error_or_parse(data):
    text = data.decode("utf-8", errors="replace")
    try:
        parse_equation(text)
    except EquationError:
        pass


def _expressions():
    leaf = st.one_of(st.sampled_from(NAMES),
                     st.integers(0, 99).map(str),
                     st.floats(0.001, 100, allow_nan=False).map(lambda v: f"{v:.4g}"))

    def grow(inner):
        binary = st.tuples(inner, st.sampled_from(["+", "-", "*"]), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})")
        power = st.tuples(inner, st.integers(1, 3)).map(lambda t: f"({t[0]})**{t[1]}")
        call = st.tuples(st.sampled_from(["tanh", "exp", "abs", "sigmoid"]), inner).map(lambda t: f"{t[0]}({t[1]}/10)")
        neg = inner.map(lambda e: f"-({e})")
        return st.one_of(binary, power, call, neg)

    return st.recursive(leaf, grow, max_leaves=8)


def same(a: sympy.Expr, b: sympy.Expr) -> bool:
    """Equal as functions: at three random points of the vocabulary, to 1e-9 relative."""
    import random

    rng = random.Random(0)
    for _ in range(3):
        point = {SYMBOLS[n]: rng.uniform(0.1, 1.0) for n in NAMES}
        va, vb = complex(a.evalf(30, subs=point)), complex(b.evalf(30, subs=point))
        if abs(va - vb) > 1e-9 * max(1.0, abs(va)):
            return False
    return True


@FAST
@given(_expressions())
def test_valid_expressions_round_trip_through_sympy(text):
    """What parses, printed by sympy and parsed again, is the same function; and it is the
    function sympy's own (evaluating) reader makes of the text."""
    try:
        expr = parse_equation(text)
    except EquationError as e:  # exp(100): refused as a float32 overflow, rightly
        assert "overflows float32" in str(e), e
        assume(False)
    again = parse_equation(str(expr).replace("Abs(", "abs("))
    assert same(expr, again), (text, expr, again)
    reference = sympy.sympify(text.replace("sigmoid", "_sig"),
                              locals={**SYMBOLS, "_sig": lambda z: 1 / (1 + sympy.exp(-z)), "abs": sympy.Abs})
    assert same(expr, reference), (text, expr, reference)


def test_a_1000_term_sum_parses_without_recursion():
    text = " + ".join(f"{i}*x*y*w" for i in range(1, 1001))
    assert len(text) < MAX_LENGTH
    assert parse_equation(text) == 500500 * SYMBOLS["x"] * SYMBOLS["y"] * SYMBOLS["w"]
    product = "*".join(["x"] * 2000)  # a long product: flat too
    assert parse_equation(product) == SYMBOLS["x"] ** 2000


def test_nesting_up_to_the_stated_depth_parses_and_beyond_is_a_clear_error():
    ok = "(" * MAX_DEPTH + "x*y" + ")" * MAX_DEPTH
    assert parse_equation(ok) == SYMBOLS["x"] * SYMBOLS["y"]
    deep = "(" * (MAX_DEPTH + 1) + "x*y" + ")" * (MAX_DEPTH + 1)
    with pytest.raises(EquationError, match=f"nested {MAX_DEPTH + 1} deep"):
        parse_equation(deep)
    with pytest.raises(EquationError, match="too long"):
        parse_equation("x + " * (MAX_LENGTH // 4) + "x")
    with pytest.raises(EquationError, match="nested too deeply|nested"):
        parse_equation("-" * 5000 + "x")


@pytest.mark.parametrize("text,fragment", [
    ("\u0445*y", "CYRILLIC SMALL LETTER HA"),
    ("x\u00d7y", "MULTIPLICATION SIGN"),
    ("x \u2212 y", "MINUS SIGN"),
    ("0.01*x*y*exp(1000)", "overflows float32"),
    ("1e39*x", "overflows float32"),
])
def test_look_alikes_and_overflowing_constants_are_named(text, fragment):
    with pytest.raises(EquationError, match=fragment):
        parse_equation(text)
