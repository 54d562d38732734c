"""One rule per plastic synapse type: configs, RuleSet, the rate_lateral network, views."""

from __future__ import annotations

import tomllib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discover.build import build_student, build_task, rule_from_spec
from discover.config import ConfigError, config_from_dict, dumps_config
from discover.networks import LateralRateNetwork
from discover.rules import RuleSet, canonical_rule
from discover.tasks.oja_subspace import OjaSubspace, subspace_overlap
from discover.tasks.view import SynapseView


def lateral_config(**rule):
    return {"task": {"name": "oja_subspace", "steps": 40, "n_pre": 5, "n_post": 2},
            "network": {"kind": "rate_lateral"},
            "rule": {"kind": "polynomial", "inputs": ["x", "y", "w"], "degree": 3, **rule},
            "meta": {"optimizer": "adam", "steps": 2, "batch": 2, "val_episodes": 2}}


def test_rule_subtables_merge_over_the_shared_rule_and_round_trip():
    cfg = config_from_dict(lateral_config(lat={"degree": 2, "output_scale": 0.02}))
    lat, ff = cfg.rule.for_type("lat"), cfg.rule.for_type("ff")
    assert (lat.degree, lat.output_scale, lat.inputs) == (2, 0.02, ["x", "y", "w"])
    assert ff is cfg.rule and ff.degree == 3
    text = dumps_config(cfg)
    assert "[rule.lat]" in text and "by_type" not in text
    assert config_from_dict(tomllib.loads(text)) == cfg


def test_a_subtable_may_pick_another_kind_and_takes_only_its_keys_of_the_shared_rule():
    cfg = config_from_dict(lateral_config(lat={"kind": "mlp", "hidden": [4]}))
    lat = cfg.rule.for_type("lat")
    assert lat.kind == "mlp" and not hasattr(lat, "degree")


@pytest.mark.parametrize("rule,msg", [
    ({"ee": {"degree": 2}}, "names no synapse type of network kind 'rate_lateral'; its synapse types are ff, lat"),
    ({"lat": {"degre": 2}}, "unknown key 'degre' in [rule.lat]"),
])
def test_bad_rule_subtables_are_named(rule, msg):
    with pytest.raises(ConfigError) as e:
        config_from_dict(lateral_config(**rule))
    assert msg in str(e.value)


def test_a_subtable_on_a_network_with_one_synapse_type_is_refused():
    d = {"task": {"name": "oja_pca"}, "network": {"kind": "rate"}, "rule": {"kind": "polynomial", "ff": {}}}
    with pytest.raises(ConfigError, match="it has one plastic synapse type"):
        config_from_dict(d)


def test_student_is_one_rule_per_type_with_its_own_parameters_and_spec():
    cfg = config_from_dict(lateral_config(lat={"degree": 2}))
    task = build_task(cfg)
    rule = build_student(cfg, task)
    assert isinstance(rule, RuleSet) and rule.types == ("ff", "lat")
    assert (rule.rule("ff").degree, rule.rule("lat").degree) == (3, 2)
    params = rule.init(jax.random.key(0))
    assert params["core"]["ff"]["coef"].shape != params["core"]["lat"]["coef"].shape
    again = rule_from_spec(rule.to_spec())
    assert again == rule


def test_lateral_network_solves_the_recurrence_and_keeps_the_diagonal_zero():
    net = LateralRateNetwork(n_pre=4, n_post=3)
    W = jax.random.normal(jax.random.key(0), (3, 4))
    L0 = 0.2 * jnp.ones((3, 3))
    state = net.init_state(W, L0)
    assert np.allclose(np.diag(state["L"]), 0)
    x = jnp.arange(4.0)
    rs = RuleSet.of({"ff": canonical_rule("oja"), "lat": canonical_rule("foldiak")})
    new, local = net.step(rs, rs.init(jax.random.key(0)), state, {"x": x})
    y = local["y"][:, 0]
    assert np.allclose(y, W @ x + state["L"] @ y, atol=1e-5)  # y = W x + L y
    assert np.allclose(np.diag(new["L"]), 0)
    dL = np.asarray(new["L"] - state["L"])
    expect = -0.01 * np.outer(y, y) * (1 - np.eye(3))  # Foldiak: -eta * y_i * y_j
    assert np.allclose(dL, expect, atol=1e-6)
    assert local["lat.w"].shape == (3, 3) and local["w"].shape == (3, 4)


def test_lateral_weights_stay_where_i_minus_l_is_invertible():
    net = LateralRateNetwork(n_pre=4, n_post=3, lateral_max=0.9)
    state = net.init_state(jnp.ones((3, 4)))
    big = canonical_rule("hebb_decay", {"eta": 50.0, "lam": 0.0})  # drives every weight up fast
    new, _ = net.step(big, big.init(jax.random.key(0)), state, {"x": jnp.ones(4)})
    top = float(jnp.linalg.eigvalsh(0.5 * (new["L"] + new["L"].T))[-1])
    assert top == pytest.approx(0.9, rel=1e-5)  # scaled back onto the bound
    assert float(jnp.linalg.svd(jnp.eye(3) - new["L"], compute_uv=False)[-1]) >= 0.1 - 1e-5  # 1 - lateral_max
    inhib = net.bound_lateral(-0.8 * (jnp.ones((3, 3)) - jnp.eye(3)))  # strong mutual inhibition: allowed
    assert np.allclose(inhib, -0.8 * (np.ones((3, 3)) - np.eye(3)))


def test_view_runs_one_types_rule_beside_the_others_and_sees_its_own_locals():
    cfg = config_from_dict(lateral_config())
    task = build_task(cfg)
    rs = RuleSet.of({"ff": canonical_rule("oja"), "lat": canonical_rule("foldiak")})
    params = rs.init(jax.random.key(0))
    ep = jax.tree_util.tree_map(lambda a: a[0], task.sample(jax.random.key(1), 1))
    view = SynapseView(task, "lat", rs, params)
    rt, pt = rs.part(params, "lat")
    locs = view.visited(rt, pt, ep)
    assert locs["w"].shape == (40, 2, 2) and set(locs) == {"x", "y", "w", "m"}
    assert np.allclose(np.asarray(locs["x"][:, 0, :]), np.asarray(locs["y"][:, :, 0]))  # x is the other output
    same = view.simulate(rt, pt, ep).final["L"]
    assert np.allclose(same, task.simulate(rs, params, ep).final["L"])
    zero = canonical_rule("oja", {"eta": 0.0})
    frozen = view.simulate(zero, zero.init(jax.random.key(0)), ep)
    assert np.allclose(frozen.final["L"], 0) and not np.allclose(frozen.final["W"], ep["W0"])
    with pytest.raises(KeyError, match="no synapse type 'ee'"):
        SynapseView(task, "ee")


def test_subspace_overlap_is_one_on_the_subspace_and_k_over_n_at_random():
    Q, _ = jnp.linalg.qr(jax.random.normal(jax.random.key(0), (6, 6)))
    basis = Q[:, :2]
    assert float(subspace_overlap(jnp.array([[2.0, 1.0], [0.5, -1.0]]) @ basis.T, basis)) == pytest.approx(1, abs=1e-5)
    assert float(subspace_overlap(Q[:, 2:4].T, basis)) == pytest.approx(0, abs=1e-5)
    assert float(subspace_overlap(jnp.stack([basis[:, 0], basis[:, 0]]), basis)) == pytest.approx(0.5, abs=1e-3)


def test_oja_with_foldiak_lateral_finds_the_subspace_and_oja_alone_does_not():
    task = OjaSubspace.make(LateralRateNetwork(n_pre=8, n_post=3), steps=1000)
    eps = task.sample(jax.random.key(3), 16)

    def overlap(rule):
        p = rule.init(jax.random.key(0))
        return float(jnp.mean(jax.vmap(lambda e: task.score(task.simulate(rule, p, e), e))(eps)))

    refs = task.references()
    assert overlap(refs["oja+foldiak"]) > 0.9
    assert overlap(refs["oja_no_lateral"]) < 0.7  # without lateral plasticity outputs share components


@pytest.mark.parametrize("task_kw,msg", [
    ({"n_post": 5}, "must be fewer than the n_pre = 5 inputs"),
    ({"eigen_decay": 1.0}, "must be below 1"),
])
def test_oja_subspace_config_errors(task_kw, msg):
    d = lateral_config()
    d["task"].update(task_kw)
    with pytest.raises(ConfigError, match=msg):
        config_from_dict(d)


def test_oja_subspace_needs_the_lateral_network():
    d = lateral_config()
    d["network"] = {"kind": "rate", "activation": "linear"}
    with pytest.raises(ConfigError, match="kind = \"rate_lateral\""):
        config_from_dict(d)


def test_behaviour_table_and_its_report_section():
    from analysis.sections import behaviour_section
    from distill.verify import behaviour_table

    rows = [("neural", "overlap", 10, [0.5, 0.7]), ("neural", "overlap", 20, [0.9, 1.0]),
            ("neural", "row_norm", None, [1.0, 1.2]), ("selected", "row_norm", None, [0.9, 0.9])]
    df = behaviour_table(rows)
    assert df["mean"].round(3).tolist() == [0.6, 0.95, 1.1, 0.9] and df["at"].isna().tolist() == [0, 0, 1, 1]
    text = "\n".join(str(b) for b in behaviour_section(df))
    assert "mean row norm of W" in text and "Subspace overlap during learning" in text
    assert behaviour_section(None) == []


def test_a_rule_set_meta_trains_by_evolution_and_resumes_from_its_run_directory(tmp_path):
    """CMA-ES searches every type's core at once; the rule set and its parameters reload."""
    from discover import stage
    from discover.build import load_rule

    d = lateral_config(lat={"degree": 1})
    d["meta"] = {"optimizer": "cma_es", "population": 4, "steps": 3, "batch": 2, "val_episodes": 2, "eval_every": 1}
    cfg = config_from_dict(d)
    rule, params, _ = stage.run(cfg, tmp_path, progress=False)
    again, p2 = load_rule(tmp_path)
    assert again == rule and again.types == ("ff", "lat")
    moved = {t: float(jnp.abs(params["core"][t]["coef"]).sum()) for t in rule.types}
    assert all(v > 0 for v in moved.values())  # both types' coefficients were searched
    np.testing.assert_array_equal(np.asarray(p2["core"]["lat"]["coef"]), np.asarray(params["core"]["lat"]["coef"]))
