"""Task reward_driven (Jordan et al. 2021, E2L's reward-driven task): the escape-noise
neuron, its eligibility trace, the task's fast trial against the network's own step, the
reward, rules applied at the end of a trial, config errors, and that the Urbanczik-Senn
rule learns where no plasticity does not."""

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
from discover.rules import SymbolicRule, canonical_rule
from discover.tasks.reward_driven import RewardDriven

ROOT = Path(__file__).resolve().parents[1]


def shipped(**sections):
    d = tomllib.loads((ROOT / "configs" / "reward_driven.toml").read_text())
    for k, v in sections.items():
        d.setdefault(k, {}).update(v)
    return d


def e2l_net(**kw):
    """configs/reward_driven.toml's neuron (E2L's iaf_psc_exp with escape noise)."""
    c = dict(n_pre=50, n_post=1, dt=1.0, tau_m=10.0, tau_syn=2.0, v_rest=-70.0, v_th=-55.0, v_reset=-70.0,
             t_ref=2.0, w_scale=0.04, w_min=None, w_max=None, escape_noise=True, rho=0.01, delta=0.2,
             elig_rho=10.0, elig_delta=5.0)
    return LIFNetwork(**{**c, **kw})


def test_trial_matches_the_networks_own_step():
    """The task's trial (precomputed PSPs, a scan over one potential) gives the spikes and
    the end-of-trial eligibility trace of LIFNetwork.step on the same inputs and noise."""
    net = e2l_net()
    task = RewardDriven.make(net, steps=300, trials=2, patterns=2)
    ep = jax.tree_util.tree_map(lambda a: a[0], task.sample(jax.random.key(3), 1))
    W = 2.5 * jnp.abs(ep["W0"])  # strong enough to spike several times (resets, refractoriness)
    noise = task.noise(ep, 0)
    s_fast, elig_fast = task.trial(W, ep["psp"][0], ep["isyn"][0], noise)
    rule = SymbolicRule.from_string("0*w", {})
    params = rule.init(jax.random.key(0))
    state = net.init_state(W)
    spikes = []
    for t in range(300):
        state, local = net.step(rule, params, state, {"s_pre": ep["s_pre"][0, t], "noise": noise[t]})
        spikes.append(float(local["s_post"][0, 0]))
    assert sum(spikes) >= 3
    np.testing.assert_array_equal(np.asarray(s_fast)[:, 0], spikes)
    np.testing.assert_allclose(np.asarray(elig_fast), np.asarray(state["elig"]), rtol=2e-4,
                               atol=1e-6 * float(jnp.abs(state["elig"]).max()))


def test_eligibility_drive_is_urbanczik_senn_where_spikes_are_rare_and_finite_where_certain():
    net = e2l_net(elig_rho=0.0, elig_delta=0.0)  # the neuron's own intensity
    v = jnp.array([-70.0, -58.0, -56.0])
    for s in (0.0, 1.0):
        got = np.asarray(net.elig_drive(v, s))
        want = (s / net.dt - np.asarray(net.phi(v))) / net.delta
        np.testing.assert_allclose(got, want, rtol=1e-3)
    # far above threshold in one step: a certain spike earns no credit, and nothing overflows
    far = np.asarray(net.elig_drive(jnp.array([-40.0, 0.0]), 1.0))
    assert np.all(np.isfinite(far)) and np.all(np.abs(far) < 1e-6)
    assert float(net.fire(jnp.array(0.0), jnp.array(0.999))) == 1.0
    assert float(net.fire(jnp.array(-70.0), jnp.array(0.001))) == 0.0


def test_reward_is_plus_one_when_spiking_agrees_with_the_label():
    task = RewardDriven.make(e2l_net(n_post=3), steps=10, trials=1, patterns=1)
    quiet, one = jnp.zeros((10, 3)), jnp.zeros((10, 3)).at[4, 0].set(1.0)
    most = one.at[2, 1].set(1.0)
    assert [float(task.reward(s, lab)) for s, lab in [(quiet, -1.0), (quiet, 1.0), (one, -1.0), (most, 1.0),
                                                      (most, -1.0)]] == [1.0, -1.0, 1.0, 1.0, -1.0]


def test_us_reward_learns_where_no_plasticity_guesses():
    """Cumulative reward over 500 trials of 8 pattern sets (E2L: us_reward-like rules 210)."""
    task = RewardDriven.make(e2l_net())
    eps = task.sample(jax.random.key(11), 8)
    out = {}
    for name, rule in [("none", SymbolicRule.from_string("0*w", {})), ("us_reward", canonical_rule("us_reward"))]:
        p = rule.init(jax.random.key(0))
        out[name] = np.asarray(jax.jit(jax.vmap(
            lambda e, rule=rule, p=p: task.e2l_fitness(task.simulate(rule, p, e), e)))(eps))
    assert abs(out["none"].mean()) < 80
    assert out["us_reward"].mean() > 120 and out["us_reward"].mean() > out["none"].mean() + 100
    # the loss is the share of unrewarded trials: cumulative reward = trials * (1 - 2 loss)
    rule = canonical_rule("us_reward")
    r = task.simulate(rule, rule.init(jax.random.key(0)), jax.tree_util.tree_map(lambda a: a[0], eps))
    assert float(task.e2l_fitness(r, None)) == pytest.approx(500 * (1 - 2 * float(task.loss(r, None))))
    assert r.weights.shape == (500, 1, 50) and r.activity.shape == (500, 1)


def test_rule_changes_only_connected_synapses_once_per_trial():
    task = RewardDriven.make(e2l_net(), steps=100, trials=3, patterns=2)
    ep = jax.tree_util.tree_map(lambda a: a[0], task.sample(jax.random.key(0), 1))
    rule = SymbolicRule.from_string("2.0 + 0*w", {})
    r = task.simulate(rule, rule.init(jax.random.key(0)), ep, record_locals=True)
    mask = np.asarray(ep["mask"])
    assert 0 < mask.sum() < mask.size
    np.testing.assert_allclose(np.asarray(r.weights[-1]), np.asarray(ep["W0"]) + 6.0 * mask, rtol=1e-6)
    assert set(r.local) == {"m", "elig", "w"} and r.local["elig"].shape == (3, 1, 50)
    assert task.record_every == 100 and task.steps == 300


@pytest.mark.parametrize("section,values,needle", [
    ("rule", {"apply": "step"}, 'apply = "trial_end"'.replace('"', "'")),
    ("rule", {"inputs": ["m", "elig", "tr_pre"]}, "task reward_driven's rules"),
    ("network", {"escape_noise": False}, "escape_noise = true"),
    ("network", {"delta": 0.0}, "delta"),
    ("task", {"connectivity": 1.5}, "connectivity"),
    ("task", {"record_every": 5}, "record_every out"),
])
def test_bad_reward_driven_config_is_a_clear_error(section, values, needle):
    from discover.build import build_student, build_task

    with pytest.raises(ConfigError, match=needle.replace("[", r"\[")):
        cfg = config_from_dict(shipped(**{section: values}))
        build_student(cfg, build_task(cfg))


def test_trial_end_rules_and_elig_are_refused_where_they_do_not_fit():
    from discover.build import build_student, build_task

    oja = tomllib.loads((ROOT / "configs" / "oja.toml").read_text())
    oja.setdefault("rule", {})["apply"] = "trial_end"
    with pytest.raises(ConfigError, match="no trials"):
        config_from_dict(oja)
    stdp = tomllib.loads((ROOT / "configs" / "stdp_pair.toml").read_text())
    noisy = {**stdp, "network": {**stdp["network"], "escape_noise": True}}
    with pytest.raises(ConfigError, match="draws the neuron's noise"):
        config_from_dict(noisy)
    stdp.setdefault("rule", {})["inputs"] = ["s_pre", "s_post", "elig"]
    with pytest.raises(ConfigError, match="escape_noise = true"):
        cfg = config_from_dict(stdp)
        build_student(cfg, build_task(cfg))


def test_student_normalizes_the_tiny_eligibility_trace():
    """elig is ~1e-7 (mV per pA per ms): its spread survives the spec's rounding."""
    from discover.build import build_student, build_task

    cfg = config_from_dict(shipped(task={"trials": 20}))
    rule = build_student(cfg, build_task(cfg))
    assert rule.features == ("m", "elig", "w")
    i = rule.features.index("elig")
    assert 1e-8 < rule.scales[i] < 1e-5 and rule.scales[rule.features.index("w")] == pytest.approx(1000, rel=0.3)
    assert math.isfinite(rule.shifts[i])


def test_sparse_fit_does_not_split_a_term_between_equal_columns():
    """m**2 = 1 where m is +1 or -1: a library with a constant keeps it and drops m**2."""
    from distill.backends.sparse import SparseBackend

    rng = np.random.default_rng(0)
    m = rng.choice([-1.0, 1.0], 2000)
    elig, w = rng.normal(size=2000), rng.normal(size=2000)
    y = 3.0 * elig * (m - 1.0) + 0.5
    cands = SparseBackend(include_constant=True).fit(np.stack([m, elig, w], 1), y, ("m", "elig", "w"), max_degree=2)
    best = min(cands, key=lambda c: (c.loss > 1e-12, c.complexity))
    assert "m**2" not in str(best.expr) and best.loss < 1e-12
    assert {str(t.as_coeff_Mul()[1]) for t in best.expr.as_ordered_terms()} == {"elig*m", "elig", "1"}
