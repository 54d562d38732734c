"""Contract tests for every rule: canonical (symbolic), MLP (rate, event-driven) and polynomial.

Registry-driven: every rule in ``discover.rules.CANONICAL`` is checked under ``jit``,
``vmap`` and ``grad``, and against a numpy formula written here by hand (DESIGN.md section
3), so a canonical rule added without a reference formula fails the registry test.
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy

from discover.equations import EquationError, parse_equation
from discover.rules import CANONICAL, MLPRule, PolynomialRule, SymbolicRule, canonical_rule, make_symbolic_rule
from discover.vocabulary import BINARY, VARIABLES

N_POST, N_PRE, BATCH = 3, 4, 5

# ----------------------------------------------------------------------------- references
# Each canonical formula written once more, independently, in numpy (DESIGN.md section 3).
REFERENCE = {
    "hebb_decay": lambda p, v: p["eta"] * (v["x"] * v["y"] - p["lam"] * v["w"]),
    "oja": lambda p, v: p["eta"] * (v["x"] * v["y"] - v["y"] ** 2 * v["w"]),
    "bcm": lambda p, v: p["eta"] * v["x"] * v["y"] * (v["y"] - v["theta"]),
    "covariance": lambda p, v: p["eta"] * (v["x"] - v["x_mean"]) * (v["y"] - v["y_mean"]),
    "stdp_pair": lambda p, v: p["A_plus"] * v["tr_pre"] * v["s_post"] - p["A_minus"] * v["tr_post"] * v["s_pre"],
    "stdp_triplet": lambda p, v: (
        v["s_post"] * v["tr_pre"] * (p["A2_plus"] + p["A3_plus"] * v["tr_post_slow"])
        - v["s_pre"] * v["tr_post"] * (p["A2_minus"] + p["A3_minus"] * v["tr_pre_slow"])
    ),
    "us_error": lambda p, v: p["eta"] * v["psp"] * (v["u_target"] - v["v_post"]),
    "us_reward": lambda p, v: p["eta"] * v["elig"] * (v["m"] - 1.0),
    "homeostatic_stdp": lambda p, v: v["s_post"] * (p["lam"] * v["tr_pre"] + p["w_out"]),
    "foldiak": lambda p, v: -p["eta"] * v["x"] * v["y"],
    "vogels_istdp": lambda p, v: p["eta"] * (v["s_pre"] * (v["tr_post"] - p["alpha"]) + v["s_post"] * v["tr_pre"]),
    "pseudo_gradient": lambda p, v: -p["eta"] * v["e_post"] * v["x"],
    "error_hebbian": lambda p, v: -p["eta"] * v["e_post"] * v["e_pre"],
}
REF_INPUTS = {
    "hebb_decay": {"x", "y", "w"},
    "oja": {"x", "y", "w"},
    "bcm": {"x", "y", "theta"},
    "covariance": {"x", "y", "x_mean", "y_mean"},
    "stdp_pair": {"s_pre", "s_post", "tr_pre", "tr_post"},
    "stdp_triplet": {"s_pre", "s_post", "tr_pre", "tr_post", "tr_pre_slow", "tr_post_slow"},
    "us_error": {"psp", "u_target", "v_post"},
    "us_reward": {"elig", "m"},
    "homeostatic_stdp": {"s_post", "tr_pre"},
    "foldiak": {"x", "y"},
    "vogels_istdp": {"s_pre", "s_post", "tr_pre", "tr_post"},
    "pseudo_gradient": {"e_post", "x"},
    "error_hebbian": {"e_post", "e_pre"},
}

RATE_IN = ("x", "y", "w")
SPIKE_IN = ("s_pre", "s_post", "tr_pre", "tr_post", "w")


def local_shape(name, batch=()):
    side = VARIABLES[name].side
    shape = {"pre": (1, N_PRE), "post": (N_POST, 1), "synapse": (N_POST, N_PRE), "global": ()}[side]
    return (*batch, *shape)


def random_local(names, seed=0, batch=()):
    """float64 numpy values, shaped as a network broadcasts them; spikes are 0/1."""
    rng = np.random.default_rng(seed)
    out = {}
    for n in names:
        shape = local_shape(n, batch)
        if n in BINARY:
            out[n] = (rng.random(shape) < 0.5).astype(np.float64)
            out[n].reshape(-1)[0] = 1.0  # at least one spike: a rule gated by it is not zero everywhere
        elif n.startswith("tr_"):
            out[n] = rng.uniform(0.0, 2.0, shape)
        else:
            out[n] = rng.normal(size=shape)
    return out


def to_jax(local):
    return {k: jnp.asarray(v, jnp.float32) for k, v in local.items()}


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30)


# ----------------------------------------------------------------------------- the rules


def _random_core(tree, key, scale=1.0):
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    keys = jax.random.split(key, len(leaves))
    return jax.tree_util.tree_unflatten(
        treedef, [scale * jax.random.normal(k, jnp.shape(leaf), jnp.float32) for k, leaf in zip(keys, leaves)])


def make_rule(rid):
    """(rule, params) for a rule id; polynomial and MLP rules get random non-zero parameters."""
    key = jax.random.key(1)
    if rid in CANONICAL:
        rule = canonical_rule(rid)
        return rule, rule.init(key)
    if rid == "mlp_rate":
        rule = MLPRule(inputs=RATE_IN, hidden=(8, 8), init_gain=1.0)
    elif rid == "mlp_event":
        rule = MLPRule(inputs=SPIKE_IN, hidden=(8,), event_driven=True, init_gain=1.0)
    elif rid == "poly_rate":
        rule = PolynomialRule(inputs=RATE_IN, degree=3)
    elif rid == "poly_spike":
        rule = PolynomialRule(inputs=SPIKE_IN, degree=2)
    else:
        raise ValueError(rid)
    params = rule.init(key)
    if isinstance(rule, PolynomialRule):  # zeros at init: make it do something
        params = {**params, "core": _random_core(params["core"], jax.random.key(2))}
    else:
        params = {**params, "core": jax.tree_util.tree_map(lambda a: a + 0.1, params["core"])}  # non-zero biases
    return rule, params


RULE_IDS = [*CANONICAL, "mlp_rate", "mlp_event", "poly_rate", "poly_spike"]


@pytest.fixture(scope="module", params=RULE_IDS)
def rule_case(request):
    rule, params = make_rule(request.param)
    return request.param, rule, params


def test_every_canonical_rule_has_a_reference():
    assert set(REFERENCE) == set(CANONICAL)
    for name in CANONICAL:
        assert set(canonical_rule(name).inputs) == REF_INPUTS[name], name


# ----------------------------------------------------------------------------- contract


def test_jit_shape_and_finite(rule_case):
    rid, rule, params = rule_case
    local = to_jax(random_local(rule.inputs, seed=3))
    eager = rule(params, local)
    jitted = jax.jit(lambda p, loc: rule(p, loc))(params, local)
    assert eager.shape == jitted.shape == (N_POST, N_PRE)
    assert np.all(np.isfinite(np.asarray(jitted)))
    np.testing.assert_allclose(np.asarray(jitted), np.asarray(eager), rtol=1e-5, atol=1e-7)
    assert np.any(np.asarray(eager) != 0), f"{rid} returned all zeros on random inputs"


def test_vmap_over_a_batch_of_local_dicts(rule_case):
    rid, rule, params = rule_case
    batched = to_jax(random_local(rule.inputs, seed=4, batch=(BATCH,)))
    out = jax.jit(jax.vmap(lambda loc: rule(params, loc)))(batched)
    assert out.shape == (BATCH, N_POST, N_PRE)
    assert np.all(np.isfinite(np.asarray(out)))
    for b in (0, BATCH - 1):
        one = rule(params, {k: v[b] for k, v in batched.items()})
        np.testing.assert_allclose(np.asarray(out[b]), np.asarray(one), rtol=1e-5, atol=1e-7)


def test_grad_wrt_params(rule_case):
    rid, rule, params = rule_case
    local = to_jax(random_local(rule.inputs, seed=5))
    g = jax.jit(jax.grad(lambda p: jnp.sum(rule(p, local) ** 2)))(params)
    assert jax.tree_util.tree_structure(g) == jax.tree_util.tree_structure(params)
    leaves = jax.tree_util.tree_leaves(g["core"])
    assert all(np.all(np.isfinite(np.asarray(leaf))) for leaf in leaves)
    assert any(np.any(np.asarray(leaf) != 0) for leaf in leaves), f"{rid}: zero gradient w.r.t. its parameters"
    # trace time constants are not learned unless asked
    assert all(float(v) == 0.0 for v in jax.tree_util.tree_leaves(g["log_tau"]))


def test_grad_wrt_an_input_matches_finite_differences(rule_case):
    rid, rule, params = rule_case
    name = next(n for n in rule.inputs if n not in BINARY)
    local = to_jax(random_local(rule.inputs, seed=6))

    def total(v):
        return jnp.sum(rule(params, {**local, name: v}))

    g = jax.jit(jax.grad(total))(local[name])
    assert g.shape == local[name].shape
    assert np.all(np.isfinite(np.asarray(g)))
    # directional derivative by a central difference
    d = jnp.asarray(np.random.default_rng(7).normal(size=local[name].shape), jnp.float32)
    h = 1e-2
    fd = (float(total(local[name] + h * d)) - float(total(local[name] - h * d))) / (2 * h)
    ad = float(jnp.sum(g * d))
    assert ad == pytest.approx(fd, rel=2e-2, abs=1e-6 * max(1.0, abs(fd)))


# ----------------------------------------------------------------------------- canonical = formula


@pytest.mark.parametrize("name", list(CANONICAL))
def test_canonical_rule_matches_handwritten_numpy(name):
    c = CANONICAL[name]
    pvals = dict(c.params)
    rule = canonical_rule(name)
    params = rule.init(jax.random.key(0))
    assert {k: float(v) for k, v in params["core"].items()} == pytest.approx(pvals)
    for seed in range(3):
        v = random_local(rule.inputs, seed=10 + seed)
        out = np.asarray(rule(params, to_jax(v)))
        ref = REFERENCE[name](pvals, {k: a.astype(np.float32).astype(np.float64) for k, a in v.items()})
        ref = np.broadcast_to(ref, (N_POST, N_PRE))
        assert rel_err(out, ref) < 1e-6
        np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6 * np.abs(ref).max())


@pytest.mark.parametrize("name", list(CANONICAL))
def test_canonical_grad_wrt_each_parameter_matches_the_formula(name):
    """Every canonical rule is linear in each parameter: d sum(dw)/dp = sum(f(p+1) - f(p))."""
    pvals = dict(CANONICAL[name].params)
    rule = canonical_rule(name)
    params = rule.init(jax.random.key(0))
    v = random_local(rule.inputs, seed=20)
    g = jax.grad(lambda p: jnp.sum(rule(p, to_jax(v))))(params)["core"]
    v32 = {k: a.astype(np.float32).astype(np.float64) for k, a in v.items()}
    for p in pvals:
        bumped = {**pvals, p: pvals[p] + 1.0}
        expected = np.sum(np.broadcast_to(REFERENCE[name](bumped, v32) - REFERENCE[name](pvals, v32),
                                          (N_POST, N_PRE)))
        assert float(g[p]) == pytest.approx(expected, rel=1e-5, abs=1e-6), p


def test_published_values_of_the_stdp_rules():
    """DESIGN.md section 3: Song et al. 2000 and Pfister & Gerstner 2006 (Table 4, minimal)."""
    pair = dict(CANONICAL["stdp_pair"].params)
    assert pair["A_minus"] == pytest.approx(1.05 * pair["A_plus"])
    r = canonical_rule("stdp_pair")
    tau = {k: float(v) for k, v in r.tau(r.init(jax.random.key(0))).items()}
    assert tau["tau_pre"] == pytest.approx(20.0, rel=1e-6) and tau["tau_post"] == pytest.approx(20.0, rel=1e-6)
    trip = dict(CANONICAL["stdp_triplet"].params)
    assert trip == pytest.approx({"A2_plus": 0.0, "A3_plus": 6.5e-3, "A2_minus": 7.1e-3, "A3_minus": 0.0})
    r = canonical_rule("stdp_triplet")
    tau = {k: float(v) for k, v in r.tau(r.init(jax.random.key(0))).items()}
    assert tau["tau_pre"] == pytest.approx(16.8, rel=1e-6)
    assert tau["tau_post"] == pytest.approx(33.7, rel=1e-6)
    assert tau["tau_post_slow"] == pytest.approx(114.0, rel=1e-6)


def test_canonical_override_of_parameters_and_time_constants():
    base = canonical_rule("oja")
    fast = canonical_rule("oja", {"eta": 0.5, "tau_theta": 7.0})
    v = to_jax(random_local(base.inputs, seed=30))
    a = np.asarray(base(base.init(jax.random.key(0)), v))
    pf = fast.init(jax.random.key(0))
    np.testing.assert_allclose(np.asarray(fast(pf, v)), 50.0 * a, rtol=1e-5, atol=1e-8)
    assert float(fast.tau(pf)["tau_theta"]) == pytest.approx(7.0, rel=1e-6)


def test_canonical_rule_unknown_parameter_is_a_key_error_naming_it():
    with pytest.raises(KeyError) as e:
        canonical_rule("oja", {"bogus": 1})
    msg = e.value.args[0]
    assert "'bogus'" in msg and "'oja'" in msg and "eta" in msg


def test_unknown_canonical_rule_lists_the_rules():
    with pytest.raises(KeyError) as e:
        canonical_rule("hebbian_magic")
    msg = e.value.args[0]
    assert "'hebbian_magic'" in msg
    assert all(n in msg for n in CANONICAL)


# ----------------------------------------------------------------------------- make_symbolic_rule


def test_make_symbolic_rule_from_an_equation_string():
    rule = make_symbolic_rule("a*x*y - b*w^2", {"a": 0.3, "b": 0.7})
    assert isinstance(rule, SymbolicRule)
    assert rule.inputs == ("x", "y", "w")
    v = random_local(rule.inputs, seed=40)
    out = np.asarray(jax.jit(lambda p, loc: rule(p, loc))(rule.init(jax.random.key(0)), to_jax(v)))
    ref = 0.3 * v["x"] * v["y"] - 0.7 * v["w"] ** 2
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)
    # bound_expr substitutes the values
    assert {s.name for s in rule.bound_expr().free_symbols} == {"x", "y", "w"}


def test_make_symbolic_rule_with_a_canonical_name():
    rule = make_symbolic_rule("stdp_pair", {"A_plus": 0.02})
    core = rule.init(jax.random.key(0))["core"]
    assert float(core["A_plus"]) == pytest.approx(0.02)
    assert float(core["A_minus"]) == pytest.approx(dict(CANONICAL["stdp_pair"].params)["A_minus"])


def test_make_symbolic_rule_missing_parameter_names_it():
    with pytest.raises(EquationError) as e:
        make_symbolic_rule("a*x*y - b*w", {"a": 0.3})
    assert "'b'" in str(e.value)


def test_from_expr_missing_parameter_value_names_it():
    expr = parse_equation("eta*x*y - lam*w", params=["eta", "lam"])
    with pytest.raises(EquationError) as e:
        SymbolicRule.from_expr(expr, {"eta": 0.1})
    assert "lam" in str(e.value)


def test_from_expr_missing_parameter_hint_is_filled_in():
    expr = parse_equation("eta*x*y", params=["eta"])
    with pytest.raises(EquationError) as e:
        SymbolicRule.from_expr(expr, {})
    assert "{missing" not in str(e.value)
    assert "eta = 0.01" in str(e.value)


def test_make_symbolic_rule_unused_parameter_names_it():
    with pytest.raises(EquationError) as e:
        make_symbolic_rule("a*x*y", {"a": 0.3, "zeta": 1.0})
    assert "'zeta'" in str(e.value)


def test_symbolic_rule_needs_its_local_variables():
    rule = canonical_rule("oja")
    with pytest.raises(KeyError, match=r"needs local variables \['w'\]"):
        rule(rule.init(jax.random.key(0)), {"x": jnp.ones((1, 2)), "y": jnp.ones((2, 1))})


# ----------------------------------------------------------------------------- polynomial


@pytest.mark.parametrize("inputs,degree,n_terms", [(RATE_IN, 3, 19), (SPIKE_IN, 2, 18)])
def test_polynomial_as_expr_agrees_with_the_rule(inputs, degree, n_terms):
    rule = PolynomialRule(inputs=inputs, degree=degree, output_scale=0.05)
    params = rule.init(jax.random.key(0))
    assert params["core"]["coef"].shape == (n_terms,)
    params = {**params, "core": _random_core(params["core"], jax.random.key(3))}
    expr = rule.as_expr(params)
    assert {s.name for s in expr.free_symbols} <= set(inputs)
    # s**2 == s is built in: no spike variable appears with a power
    for p in expr.atoms(sympy.Pow):
        assert p.base.name not in BINARY
    v = random_local(inputs, seed=50)
    out = np.asarray(rule(params, to_jax(v)))
    f = sympy.lambdify([sympy.Symbol(n, real=True) for n in inputs], expr, modules="numpy")
    ref = np.broadcast_to(f(*[v[n].astype(np.float32).astype(np.float64) for n in inputs]), out.shape)
    assert rel_err(out, ref) < 1e-5


def test_polynomial_is_zero_at_init():
    rule = PolynomialRule(inputs=RATE_IN)
    out = rule(rule.init(jax.random.key(0)), to_jax(random_local(RATE_IN)))
    assert np.all(np.asarray(out) == 0.0)


# ----------------------------------------------------------------------------- MLP


def test_event_driven_mlp_is_exactly_zero_without_spikes():
    rule, params = make_rule("mlp_event")
    v = random_local(rule.inputs, seed=60)
    v["s_pre"] = np.array([[1.0, 0.0, 1.0, 0.0]])
    v["s_post"] = np.array([[1.0], [0.0], [0.0]])
    out = np.asarray(rule(params, to_jax(v)))
    quiet = (v["s_pre"] == 0) & (v["s_post"] == 0)  # [post, pre]
    assert quiet.sum() > 0 and (~quiet).sum() > 0
    assert np.all(out[quiet] == 0.0)
    assert np.all(out[~quiet] != 0.0)


def test_event_driven_mlp_is_a_sum_of_a_post_and_a_pre_term():
    """dw = s_post*f(z) + s_pre*g(z): the both-spike value is the sum of the single-spike ones."""
    rule, params = make_rule("mlp_event")
    v = to_jax(random_local(rule.inputs, seed=61))
    one, zero = jnp.ones((1, N_PRE)), jnp.zeros((1, N_PRE))
    onep, zerop = jnp.ones((N_POST, 1)), jnp.zeros((N_POST, 1))
    both = rule(params, {**v, "s_pre": one, "s_post": onep})
    pre = rule(params, {**v, "s_pre": one, "s_post": zerop})
    post = rule(params, {**v, "s_pre": zero, "s_post": onep})
    np.testing.assert_allclose(np.asarray(both), np.asarray(pre + post), rtol=1e-5, atol=1e-8)
    assert rule.features == ("tr_pre", "tr_post", "w")
    assert set(rule.heads) == {"s_pre", "s_post"}


def test_mlp_normalization_shifts_and_scales_inputs():
    rule, params = make_rule("mlp_rate")
    norm = ((0.5, 2.0), (-1.0, 0.5), (0.2, 3.0))
    normed = MLPRule(**{**rule.__dict__, "norm": norm})
    v = random_local(RATE_IN, seed=62)
    z = {n: (v[n] - s) / c for n, (s, c) in zip(RATE_IN, norm)}
    np.testing.assert_allclose(np.asarray(normed(params, to_jax(v))), np.asarray(rule(params, to_jax(z))),
                               rtol=1e-4, atol=1e-7)


def test_mlp_output_scale_is_linear():
    rule, params = make_rule("mlp_rate")
    big = MLPRule(**{**rule.__dict__, "output_scale": 10 * rule.output_scale})
    v = to_jax(random_local(RATE_IN, seed=63))
    np.testing.assert_allclose(np.asarray(big(params, v)), 10 * np.asarray(rule(params, v)), rtol=1e-5)


def test_rule_inputs_must_be_in_the_vocabulary():
    with pytest.raises(ValueError, match="not in the vocabulary"):
        PolynomialRule(inputs=("x", "dopamine"))


def test_learned_timescales_get_gradients_through_a_network_step():
    """With learn_timescales the trace time constants receive a gradient (they shape the traces)."""
    from discover.networks import LIFNetwork

    rule = canonical_rule("stdp_pair", learn_timescales=True)
    params = rule.init(jax.random.key(0))
    net = LIFNetwork(n_pre=2, n_post=1, post_mode="given")
    state = net.init_state(jnp.full((1, 2), 0.5))
    state = {**state, "tr_pre": jnp.array([1.0, 0.5]), "tr_post": jnp.array([0.7])}
    inp = {"s_pre": jnp.array([1.0, 0.0]), "s_post": jnp.array([1.0])}
    g = jax.jit(jax.grad(lambda p: jnp.sum(net.step(rule, p, state, inp)[0]["W"])))(params)
    assert float(g["log_tau"]["tau_pre"]) != 0.0 and float(g["log_tau"]["tau_post"]) != 0.0
    frozen = canonical_rule("stdp_pair")
    g = jax.jit(jax.grad(lambda p: jnp.sum(net.step(frozen, p, state, inp)[0]["W"])))(frozen.init(jax.random.key(0)))
    assert float(g["log_tau"]["tau_pre"]) == 0.0


def test_event_driven_polynomial_as_expr_agrees_and_is_silent_between_spikes():
    """``s_post*P(z) + s_pre*Q(z)`` over monomials of ``z/scale``; the printed equation is
    in the unscaled variables and equals the rule; no spike, no change."""
    scales = (0.5, 2.0, 4.0, 0.7)
    rule = PolynomialRule(inputs=("s_pre", "s_post", "tr_pre", "tr_post", "tr_post_slow", "w"), degree=2,
                          event_driven=True, scales=scales, output_scale=0.05)
    assert rule.features == ("tr_pre", "tr_post", "tr_post_slow", "w") and rule.heads == ("s_post", "s_pre")
    params = rule.init(jax.random.key(0))
    assert params["core"]["coef"].shape == (2, 15)  # constant + 4 linear + 10 quadratic, per head
    params = {**params, "core": _random_core(params["core"], jax.random.key(3))}
    expr = rule.as_expr(params)
    v = random_local(rule.inputs, seed=51)
    out = np.asarray(rule(params, to_jax(v)))
    f = sympy.lambdify([sympy.Symbol(n, real=True) for n in rule.inputs], expr, modules="numpy")
    ref = np.broadcast_to(f(*[v[n].astype(np.float32).astype(np.float64) for n in rule.inputs]), out.shape)
    assert rel_err(out, ref) < 1e-5
    quiet = {**v, "s_pre": np.zeros_like(v["s_pre"]), "s_post": np.zeros_like(v["s_post"])}
    assert np.all(np.asarray(rule(params, to_jax(quiet))) == 0.0)
    with pytest.raises(ValueError, match="one positive number per feature"):
        PolynomialRule(inputs=rule.inputs, event_driven=True, scales=(1.0,)).as_expr(params)


def test_event_driven_polynomial_round_trips_through_rule_json():
    from discover.build import rule_from_spec, rule_spec

    rule = PolynomialRule(inputs=SPIKE_IN, degree=1, event_driven=True, scales=(0.5, 1.5, 0.8),
                          learn_timescales=True)
    back = rule_from_spec(json.loads(json.dumps(rule_spec(rule))))
    assert back == rule
