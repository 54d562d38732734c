"""Task error_driven (Jordan et al. 2021, E2L's error-driven task): the unit-weight PSP, the
low-passed rule output, neurons without reset, the task's loss and fitness, config errors,
and the normalization a student's polynomial sees. The recovery of ``psp*(u_target -
v_post)`` from function is measured with the shipped config (README; a CI-size run of 4-s
episodes and 300 meta-steps still selects ``u_target - v_post`` without ``psp``)."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discover.config import ConfigError, config_from_dict
from discover.networks import LIFNetwork
from discover.rules import PolynomialRule, SymbolicRule, canonical_rule
from discover.tasks.error_driven import ErrorDriven
from discover.vocabulary import SYMBOLS as S

ROOT = Path(__file__).resolve().parents[1]


def e2l_net(**kw):
    """E2L's iaf_psc_exp at dt = 1 ms (configs/error_driven.toml's network)."""
    c = dict(n_pre=5, n_post=1, dt=1.0, tau_m=10.0, tau_syn=2.0, v_rest=-70.0, v_th=-55.0, w_scale=0.04,
             reset=False, dw_tau=100.0, w_min=-100.0, w_max=100.0, post_mode="closed")
    return LIFNetwork(**{**c, **kw})


def shipped(**sections):
    d = tomllib.loads((ROOT / "configs" / "error_driven.toml").read_text())
    for k, v in sections.items():
        d.setdefault(k, {}).update(v)
    return d


def test_membrane_without_reset_is_the_weighted_sum_of_unit_psps():
    """v - v_rest = W @ psp at fixed weights, spikes or not; with reset, spikes break it."""
    net = e2l_net(w_min=None, w_max=None)
    task = ErrorDriven.make(net, steps=2000)
    ep = jax.tree_util.tree_map(lambda a: a[0], task.sample(jax.random.key(0), 1))
    W0 = jnp.full((1, 5), 60.0)  # strong enough to cross threshold
    rule = SymbolicRule.from_string("0*w", {})
    ro = task.simulate(rule, rule.init(jax.random.key(0)), {**ep, "W0": W0})
    v = np.asarray(ro.activity)[:, 0]
    expected = net.v_rest + np.asarray(net.unit_psp(ep["s_pre"])) @ np.asarray(W0[0])
    assert v.max() > net.v_th  # it would have spiked
    np.testing.assert_allclose(v, expected, atol=1e-2)  # float32 at -56 mV
    reset = ErrorDriven.make(e2l_net(w_min=None, w_max=None, reset=True), steps=2000)
    v_reset = np.asarray(reset.simulate(rule, rule.init(jax.random.key(0)), {**ep, "W0": W0}).activity)[:, 0]
    assert np.abs(v_reset - expected).max() > 1.0


def test_rule_output_is_low_passed_before_it_changes_w():
    """A constant output c per step moves w by c * sum_k (1 - a^k), a = exp(-dt/dw_tau)."""
    c, n = 0.01, 300
    for tau in (0.0, 100.0):
        net = e2l_net(dw_tau=tau, w_min=None, w_max=None)
        task = ErrorDriven.make(net, steps=n)
        ep = jax.tree_util.tree_map(lambda a: a[0], task.sample(jax.random.key(1), 1))
        rule = SymbolicRule.from_string(f"{c} + 0*w", {})
        state = task.network.init_state(ep["W0"])
        for t in range(n):
            state, _ = net.step(rule, rule.init(jax.random.key(0)), state,
                                {"s_pre": ep["s_pre"][t], "u_target": ep["u_target"][t]})
        a = math.exp(-1.0 / tau) if tau else 0.0
        moved = c * sum(1 - a**k for k in range(1, n + 1))
        np.testing.assert_allclose(np.asarray(state["W"]), 5.0 + moved, rtol=1e-4)


def test_us_error_learns_the_teacher_and_scores_like_e2l():
    """The Urbanczik-Senn rule (eta = 1.7, E2L's learning rate) against no plasticity, in
    E2L's units (minus the L2 distance in mV over 1-ms samples, first 10 % skipped)."""
    task = ErrorDriven.make(e2l_net(), steps=10_000)
    eps = task.sample(jax.random.key(0), 16)
    out = {}
    for name, rule in [("none", SymbolicRule.from_string("0*w", {})), ("us_error", canonical_rule("us_error"))]:
        p = rule.init(jax.random.key(0))
        f = jax.vmap(lambda e, rule=rule, p=p: (lambda r: (task.loss(r, e), task.e2l_fitness(r, e)))(
            task.simulate(rule, p, e)))
        loss, fit = jax.jit(f)(eps)
        out[name] = (float(jnp.mean(loss)), float(jnp.mean(fit)))
    # E2L (Jordan et al. 2021, Fig. 4): evolved psp*(u_target - v_post) rules -13.4 to -14.7
    assert -20.0 < out["us_error"][1] < -8.0
    assert out["none"][1] < 8 * out["us_error"][1]  # no plasticity is many times worse
    assert out["us_error"][0] < 0.02 < 0.3 < out["none"][0]


def test_normalized_polynomial_prints_the_function_it_computes():
    """normalize = true: monomials of (z - mean) / sd with a constant; as_expr expands them
    back into the raw variables, and evaluates to what apply computes."""
    rule = PolynomialRule(inputs=("u_target", "v_post", "psp", "w"), degree=2, normalize=True, output_scale=0.1)
    stats = ((-67.0, 0.5), (-69.0, 0.2), (0.04, 0.02), (5.0, 1.0))
    rule = rule.normalized(lambda r: stats)
    # the two potentials (mV) share a pooled mean and sd: u_target - v_post stays a difference
    assert rule.shifts == (-68.0, -68.0, 0.04, 5.0) and rule.exponents.shape[0] == 15  # 1 + 4 + 10
    assert rule.scales[:2] == pytest.approx([math.sqrt((0.25 + 0.04) / 2 + 1.0)] * 2, rel=1e-5)
    assert rule.scales[2:] == (0.02, 1.0)
    coef = jax.random.normal(jax.random.key(2), (15,))
    params = {**rule.init(jax.random.key(0)), "core": {"coef": coef}}
    expr = rule.as_expr(params)
    rng = np.random.default_rng(0)
    for _ in range(5):
        z = {"u_target": -67 + rng.normal(), "v_post": -69 + rng.normal(), "psp": 0.04 + 0.02 * rng.normal(),
             "w": 5 + rng.normal()}
        got = float(rule.apply(params["core"], {k: jnp.float32(v) for k, v in z.items()}))
        want = float(expr.subs({S[k]: v for k, v in z.items()}))
        assert got == pytest.approx(want, rel=2e-3, abs=1e-4)
    # raw (the default for a rule applied every step): no shift, no constant
    assert PolynomialRule(inputs=("x", "y"), degree=2).normalized(lambda r: ((1.0, 1.0),) * 2).shifts == ()


@pytest.mark.parametrize("section,values,needle", [
    ("network", {"reset": True}, "reset = false"),
    ("network", {"synapse": "conductance"}, 'synapse = "current"'),
    ("task", {"record_every": 5}, "record_every = 1"),
    ("task", {"rate_range": [800.0, 100.0]}, "low <= high"),
    ("task", {"rate_range": [-5.0, 100.0]}, "rate_range.*>= 0"),
    ("task", {"skip": 1.0}, "skip"),
    ("network", {"dw_tau": -1.0}, "dw_tau"),
])
def test_bad_error_driven_config_is_a_clear_error(section, values, needle):
    with pytest.raises(ConfigError, match=needle.replace("[", r"\[")):
        config_from_dict(shipped(**{section: values}))


def test_bad_config_exits_2_from_the_command_line(tmp_path, capsys):
    from plasticity.cli import main

    bad = tmp_path / "bad.toml"
    bad.write_text((ROOT / "configs" / "error_driven.toml").read_text().replace("reset = false", "reset = true"))
    assert main(["run", str(bad), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    assert "reset = false" in capsys.readouterr().err
    assert not (tmp_path / "run" / "rule").exists()


def test_student_sees_w_on_the_scale_of_the_teachers_weights():
    """Without plasticity w sits at w0 (no spread to normalize by); the task gives the
    teacher's spread instead, U(-20, 20) + 15 pA: mean 15, sd 40 / sqrt(12)."""
    from discover.build import build_student, build_task

    cfg = config_from_dict(shipped(task={"steps": 1000}))
    rule = build_student(cfg, build_task(cfg))
    i = rule.features.index("w")
    assert (rule.shifts[i], rule.scales[i]) == pytest.approx((15.0, 40 / math.sqrt(12)), rel=1e-5)
    j, k = rule.features.index("u_target"), rule.features.index("v_post")
    assert rule.shifts[j] == rule.shifts[k] and rule.scales[j] == rule.scales[k] > 0.1
