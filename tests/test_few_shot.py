"""Few-shot classification (issue 13): the rate_layers network, the few_shot task, baselines."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discover.config import ConfigError, config_from_dict
from discover.layers import LayeredRateNetwork
from discover.rules import MLPRule, RuleSet, SymbolicRule
from discover.tasks.few_shot import FewShot, cosine, load_dataset

NET = LayeredRateNetwork(n_pre=64, n_post=3, hidden=(6, 5))


def one_step(net, rule, W, B, x, label):
    state = net.init_state(W, B)
    new, local = net.step(rule, rule.init(jax.random.key(0)), state, {"x": x, "target": jax.nn.one_hot(label, 3)})
    return new["W"], local


def test_pseudo_gradient_with_symmetric_feedback_is_backprops_sgd_step():
    net = LayeredRateNetwork(n_pre=64, n_post=3, hidden=(6, 5), feedback="symmetric")
    W = net.glorot(jax.random.key(1))
    x = jax.random.uniform(jax.random.key(2), (64,))
    rule = SymbolicRule.from_string("-eta*e_post*x", {"eta": 0.3})
    new, _ = one_step(net, rule, W, jnp.zeros_like(W), x, 2)

    def ce(w):
        return -jax.nn.log_softmax(net.logits(w, x))[2]

    np.testing.assert_allclose(new, W - 0.3 * jax.grad(ce)(W), rtol=1e-4, atol=1e-7)


def test_random_feedback_sends_errors_through_b_and_the_input_layer_has_no_presynaptic_error():
    W, B = NET.glorot(jax.random.key(1)), NET.glorot(jax.random.key(3))
    x = jax.random.uniform(jax.random.key(2), (64,))
    rule = SymbolicRule.from_string("-eta*e_post*x", {"eta": 0.3})
    sym = LayeredRateNetwork(n_pre=64, n_post=3, hidden=(6, 5), feedback="symmetric")
    new_r, local = one_step(NET, rule, W, B, x, 0)
    new_s, _ = one_step(sym, rule, W, B, x, 0)
    ro = NET.readout_mask[0] > 0
    np.testing.assert_allclose(new_r[0, ro], new_s[0, ro], rtol=1e-6)  # the readout's update is the gradient
    assert not np.allclose(new_r[0, ~ro], new_s[0, ~ro])  # the hidden layers' is not
    first = NET.strata == 0
    assert np.all(np.asarray(local["e_pre"])[0, first] == 0) and np.any(np.asarray(local["e_pre"])[0, ~first] != 0)
    # the readout's postsynaptic rate is its softmax probability, its error p - target
    y, e = np.asarray(local["y"])[0, ro], np.asarray(local["e_post"])[0, ro]
    np.testing.assert_allclose(np.unique(np.round(y - e, 5)), [0.0, 1.0], atol=1e-5)


def test_a_rule_set_runs_one_rule_on_the_hidden_layers_and_another_on_the_readout():
    W, B = NET.glorot(jax.random.key(1)), NET.glorot(jax.random.key(3))
    x = jax.random.uniform(jax.random.key(2), (64,))
    rs = RuleSet.of({"hidden": SymbolicRule.from_string("0*w"),
                     "readout": SymbolicRule.from_string("-eta*e_post*x", {"eta": 0.3})})
    new, _ = one_step(NET, rs, W, B, x, 1)
    ro = NET.readout_mask[0] > 0
    np.testing.assert_array_equal(new[0, ~ro], W[0, ~ro])
    assert np.abs(np.asarray(new - W)[0, ro]).max() > 1e-3


def test_gated_mlp_rule_is_f_plus_gate_times_g():
    rule = MLPRule(inputs=("x", "e_post"), hidden=(4,), gate="e_post", output_scale=1.0)
    params = rule.init(jax.random.key(0))
    local = {"x": jnp.array([[0.5, -1.0]]), "e_post": jnp.array([[2.0], [0.0]])}
    dw = rule(params, local)
    assert dw.shape == (2, 2)
    core = params["core"]
    z = jnp.stack(jnp.broadcast_arrays(local["x"], local["e_post"]), -1)
    out = jnp.tanh(z @ core[0]["W"] + core[0]["b"]) @ core[1]["W"] + core[1]["b"]
    np.testing.assert_allclose(dw, out[..., 0] + local["e_post"] * out[..., 1], rtol=1e-6)
    assert np.abs(np.asarray(out[..., 1])).max() > 1e-3  # the gated output is not zero: the check can fail
    with pytest.raises(ValueError, match="gate"):
        MLPRule(inputs=("x",), gate="e_post")


def test_episodes_draw_training_classes_and_evaluation_the_held_out_ones():
    task = FewShot.make(NET, steps=15, shots=5, queries=4, train_classes=[0, 1, 2, 3], test_classes=[6, 7, 8])
    X, labels = load_dataset("digits")
    lookup = {X[i].tobytes(): int(labels[i]) for i in range(len(X))}

    def classes(eps):
        xs = np.concatenate([np.asarray(eps["x"]).reshape(-1, 64), np.asarray(eps["x_query"]).reshape(-1, 64)])
        return {lookup[r.tobytes()] for r in xs}

    train, held = task.sample(jax.random.key(0), 8), task.evaluation_sample(jax.random.key(0), 8)
    assert classes(train) <= {0, 1, 2, 3} and classes(held) == {6, 7, 8}
    e = jax.tree_util.tree_map(lambda a: a[0], train)
    assert e["x"].shape == (15, 64) and e["x_query"].shape == (12, 64)
    np.testing.assert_array_equal(np.asarray(e["target"]).sum(0), [5, 5, 5])  # shots per class, shuffled
    # the labels name the class's place in the episode: a query sample has its training samples' label
    for k in range(3):
        cls = {lookup[np.asarray(r).tobytes()] for r in e["x"][np.asarray(e["target"])[:, k] > 0]}
        qcls = {lookup[np.asarray(r).tobytes()] for r in e["x_query"][np.asarray(e["y_query"]) == k]}
        assert len(cls) == 1 and cls == qcls


def test_augmented_training_classes_are_transformed_copies_and_held_out_classes_stay_as_they_are():
    task = FewShot.make(NET, steps=15, shots=5, queries=4, train_classes=[0, 1, 2, 3], test_classes=[6, 7, 8],
                        augment=["negate", "reverse"])
    assert task.train_classes == [v * 10 + c for v in range(4) for c in range(4)]
    X, labels = load_dataset("digits")
    lookup = {}
    for v, Xv in enumerate((X, -X, X[:, ::-1], -X[:, ::-1])):
        lookup |= {Xv[i].tobytes(): (v, int(labels[i])) for i in range(len(X)) if not (v and labels[i] > 4)}

    def seen(eps):
        return {lookup[r.tobytes()] for r in np.asarray(eps["x"]).reshape(-1, 64)}

    train = seen(task.sample(jax.random.key(0), 64))
    assert {v for v, _ in train} == {0, 1, 2, 3} and {c for _, c in train} == {0, 1, 2, 3}
    assert seen(task.evaluation_sample(jax.random.key(0), 16)) == {(0, 6), (0, 7), (0, 8)}


def test_cosine_survives_gradients_whose_squares_underflow():
    a = jnp.asarray([[1.0, 2.0, -0.5], [3.0, 0.0, 1.0], [1.0, 1.0, 1.0]], jnp.float32)
    b = jnp.asarray([[-2e-25, -4e-25, 1e-25], [1e-30, 0.0, 0.0], [0.0, 0.0, 0.0]], jnp.float32)
    c = np.asarray(cosine(a, b))
    np.testing.assert_allclose(c[:2], [-1.0, 3 / np.sqrt(10)], rtol=1e-5)
    assert np.isnan(c[2])  # no gradient: no angle, left out of the mean


def test_backprop_learns_held_out_classes_and_no_plasticity_stays_at_chance():
    net = LayeredRateNetwork(n_pre=64, n_post=3, hidden=(20,), feedback="symmetric")
    task = FewShot.make(net, steps=30, shots=10, queries=10)
    eps = task.evaluation_sample(jax.random.key(1), 32)
    sgd = SymbolicRule.from_string("-eta*e_post*x", {"eta": 0.3})
    none = SymbolicRule.from_string("0*w")
    assert task.mean_accuracy(sgd, sgd.init(jax.random.key(0)), eps) > 0.55  # chance: 1/3
    assert task.mean_accuracy(none, none.init(jax.random.key(0)), eps) < 0.45
    assert np.mean(task.adam_scores(0.01, eps)) > 0.55


def few_shot_config(**task):
    return {"task": {"name": "few_shot", "n_pre": 64, "n_post": 5, "shots": 10, "steps": 50, **task},
            "network": {"kind": "rate_layers"}, "rule": {"kind": "polynomial", "degree": 2}}


@pytest.mark.parametrize("task,msg", [
    ({"n_pre": 40}, "digits samples have 64 values; set n_pre = 64"),
    ({"steps": 40}, "set steps = 50"),
    ({"test_classes": [4, 5, 6, 7, 8]}, "classes [4] are in both train_classes and test_classes"),
    ({"train_classes": [0, 1, 2]}, "must hold at least n_post = 5 different classes"),
    ({"dataset": "mnist"}, "mnist"),
    ({"augment": ["rotate"]}, "[task] augment = ['rotate']: list each of negate, reverse at most once"),
])
def test_bad_few_shot_configs_are_named(task, msg):
    with pytest.raises(ConfigError) as e:
        config_from_dict(few_shot_config(**task))
    assert msg in str(e.value)


def test_few_shot_needs_the_layered_network():
    d = few_shot_config()
    d["network"] = {"kind": "rate"}
    with pytest.raises(ConfigError, match="rate_layers"):
        config_from_dict(d)


def test_a_polynomial_student_joins_the_front_with_its_prunings_largest_terms_first():
    from discover.rules import PolynomialRule
    from distill.stage import pruned_student

    rule = PolynomialRule(inputs=("x", "e_post"), degree=2, output_scale=1.0, start="-0.5*e_post*x + 0.01*x**2 + 0.2*x")
    params = rule.init(jax.random.key(0))
    X = np.random.default_rng(0).normal(size=(500, 2))
    got = [{str(t): float(c) for t, c in e.as_coefficients_dict().items()}
           for e in pruned_student(rule, params, ("x", "e_post"), X)]
    assert [sorted(g) for g in got] == [["e_post*x"], ["e_post*x", "x"], ["e_post*x", "x", "x**2"]]
    assert got[-1] == pytest.approx({"e_post*x": -0.5, "x": 0.2, "x**2": 0.01}, rel=1e-5)
    assert pruned_student(MLPRule(inputs=("x",)), {}, ("x",), X) == []
