"""Meta-training: determinism, resume equivalence, full-batch pool, parsimony penalty."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from discover.build import build_student, build_task
from discover.config import config_from_dict
from discover.meta import meta_train

CFG = {"task": {"name": "imitate", "steps": 40, "record_every": 4, "n_pre": 4, "n_post": 2,
                "teacher": {"rule": "oja", "params": {"eta": 0.01}}},
       "rule": {"kind": "polynomial", "degree": 2},
       "meta": {"steps": 8, "batch": 4, "val_episodes": 4, "eval_every": 2, "save_every": 4, "learning_rate": 0.01}}


def setup(**meta):
    cfg = config_from_dict({**CFG, "meta": {**CFG["meta"], **meta}})
    task = build_task(cfg)
    return cfg, task, build_student(cfg, task)


def leaves(tree):
    return [np.asarray(a) for a in jax.tree_util.tree_leaves(tree)]


def test_same_seed_same_result():
    cfg, task, rule = setup()
    p1, h1 = meta_train(task, rule, cfg.meta, progress=False)
    p2, h2 = meta_train(task, rule, cfg.meta, progress=False)
    for a, b in zip(leaves(p1), leaves(p2)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(h1["meta_loss"], h2["meta_loss"])
    cfg3, _, _ = setup(seed=1)
    p3, _ = meta_train(task, rule, cfg3.meta, progress=False)
    assert any(not np.array_equal(a, b) for a, b in zip(leaves(p1), leaves(p3)))


def test_resume_equals_uninterrupted(tmp_path):
    # an interruption after 4 of 8 steps, emulated by a 4-step run of the same settings (a
    # constant schedule, since a cosine schedule depends on the total number of steps)
    cfg, task, rule = setup(lr_schedule="constant")
    straight, hist = meta_train(task, rule, cfg.meta, tmp_path / "a", progress=False)
    half = dataclasses.replace(cfg.meta, steps=4)
    meta_train(task, rule, half, tmp_path / "b", config_hash="h", progress=False)
    resumed, hist_b = meta_train(task, rule, cfg.meta, tmp_path / "b", config_hash="h", progress=False)
    for a, b in zip(leaves(straight), leaves(resumed)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
    assert list(hist_b["step"]) == list(range(1, 9))
    np.testing.assert_allclose(hist["meta_loss"], hist_b["meta_loss"], rtol=1e-6)


def test_fixed_pool_full_batch_is_deterministic_objective():
    cfg, task, rule = setup(train_episodes=4, batch=4, lr_schedule="constant")
    _, h = meta_train(task, rule, cfg.meta, progress=False)
    # with a fixed full batch the training loss is the same function every step: it decreases
    assert h["meta_loss"].iloc[-1] < h["meta_loss"].iloc[0]


def test_dw_penalty_shrinks_rule_energy():
    cfg0, task, rule = setup(steps=30)
    cfg1, _, _ = setup(steps=30, dw_penalty=10.0)
    p0, _ = meta_train(task, rule, cfg0.meta, progress=False)
    p1, _ = meta_train(task, rule, cfg1.meta, progress=False)
    eps = task.sample(jax.random.key(3), 4)

    def energy(p):
        return float(jax.vmap(lambda e: task.episode_loss(rule, p, e)[1])(eps).mean())

    assert energy(p1) < energy(p0)


def test_tau_learning_rate_is_its_own():
    """``[meta] tau_learning_rate``: Adam's first step moves each parameter by about its
    learning rate, so the log time constants move by theirs and the core by its own."""
    import optax

    from discover.optimizers import GradientConfig, make_optimizer

    params = {"core": {"a": jnp.zeros(3)}, "log_tau": {"tau_pre": jnp.zeros(())}}
    grads = jax.tree_util.tree_map(jnp.ones_like, params)
    for tau_lr, expect in ((0.0, 1e-3), (0.1, 0.1)):
        opt = make_optimizer(GradientConfig(learning_rate=1e-3, tau_learning_rate=tau_lr, lr_schedule="constant"))
        upd, _ = opt.update(grads, opt.init(params), params)
        new = optax.apply_updates(params, upd)
        np.testing.assert_allclose(np.asarray(new["core"]["a"]), -1e-3, rtol=1e-3)
        np.testing.assert_allclose(float(new["log_tau"]["tau_pre"]), -expect, rtol=1e-3)


# ----------------------------------------------------------------------------- evolution strategies


def test_cma_es_recovers_a_symbolic_students_coefficients():
    """CMA-ES (evosax) on ``a*x*y - b*w*y**2`` imitating Oja (eta = 0.01): forward
    simulations only, no gradient; both coefficients come out within 5 %."""
    from discover.rules import SymbolicRule

    cfg, task, _ = setup(optimizer="cma_es", population=12, es_sigma=0.005, steps=60, eval_every=10,
                         batch=4)
    student = SymbolicRule.from_string("a*x*y - b*w*y**2", {"a": 0.005, "b": 0.02}, label="neural")
    params, hist = meta_train(task, student, cfg.meta, progress=False)
    core = {k: float(v) for k, v in params["core"].items()}
    assert abs(core["a"] - 0.01) < 5e-4 and abs(core["b"] - 0.01) < 5e-4, core
    assert hist["val_loss"].dropna().iloc[-1] < 0.01 * hist["val_loss"].dropna().iloc[0]


def test_es_searches_only_the_time_constants_the_rule_reads(tmp_path):
    """A pair rule learns tau_pre, tau_post; the slow traces' constants are not searched
    (they cannot change the objective), and an interrupted ES run resumes exactly."""
    from discover.optimizers import searched
    from discover.rules import PolynomialRule

    rule = PolynomialRule(inputs=("s_pre", "s_post", "tr_pre", "tr_post"), degree=1, event_driven=True,
                          learn_timescales=True)
    assert set(searched(rule.init(jax.random.key(0)), rule)["log_tau"]) == {"tau_pre", "tau_post"}
    cfg, task, student = setup(optimizer="open_es", population=8, es_sigma=0.1)
    straight, _ = meta_train(task, student, cfg.meta, tmp_path / "a", progress=False)
    meta_train(task, student, dataclasses.replace(cfg.meta, steps=4), tmp_path / "b", config_hash="h",
               progress=False)
    resumed, _ = meta_train(task, student, cfg.meta, tmp_path / "b", config_hash="h", progress=False)
    for a, b in zip(leaves(straight), leaves(resumed)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
    assert any(np.any(a != 0) for a in leaves(straight["core"]))
