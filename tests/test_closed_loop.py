"""Closed-loop imitation from spikes only, and the protocol command line."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from discover.build import build_student, build_task
from discover.config import ConfigError, config_from_dict

BASE = {"task": {"name": "imitate", "steps": 200, "record_every": 10, "n_pre": 50, "n_post": 3,
                 "pre_rate_range": [20.0, 30.0], "observe": "spikes",
                 "teacher": {"rule": "stdp_pair", "params": {"A_plus": 0.05, "A_minus": 0.0525}}},
        "network": {"kind": "lif", "post_mode": "closed", "w_scale": 6.0},
        "rule": {"kind": "mlp", "hidden": [8], "output_scale": 0.05, "learn_timescales": True},
        "meta": {"batch": 2, "val_episodes": 2}}


def setup(**task):
    cfg = config_from_dict({**BASE, "task": {**BASE["task"], **task}})
    task_ = build_task(cfg)
    return cfg, task_, task_.teacher


def test_spikes_only_loss_is_zero_for_the_teacher_and_positive_otherwise():
    cfg, task, teacher = setup()
    eps = task.sample(jax.random.key(0), 2)
    assert float(eps["S_teacher"].std()) > 0  # the teacher's neurons fire
    tl = jax.vmap(lambda e: task.episode_loss(teacher, teacher.init(jax.random.key(0)), e)[0])(eps)
    np.testing.assert_allclose(np.asarray(tl), 0.0, atol=1e-10)
    student = build_student(cfg, task)
    sl = jax.vmap(lambda e: task.episode_loss(student, student.init(jax.random.key(1)), e)[0])(eps)
    assert np.all(np.asarray(sl) > 1e-3)


def test_meta_gradient_flows_through_spikes_to_rule_and_time_constants():
    cfg, task, teacher = setup()
    student = build_student(cfg, task)
    params = student.init(jax.random.key(1))
    eps = task.sample(jax.random.key(0), 2)
    grads = jax.grad(lambda p: jnp.mean(jax.vmap(lambda e: task.episode_loss(student, p, e)[0])(eps)))(params)
    leaves = jax.tree_util.tree_leaves(grads["core"])
    assert all(np.all(np.isfinite(np.asarray(g))) for g in leaves)
    assert sum(float(jnp.abs(g).sum()) for g in leaves) > 0
    # learned in log space: the trace time constants get a gradient too
    assert abs(float(grads["log_tau"]["tau_pre"])) > 0


def test_observation_noise_and_unrecorded_neurons():
    _, noisy, teacher = setup(obs_noise=0.5)
    eps = noisy.sample(jax.random.key(0), 2)
    tl = jax.vmap(lambda e: noisy.episode_loss(teacher, teacher.init(jax.random.key(0)), e)[0])(eps)
    assert np.all(np.asarray(tl) > 0.05)  # the noise cannot be fitted
    _, partial, _ = setup(unrecorded_fraction=0.5)
    assert partial.recorded == 2  # round(3 * 0.5) = 2 of 3 recorded
    with pytest.raises(ConfigError, match="unrecorded_fraction"):
        setup(unrecorded_fraction=1.0)
    with pytest.raises(ConfigError, match="spiking network"):
        config_from_dict({**BASE, "network": {"kind": "rate"}})


def test_protocol_command(tmp_path, capsys):
    from plasticity.cli import main

    out = tmp_path / "w.csv"
    assert main(["protocol", "pairing", "--rule", "stdp_pair", "--out", str(out)]) == 0
    df = pd.read_csv(out)
    assert list(df.columns) == ["dt_ms", "dw"]
    row = df.set_index("dt_ms")
    assert row.loc[20.0, "dw"] == pytest.approx(0.01 * math.exp(-1), rel=1e-4)
    assert row.loc[-20.0, "dw"] == pytest.approx(-0.0105 * math.exp(-1), rel=1e-4)
    assert (tmp_path / "w.png").exists()
    assert main(["protocol", "frequency", "--rule", "A*tr_pre*s_post - B*tr_post*s_pre",
                 "--param", "A=0.01", "--param", "B=0.0105", "--out", str(tmp_path / "f.csv")]) == 0
    assert list(pd.read_csv(tmp_path / "f.csv").columns) == ["freq_hz", "lag_ms", "dw"]
    assert main(["protocol", "pairing", "--rule", "stdp_pair", "--param", "A_plus=abc"]) == 2
    assert "NAME=VALUE" in capsys.readouterr().err


def test_truncated_backprop_bounds_closed_loop_gradients():
    """Through 3,000 closed-loop steps the full meta-gradient explodes (positive feedback
    W -> membrane -> surrogate spike -> STDP -> W) and even has the wrong sign; truncated
    backprop (``[meta] truncate_every``) keeps it bounded and right: more A_plus, larger
    final weights; more A_minus, smaller."""
    base = {**BASE, "task": {**BASE["task"], "steps": 3000, "n_post": 2, "observe": "weights"},
            "rule": {"kind": "polynomial", "degree": 2}}
    grads = {}
    for trunc in (0, 100):
        cfg = config_from_dict({**base, "meta": {"truncate_every": trunc}})
        task = build_task(cfg)
        teacher = task.teacher
        eps = task.sample(jax.random.key(0), 2)
        p = teacher.init(jax.random.key(0))

        def final_w(p, task=task, teacher=teacher, eps=eps, trunc=trunc):
            return jnp.mean(jax.vmap(lambda e: task.simulate(teacher, p, e, chunk=trunc or None, truncate=bool(trunc))
                                     .weights[-1].mean())(eps))

        g = jax.grad(final_w)(p)
        grads[trunc] = {k: float(v) for k, v in g["core"].items()}
    t = grads[100]
    assert t["A_plus"] > 0 > t["A_minus"]
    assert max(abs(v) for v in t.values()) < 100
    assert max(abs(v) for v in grads[0].values()) > 100 * max(abs(v) for v in t.values())


def test_detached_feedback_keeps_the_forward_pass_and_bounds_the_gradient():
    """``[network] feedback_gradient = false``: the same spikes and weights as the full
    closed loop, and through 3,000 steps a bounded meta-gradient of the right sign that,
    unlike truncated backprop, accumulates the weight drift of the whole episode."""
    base = {**BASE, "task": {**BASE["task"], "steps": 3000, "n_post": 2, "observe": "weights"}}
    out = {}
    for fb in (True, False):
        cfg = config_from_dict({**base, "network": {**BASE["network"], "feedback_gradient": fb}})
        task = build_task(cfg)
        teacher = task.teacher
        eps = task.sample(jax.random.key(0), 2)
        p = teacher.init(jax.random.key(0))

        def final_w(p, task=task, teacher=teacher, eps=eps):
            return jnp.mean(jax.vmap(lambda e: task.simulate(teacher, p, e).weights[-1].mean())(eps))

        w, g = jax.value_and_grad(final_w)(p)
        out[fb] = float(w), {k: float(v) for k, v in g["core"].items()}
    assert out[True][0] == out[False][0]  # forward unchanged
    g = out[False][1]
    assert g["A_plus"] > 0 > g["A_minus"]
    assert max(abs(v) for v in g.values()) < 100
    assert max(abs(v) for v in out[True][1].values()) > 100 * max(abs(v) for v in g.values())


def test_modulated_inputs_follow_their_rate_modulation():
    """``pre_modulation_range``: each input's spike count over time follows
    ``1 + m sin(2 pi f t + phi_i)``; without it, rates are constant and the spikes are the
    ones drawn before the option existed."""
    _, flat, _ = setup(steps=2000)
    _, mod, _ = setup(steps=2000, pre_modulation_range=[1.0, 1.0], pre_frequency_range=[5.0, 5.0])
    key = jax.random.key(3)
    e_flat = flat._inputs_one(key)
    e_mod = mod._inputs_one(key)
    np.testing.assert_array_equal(np.asarray(flat._inputs_one(key)["s_pre"]), np.asarray(e_flat["s_pre"]))
    s = np.asarray(e_mod["s_pre"])  # [T, n_pre]
    t = np.arange(2000) * 1e-3
    # the spikes' mean phase against a 5 Hz clock is well defined (vector strength >> chance)
    phase = np.exp(2j * np.pi * 5.0 * t)[:, None]
    vs = np.abs((s * phase).sum(0)) / s.sum(0)
    assert vs.mean() > 0.3  # depth 1: vector strength 0.5; Poisson chance ~ 1/sqrt(50 spikes) ~ 0.14
    s0 = np.asarray(e_flat["s_pre"])
    assert (np.abs((s0 * phase).sum(0)) / s0.sum(0)).mean() < 0.25
    with pytest.raises(ConfigError, match="pre_modulation_range must be within"):
        setup(pre_modulation_range=[0.5, 1.5])
