"""Meta-training: determinism, resume equivalence, full-batch pool, parsimony penalty."""

from __future__ import annotations

import dataclasses
import json

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


class Killed(BaseException):
    """Stands in for SIGKILL: nothing after it runs, nothing catches it."""


def _kill_at(monkeypatch, n: int):
    """Make the n-th file write of the checkpoint (0-based, counting every atomic write
    meta-training makes) die before it lands."""
    import discover.io as dio

    calls = {"n": 0}
    real = dio.atomic_write_bytes

    def write(path, data):
        if calls["n"] == n:
            raise Killed(f"killed before writing {path}")
        calls["n"] += 1
        return real(path, data)

    monkeypatch.setattr(dio, "atomic_write_bytes", write)
    return calls


def test_a_kill_at_any_write_of_a_checkpoint_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    """SIGKILL between any two files of a checkpoint (by injection), then the same command:
    the final parameters equal an uninterrupted run's, bit for bit."""
    cfg, task, rule = setup(lr_schedule="constant", save_every=2)
    straight, hist = meta_train(task, rule, cfg.meta, tmp_path / "straight", config_hash="h", progress=False)
    # writes per checkpoint: params, opt_state, best_params, history (writes 0-3, the
    # folder), then state.json and meta_history.csv (4-5, the commit); 4 checkpoints
    # killed mid-folder (nothing committed yet); after the first commit; mid-folder of the
    # second (the first stays); before its state.json; between its state.json and meta_history.csv
    for n, committed in ((2, None), (5, 2), (8, 2), (10, 2), (11, 4)):
        run = tmp_path / f"kill{n}"
        with monkeypatch.context() as m:
            _kill_at(m, n)
            try:
                meta_train(task, rule, cfg.meta, run, config_hash="h", progress=False)
                raise AssertionError(f"write {n} was never reached")
            except Killed:
                pass
        state = run / "checkpoint" / "state.json"
        assert (json.loads(state.read_text())["step"] if state.exists() else None) == committed, n
        resumed, hist_r = meta_train(task, rule, cfg.meta, run, config_hash="h", progress=False)
        for a, b in zip(leaves(straight), leaves(resumed)):
            np.testing.assert_array_equal(a, b, err_msg=f"killed at write {n}")
        assert list(hist_r["step"]) == list(range(1, 9))
        np.testing.assert_array_equal(hist["meta_loss"], hist_r["meta_loss"])
        assert len(list((run / "checkpoint").glob("step-*"))) == 1  # half-written folders are gone


def test_a_damaged_checkpoint_is_named_not_silently_restarted(tmp_path):
    import pytest

    from discover.io import RunDirError

    cfg, task, rule = setup(lr_schedule="constant", save_every=4)
    half = dataclasses.replace(cfg.meta, steps=4)
    meta_train(task, rule, half, tmp_path / "r", config_hash="h", progress=False)
    (folder,) = (tmp_path / "r" / "checkpoint").glob("step-*")
    (folder / "opt_state.npz").write_bytes(b"not an archive")
    with pytest.raises(RunDirError) as e:
        meta_train(task, rule, cfg.meta, tmp_path / "r", config_hash="h", progress=False)
    assert "opt_state.npz" in str(e.value) and "SHA-256" in str(e.value)


class NaNFromStep3:
    """SGD whose meta-loss turns NaN from meta-step 3 on (a student that overflowed
    after the update of step 2), named by import path as a user's optimizer would be."""

    def __new__(cls, config, task, rule):
        from discover.optimizers import GradientDescent

        class Wrapped(GradientDescent):
            def step(self, params, state, episodes, step):
                new, state, loss, gnorm = super().step(params, state, episodes, step)
                return new, state, jnp.where(step >= 3, jnp.nan, loss), gnorm

        return Wrapped(config, task, rule)

    from discover.optimizers import GradientConfig as Config


def test_the_last_good_checkpoint_holds_evaluated_finite_parameters(tmp_path):
    """The loss turns NaN at meta-step 3: the checkpoint a rerun resumes from is step 2's,
    whose parameters gave a finite meta-loss, not step 3's (the update that diverged)."""
    import pytest

    from discover.meta import MetaTrainingError

    cfg, task, rule = setup(lr_schedule="constant", save_every=1, optimizer="test_meta:NaNFromStep3")
    with pytest.raises(MetaTrainingError) as e:
        meta_train(task, rule, cfg.meta, tmp_path / "r", config_hash="h", progress=False)
    assert "at meta-step 3" in str(e.value) and "The last good checkpoint (step 2)" in str(e.value)
    state = json.loads((tmp_path / "r" / "checkpoint" / "state.json").read_text())
    assert state["step"] == 2 and state["folder"] == "step-00000002"
    # the same updates by the built-in optimizer (an optimizer named by import path runs SGD)
    straight, _ = meta_train(task, rule, dataclasses.replace(cfg.meta, steps=2, optimizer="sgd"), progress=False)
    from discover.io import load_pytree

    saved = load_pytree(tmp_path / "r" / "checkpoint" / state["folder"] / "params.npz", straight)
    for a, b in zip(leaves(straight), leaves(saved)):  # the parameters after two updates, finite
        np.testing.assert_array_equal(a, b)
        assert np.all(np.isfinite(b))


def test_planned_end_extends_while_the_validation_loss_falls():
    from discover.meta import planned_end

    cfg, _, _ = setup(steps=8, max_steps=20, extend_by=4, eval_every=2)
    meta = cfg.meta

    def rows(vals):  # a validation every 2 steps
        return [{"step": 2 * (i + 1), "val_loss": v} for i, v in enumerate(vals)]

    assert planned_end(meta, []) == 8  # nothing evaluated yet: the configured steps
    flat = rows([1.0, 0.5, 0.5, 0.49])  # best 0.5 before step 5, 0.49 after: 2 % < 5 %
    assert planned_end(meta, flat) == 8
    falling = rows([1.0, 0.5, 0.4, 0.3])  # 0.5 -> 0.3: one block more
    assert planned_end(meta, falling) == 12
    assert planned_end(meta, falling + rows([1, 1, 1, 1, 0.2, 0.1])[4:]) == 16  # steps 10, 12 fall again
    assert planned_end(meta, rows([1.0, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005])) == 20  # max_steps
    assert planned_end(dataclasses.replace(meta, extend_until=0.35), falling) == 8  # below the floor
    assert planned_end(dataclasses.replace(meta, max_steps=0), falling) == 8  # no extension
    assert dataclasses.replace(meta, extend_by=0).block == 4  # half of steps, in validation intervals
    import pytest

    from discover.config import ConfigError

    with pytest.raises(ConfigError, match="max_steps = 4 must be >= steps = 8"):
        setup(steps=8, max_steps=4)
    with pytest.raises(ConfigError, match="extend_by = 3 must be a multiple of eval_every = 2"):
        setup(steps=8, max_steps=16, extend_by=3)


def test_training_goes_on_while_the_validation_loss_falls_and_resumes_exactly(tmp_path, monkeypatch, capsys):
    """A student learning Oja from silence still improves at step 8: blocks of 4 more steps
    follow, each with a warm restart of the schedule, and the first 8 steps are those of a
    run without extension; a kill inside an extension block resumes to the same result."""
    cfg, task, rule = setup(max_steps=16, extend_by=4, save_every=2, learning_rate=0.05)
    plain, hist0 = meta_train(task, rule, setup(learning_rate=0.05)[0].meta, progress=False)
    straight, hist = meta_train(task, rule, cfg.meta, tmp_path / "straight", config_hash="h", progress=False)
    assert "the validation loss still falls" in capsys.readouterr().err
    assert 8 < len(hist) <= 16 and list(hist["step"]) == list(range(1, len(hist) + 1))
    np.testing.assert_array_equal(hist["meta_loss"][:8], hist0["meta_loss"])  # the same first 8 steps
    assert hist["val_loss"].dropna().min() < hist0["val_loss"].dropna().min()
    stop, hist_s = meta_train(task, rule, dataclasses.replace(cfg.meta, extend_min_gain=100.0), progress=False)
    assert len(hist_s) == 8  # a gain no block can reach: no extension
    run = tmp_path / "killed"
    with monkeypatch.context() as m:
        _kill_at(m, 6 * 5 + 1)  # 6 writes per checkpoint every 2 steps: inside the checkpoint of step 12
        try:
            meta_train(task, rule, cfg.meta, run, config_hash="h", progress=False)
            raise AssertionError("the kill was never reached")
        except Killed:
            pass
    assert json.loads((run / "checkpoint" / "state.json").read_text())["step"] == 10
    resumed, hist_r = meta_train(task, rule, cfg.meta, run, config_hash="h", progress=False)
    for a, b in zip(leaves(straight), leaves(resumed)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(hist["meta_loss"], hist_r["meta_loss"])


def test_backoff_goes_back_to_the_last_validated_state_and_halves_the_step(tmp_path):
    """At a meta learning rate of 10 the student runs away at the first validation; with
    ``[meta] backoff`` training goes back, halves the step until it holds and finishes; the
    result is the run at the learning rate it ended with (Adam's step scales with it), and a
    run interrupted after the back-offs resumes to exactly the uninterrupted result."""
    import pytest

    from discover.config import ConfigError
    from discover.meta import MetaTrainingError

    cfg, task, rule = setup(lr_schedule="constant", learning_rate=10.0, steps=12, eval_every=2, save_every=2)
    with pytest.raises(MetaTrainingError) as e:
        meta_train(task, rule, cfg.meta, progress=False)
    assert "[meta] backoff = 3" in str(e.value)  # the error says the option exists

    meta = dataclasses.replace(cfg.meta, backoff=8)
    p, hist = meta_train(task, rule, meta, tmp_path / "a", config_hash="h", progress=False)
    state = json.loads((tmp_path / "a" / "checkpoint" / "state.json").read_text())
    done = state["backoffs"]
    assert 1 <= len(done) < 8 and all(b["back_to"] == 0 for b in done)
    assert [b["scale"] for b in done] == [0.5 ** (k + 1) for k in range(len(done))]
    assert state["scale"] == done[-1]["scale"] and state["step"] == 12
    assert list(hist["step"]) == list(range(1, 13)) and hist["val_diverged"].max() < 4
    # from step 0 at half the step, k times: the run at that learning rate from the start
    at = dataclasses.replace(cfg.meta, learning_rate=10.0 * done[-1]["scale"])
    q, _ = meta_train(task, rule, at, progress=False)
    for a, b in zip(leaves(p), leaves(q)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)

    # interrupted after the back-offs (a 6-step run of the same settings), then resumed
    meta_train(task, rule, dataclasses.replace(meta, steps=6), tmp_path / "b", config_hash="h", progress=False)
    assert json.loads((tmp_path / "b" / "checkpoint" / "state.json").read_text())["backoffs"] == done
    r, hist_b = meta_train(task, rule, meta, tmp_path / "b", config_hash="h", progress=False)
    for a, b in zip(leaves(p), leaves(r)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(hist["meta_loss"], hist_b["meta_loss"])

    # too few back-offs: the error says how many were used
    with pytest.raises(MetaTrainingError, match=r"already went back 1 time\(s\) .*backoff = 1"):
        meta_train(task, rule, dataclasses.replace(cfg.meta, learning_rate=1e4, backoff=1), progress=False)
    with pytest.raises(ConfigError, match="backoff"):
        setup(backoff=-1)
