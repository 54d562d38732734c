"""The restricted equation parser (``discover.equations``) and the sympy -> JAX compiler.

Parsed expressions are compared with sympy expressions built by hand; errors are checked
by message; hostile strings are checked not to execute (a sentinel file that evaluating
them would create must not exist), and parse + compile must not call ``eval``/``exec``.
"""

from __future__ import annotations

import builtins

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy

from discover.compile import compile_expr
from discover.equations import (
    FUNCTIONS,
    EquationError,
    free_parameters,
    parse_equation,
    used_variables,
)
from discover.vocabulary import NAMES, SYMBOLS

x, y, w, theta = (sympy.Symbol(n, real=True) for n in ("x", "y", "w", "theta"))
tr_pre, tr_post, s_pre, s_post = (sympy.Symbol(n, real=True) for n in ("tr_pre", "tr_post", "s_pre", "s_post"))
eta, A_plus, A_minus = (sympy.Symbol(n, real=True) for n in ("eta", "A_plus", "A_minus"))


def same(a, b) -> bool:
    return sympy.expand(a - b) == 0


# ------------------------------------------------------------------------ valid input

VALID = [
    ("x*y", (), x * y),
    ("eta*(x*y - y**2*w)", ("eta",), eta * (x * y - y**2 * w)),
    ("x*y - y^2*w", (), x * y - y**2 * w),  # ^ is power, binding tighter than * and -
    ("x*y-y^2*w", (), x * y - y**2 * w),
    ("-x**2", (), -(x**2)),
    ("-x^2 + w", (), -(x**2) + w),
    ("2^3^2*x", (), 512 * x),  # power is right-associative: 2^(3^2)
    ("A_plus*tr_pre*s_post - A_minus*tr_post*s_pre", ("A_plus", "A_minus"),
     A_plus * tr_pre * s_post - A_minus * tr_post * s_pre),
    ("1e-3*x + 0.5*w", (), sympy.Float(1e-3) * x + sympy.Float(0.5) * w),
    ("+x - (-y)", (), x + y),
    ("x/y/w", (), x / (y * w)),
    ("exp(-x/2) + tanh(y)", (), sympy.exp(-x / 2) + sympy.tanh(y)),
    ("sqrt(x) + log(y) + abs(w)", (), sympy.sqrt(x) + sympy.log(y) + sympy.Abs(w)),
    ("sigmoid(theta)", (), 1 / (1 + sympy.exp(-theta))),
    ("min(x, y) + max(w, 0)", (), sympy.Min(x, y) + sympy.Max(w, 0)),
    ("  x*y  ", (), x * y),
]


@pytest.mark.parametrize("text,params,expected", VALID, ids=[v[0].strip() for v in VALID])
def test_valid_strings_parse_to_the_expected_expression(text, params, expected):
    got = parse_equation(text, params=params)
    assert same(got, expected), (got, expected)


def test_caret_is_power_not_xor():
    got = parse_equation("x*y - y^2*w")
    # Python's xor would give (x*y - y) ^ (2*w); the parser must not.
    assert same(got, x * y - w * y**2)
    assert sympy.degree(got, y) == 2


def test_symbols_are_the_vocabulary_symbols():
    e = parse_equation("eta*x*y + tr_pre", params=["eta"])
    assert SYMBOLS["x"] in e.free_symbols and SYMBOLS["tr_pre"] in e.free_symbols
    assert all(s.is_real for s in e.free_symbols)
    assert free_parameters(e) == ("eta",)
    assert used_variables(e) == ("x", "y", "tr_pre")  # vocabulary order


def test_restricted_vocabulary():
    assert same(parse_equation("x*y", variables=("x", "y")), x * y)
    with pytest.raises(EquationError, match="unknown symbol 'w'"):
        parse_equation("x*y - w", variables=("x", "y"))


# ------------------------------------------------------------------------ errors


def test_syntax_error_names_the_column():
    with pytest.raises(EquationError) as e:
        parse_equation("x*(y - w")
    msg = str(e.value)
    assert msg.startswith("cannot use equation 'x*(y - w': syntax error")
    assert "column" in msg
    with pytest.raises(EquationError, match="syntax error"):
        parse_equation("x y")


def test_empty_equation():
    for text in ("", "   "):
        with pytest.raises(EquationError, match="it is empty"):
            parse_equation(text)


def test_unknown_symbol_names_it_and_lists_the_vocabulary():
    with pytest.raises(EquationError) as e:
        parse_equation("x*q - w")
    msg = str(e.value)
    assert "unknown symbol 'q'" in msg
    for name in NAMES:
        assert name in msg
    assert "(column 3)" in msg  # 'q' is the third character
    # declared parameters are listed too
    with pytest.raises(EquationError, match="declared parameters: eta"):
        parse_equation("eta*x*q", params=["eta"])


def test_function_used_as_a_name():
    with pytest.raises(EquationError, match="exp is a function; call it as exp"):
        parse_equation("exp*x")


def test_parameter_clashing_with_a_function():
    with pytest.raises(EquationError, match="clashes with the function exp"):
        parse_equation("exp*x", params=["exp"])


def test_wrong_number_of_arguments():
    with pytest.raises(EquationError, match=r"exp\(\) takes 1 argument\(s\), got 2"):
        parse_equation("exp(x, y)")
    with pytest.raises(EquationError, match=r"min\(\) takes 2 argument\(s\), got 1"):
        parse_equation("min(x)")


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("__import__('os').system('x')", "calling __import__('os').system() is not allowed"),
        ("open('f')", "calling open() is not allowed; the functions are " + ", ".join(FUNCTIONS)),
        ("eval('1')", "calling eval() is not allowed"),
        ("exec('x = 1')", "calling exec() is not allowed"),
        ("x.real", "Attribute is not allowed in an equation"),
        ("x.__class__", "Attribute is not allowed"),
        ("w[0]", "Subscript is not allowed"),
        ("lambda: 1", "Lambda is not allowed"),
        ("(lambda: 1)()", "is not allowed"),
        ("exp(x=1)", "exp() takes no keyword arguments"),
        ("max(x, y, key=1)", "max() takes no keyword arguments"),
        ("'abc'", "only numbers may appear as constants, not 'abc'"),
        ("x*'abc'", "only numbers may appear as constants"),
        ("x*b'abc'", "only numbers may appear as constants"),
        ("True*x", "only numbers may appear as constants, not True"),
        ("x if y else w", "IfExp is not allowed"),
        ("x < y", "Compare is not allowed"),
        ("[x, y]", "List is not allowed"),
        ("x @ w", "BinOp is not allowed"),
        ("x % y", "BinOp is not allowed"),
        ("1j*x", "only numbers may appear as constants"),
    ],
)
def test_forbidden_constructs(text, fragment):
    with pytest.raises(EquationError) as e:
        parse_equation(text)
    assert fragment in str(e.value), str(e.value)
    assert str(e.value).startswith("cannot use equation ")


def test_hostile_strings_execute_nothing(tmp_path, monkeypatch):
    target = tmp_path / "pwned"
    hostile = [
        f"__import__('os').system('touch {target}')",
        f"open('{target}', 'w')",
        f"eval(\"open('{target}', 'w')\")",
        f"exec(\"open('{target}', 'w')\")",
        f"exp(__import__('pathlib').Path('{target}').touch())",
        f"x + __builtins__.open('{target}', 'w')",
        "().__class__.__bases__[0].__subclasses__()",
        f"getattr(__import__('os'), 'system')('touch {target}')",
    ]
    calls = []
    for name in ("eval", "exec"):
        real = getattr(builtins, name)

        def spy(*a, _real=real, _name=name, **k):
            calls.append(_name)
            return _real(*a, **k)

        monkeypatch.setattr(builtins, name, spy)
    for text in hostile:
        with pytest.raises(EquationError):
            parse_equation(text)
        assert not target.exists(), text
    assert calls == []


def test_parse_and_compile_do_not_use_eval_or_exec(monkeypatch):
    real = {"eval": builtins.eval, "exec": builtins.exec}

    def guard(name):
        def call(src, *a, **k):
            # module imports exec code objects of real files; generated source (a string, or code
            # compiled from '<string>'/'<lambdifygenerated-1>') is what must never run
            if isinstance(src, (str, bytes)) or getattr(src, "co_filename", "<").startswith("<"):
                raise AssertionError(f"{name} of generated code")
            return real[name](src, *a, **k)

        return call

    text = "eta*(x*y - y^2*w) + exp(-theta) + sigmoid(x) + max(w, 0)"
    with monkeypatch.context() as m:
        m.setattr(builtins, "eval", guard("eval"))
        m.setattr(builtins, "exec", guard("exec"))
        e = parse_equation(text, params=["eta"])
        f = compile_expr(e)
        # the guard does catch the usual way of compiling sympy (lambdify execs generated code)
        with pytest.raises(AssertionError, match="of generated code"):
            sympy.lambdify([x], x**2, modules="numpy")
    out = f({"eta": 0.1, "x": jnp.array(0.5), "y": jnp.array(0.3), "w": jnp.array(-0.2),
             "theta": jnp.array(1.0)})
    ref = 0.1 * (0.5 * 0.3 - 0.09 * -0.2) + np.exp(-1.0) + 1 / (1 + np.exp(-0.5)) + 0.0
    np.testing.assert_allclose(float(out), ref, rtol=1e-6)


# ------------------------------------------------------------------------ compile

COMPILED = [
    ("eta*(x*y - y^2*w)", lambda v: 0.3 * (v["x"] * v["y"] - v["y"] ** 2 * v["w"])),
    ("x*y*(y - theta)", lambda v: v["x"] * v["y"] * (v["y"] - v["theta"])),
    ("exp(-x/2) + tanh(y) - abs(w)", lambda v: np.exp(-v["x"] / 2) + np.tanh(v["y"]) - np.abs(v["w"])),
    ("sqrt(abs(x)) + log(1 + y^2)", lambda v: np.sqrt(np.abs(v["x"])) + np.log(1 + v["y"] ** 2)),
    ("sigmoid(w) * x^3 / (1 + theta^2)", lambda v: v["x"] ** 3 / (1 + np.exp(-v["w"])) / (1 + v["theta"] ** 2)),
    ("min(x, y) - max(w, theta)", lambda v: np.minimum(v["x"], v["y"]) - np.maximum(v["w"], v["theta"])),
    ("x^-2 + w**0.5*0 + 2^x", lambda v: v["x"] ** -2.0 + 2.0 ** v["x"]),
    ("(x - y)**3 - 1.5e-2", lambda v: (v["x"] - v["y"]) ** 3 - 1.5e-2),
]


@pytest.mark.parametrize("text,ref", COMPILED, ids=[c[0] for c in COMPILED])
def test_compile_matches_numpy(text, ref):
    rng = np.random.default_rng(0)
    # broadcast like a rule: post-side [3, 1], pre-side [1, 4], synapse [3, 4]
    v = {
        "x": rng.uniform(0.5, 1.5, (1, 4)),
        "y": rng.normal(size=(3, 1)),
        "w": rng.normal(size=(3, 4)),
        "theta": rng.normal(size=(3, 1)),
    }
    f = compile_expr(parse_equation(text, params=["eta"]))
    env = {k: jnp.asarray(a, jnp.float32) for k, a in v.items()}
    env["eta"] = jnp.float32(0.3)
    out = np.asarray(jax.jit(f)(env))
    expected = ref(v)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=2e-5, atol=1e-6)


def test_compile_is_differentiable():
    f = compile_expr(parse_equation("x*y - y^2*w"))
    g = jax.grad(lambda y_: f({"x": 2.0, "y": y_, "w": 0.5}))(jnp.float32(3.0))
    assert float(g) == pytest.approx(2.0 - 2 * 3.0 * 0.5)


def test_compile_rejects_unsupported_nodes_early():
    with pytest.raises(TypeError, match="cannot compile"):
        compile_expr(sympy.gamma(x))


# ------------------------------------------------------------------------ known bugs


def test_nested_min_compiles():
    f = compile_expr(parse_equation("min(min(x, y), w) + max(x, max(y, w))"))
    out = f({"x": jnp.float32(1.0), "y": jnp.float32(-2.0), "w": jnp.float32(0.5)})
    assert float(out) == pytest.approx(-2.0 + 1.0)


def test_exp_of_one_compiles():
    f = compile_expr(parse_equation("exp(1)*x"))
    assert float(f({"x": jnp.float32(2.0)})) == pytest.approx(2 * np.e, rel=1e-6)


def test_division_by_zero_is_an_equation_error():
    with pytest.raises(EquationError):
        parse_equation("x*y/0")
