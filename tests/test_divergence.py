"""Rules no config was tuned for (issue 18): diverging teachers and students, the student
``auto`` picks, the verified pick, and the poor-fit warning from discover to the report."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from discover.build import build_student, build_task
from discover.config import ConfigError, config_from_dict
from discover.networks import RateNetwork
from discover.optimizers import batch_loss
from discover.rollout import rollout
from discover.rules import MLPRule, PolynomialRule, SymbolicRule
from discover.rules.auto import pick


def imitate(teacher, steps=100, w_bounds=None, rule=None, **task):
    net = {"kind": "rate", "activation": "linear"}
    if w_bounds:
        net.update(w_min=w_bounds[0], w_max=w_bounds[1])
    return {"task": {"name": "imitate", "steps": steps, "record_every": 5, "n_pre": 6, "n_post": 2,
                     "teacher": {"rule": teacher}, **task},
            "network": net, "rule": rule or {"kind": "auto"},
            "meta": {"learning_rate": 0.01, "steps": 20, "batch": 8, "eval_every": 10, "val_episodes": 16}}


def test_rollout_guard_freezes_a_diverging_episode_and_keeps_gradients_finite():
    net = RateNetwork(n_pre=3, n_post=1)
    rule = SymbolicRule.from_string("a*x*y", {"a": 0.5})  # explodes: y = W x grows each step
    x = jnp.ones((120, 3))
    state = net.init_state(jnp.full((1, 3), 0.5))
    free = rollout(net, rule, rule.init(jax.random.key(0)), state, {"x": x})
    assert not np.isfinite(np.asarray(free.weights)).all()  # without the guard: inf / NaN
    assert not bool(free.diverged)
    out = rollout(net, rule, rule.init(jax.random.key(0)), state, {"x": x}, w_limit=100.0)
    W = np.asarray(out.weights)
    at = int(out.diverged_at)
    assert bool(out.diverged) and 0 < at < 120
    assert np.isfinite(W).all() and np.abs(W).max() <= 100.0
    assert np.all(W[at:] == W[at])  # frozen from the step it would have left the bound
    g = jax.grad(lambda p: rollout(net, rule, p, state, {"x": x}, w_limit=100.0).weights.sum())(
        rule.init(jax.random.key(0)))
    assert np.isfinite(np.asarray(g["core"]["a"]))
    calm = rollout(net, SymbolicRule.from_string("0.001*x*y"), SymbolicRule.from_string("0.001*x*y").init(
        jax.random.key(0)), state, {"x": x}, w_limit=100.0)
    assert int(calm.diverged_at) == -1


def test_teacher_that_diverges_in_few_episodes_is_left_out_not_nan():
    # instar in a linear network: its teacher runs away in a few episodes (negative y)
    cfg = config_from_dict(imitate("0.01*y*(x - w)", steps=200, n_pre=8))
    task = build_task(cfg)
    eps = task.sample(jax.random.key(3), 512)
    valid = np.asarray(eps["valid"])
    assert 0 < (~valid).sum() < 0.05 * valid.size, (~valid).sum()
    assert np.isfinite(np.asarray(eps["W_teacher"])).all()
    kept = task.keep_valid(eps)
    assert task.valid_mask(kept).all() and len(task.valid_mask(kept)) == valid.sum()
    rule = build_student(cfg, task)
    p = rule.init(jax.random.key(0))
    f = batch_loss(task, rule, stats=True)
    loss, n_div, n = f(p, eps)
    assert np.isfinite(float(loss)) and int(n) == valid.sum()
    g = jax.grad(lambda q: batch_loss(task, rule)(q, eps))(p)
    assert all(np.isfinite(np.asarray(a)).all() for a in jax.tree_util.tree_leaves(g))
    note = task.check_episodes(jax.tree_util.tree_map(lambda a: a[:64], eps))
    assert note is None or note.startswith("note: the teacher rule")


@pytest.mark.parametrize("teacher", ["0.01*x*(y - w)", "0.01*y*(x - 0.5)"])
def test_unbounded_teacher_is_named_with_the_fix(teacher, tmp_path):
    from discover import stage

    cfg = config_from_dict(imitate(teacher, steps=200, n_pre=8))
    with pytest.raises(ConfigError) as e:
        stage.run(cfg, tmp_path, progress=False)
    msg = str(e.value)
    assert f"the teacher rule {teacher!r} diverged" in msg
    assert "w_min = 0.0 and w_max = 1.0" in msg and "unbounded" in msg
    assert not (tmp_path / "config.toml").exists()  # refused before anything is written, so
    stage.run(config_from_dict(imitate(teacher, steps=200, n_pre=8, w_bounds=(0.0, 1.0))), tmp_path,
              progress=False)  # the corrected config trains in the same directory


def test_diverging_student_is_counted_and_all_diverged_is_a_clear_error(tmp_path):
    from discover.meta import MetaTrainingError, meta_train

    cfg = config_from_dict(imitate("oja"))
    task = build_task(cfg)
    wild = SymbolicRule.from_string("a*x*y", {"a": 5.0})  # every episode runs away
    eps = task.sample(jax.random.key(0), 8)
    loss, n_div, n = batch_loss(task, wild, stats=True)(wild.init(jax.random.key(0)), eps)
    assert int(n_div) == 8 and float(loss) == pytest.approx(task.diverged_loss)
    with pytest.raises(MetaTrainingError, match="student's weights diverged .* in all 16 validation episodes"):
        meta_train(task, wild, cfg.meta, progress=False)


def test_auto_picks_polynomial_for_small_vocabularies_and_mlp_for_large():
    assert pick(("x", "y", "w"), False) == ("polynomial", {"degree": 3})
    assert pick(("x", "y", "w", "theta"), False) == ("polynomial", {"degree": 2})
    assert pick(("x", "y", "w", "theta", "x_mean"), False)[0] == "mlp"
    spiking = ("s_pre", "s_post", "tr_pre", "tr_post", "w")
    assert pick(spiking, True) == ("polynomial", {"degree": 3})  # spikes gate the heads
    assert pick(spiking, False)[0] == "mlp"
    cfg = config_from_dict(imitate("oja"))
    rule = build_student(cfg, build_task(cfg))
    assert isinstance(rule, PolynomialRule) and rule.degree == 3 and rule.kind == "polynomial"
    assert float(jnp.abs(rule.init(jax.random.key(0))["core"]["coef"]).max()) == 0.0  # starts silent
    big = config_from_dict(imitate("oja", rule={"kind": "auto", "inputs": ["x", "y", "w", "theta", "x_mean"]}))
    assert isinstance(build_student(big, build_task(big)), MLPRule)
    with pytest.raises(ConfigError, match="unknown key 'degree' in \\[rule\\]"):
        config_from_dict(imitate("oja", rule={"kind": "auto", "degree": 2}))


def test_an_imitate_config_naming_only_teacher_and_network_gets_the_auto_student():
    cfg = config_from_dict({"task": {"name": "imitate", "teacher": {"rule": "0.01*y*(x - w)"}},
                            "network": {"kind": "rate"}})
    assert cfg.rule.kind == "auto" and cfg.meta.learning_rate == 0.01 and cfg.meta.steps == 1500
    assert cfg.meta.max_steps == 4500 and cfg.meta.block == 700  # more steps while the validation loss falls
    own = config_from_dict({"task": {"name": "imitate", "teacher": {"rule": "oja"}}, "network": {"kind": "rate"},
                            "rule": {"kind": "mlp"}, "meta": {"steps": 7}})
    assert own.rule.kind == "mlp" and own.meta.steps == 7 and own.meta.max_steps == 0 and own.meta.learning_rate == 3e-3  # its own
    assert config_from_dict({}).rule.kind == "mlp"  # other tasks: unchanged


def test_verified_pick_needs_the_simpler_equation_to_be_as_good_not_within_two_percent():
    from distill.verify import select_verified

    eqs = pd.DataFrame({"id": [0, 1, 2], "complexity": [4, 9, 15]})
    ver = pd.DataFrame({"rule": ["eq0", "eq1", "eq2"], "objective_mean": [0.997, 1.0, 0.99999],
                        "objective_ci_low": [0.995, 1.0, 0.99998], "objective_ci_high": [0.998, 1.0, 1.0]})
    assert select_verified(eqs, ver) == 1  # eq0 is 0.3 % off on every episode
    noisy = ver.assign(objective_ci_low=[0.95, 0.96, 0.96], objective_ci_high=[1.0, 1.0, 1.0])
    assert select_verified(eqs, noisy) == 0  # indistinguishable within the episodes' spread: simplest
    far = noisy.assign(objective_mean=[0.9, 1.0, 1.0])
    assert select_verified(eqs, far) == 1  # beyond the 2 % tolerance


def test_poor_fit_is_said_by_discover_distill_and_the_report(tmp_path, capsys):
    """A student that cannot see what the teacher needs (y): the warning at the end of
    discover, ``poor_fit`` on every equation, and the report opening with it."""
    import tomli_w

    from plasticity.cli import main

    d = imitate("oja", rule={"kind": "auto", "inputs": ["x", "w"]})
    d["meta"].update(steps=60, eval_every=20)
    d["distill"] = {"samples": 500, "episodes": 4, "bootstrap": 5}
    d["verify"] = {"episodes": 4}
    path = tmp_path / "poor.toml"
    path.write_bytes(tomli_w.dumps(d).encode())
    out = tmp_path / "run"
    assert main(["discover", str(path), "--out", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "warning: poor fit: the learned rule explains" in err and "[rule] inputs" in err
    import json

    fit = json.loads((out / "manifest.json").read_text())["fit"]
    assert fit["poor"] and fit["explained"] < 0.9 and fit["threshold"] == 0.9
    assert main(["distill", str(out), "--quiet"]) == 0
    assert "warning: poor fit" in capsys.readouterr().err
    assert pd.read_csv(out / "equations.csv")["poor_fit"].all()
    assert main(["verify", str(out), "--quiet"]) == 0
    assert main(["report", str(out)]) == 0
    md = (out / "report.md").read_text()
    first = md.split("\n## ")[0]  # before the first section
    assert "Warning: poor fit." in first and "% of the target" in first
    assert "Warning: poor fit." in (out / "report.html").read_text()


def test_verification_counts_and_names_the_episodes_an_equation_diverges_in(capsys):
    """Divergence on the side of the equation being verified: ``episode_scores`` gives the
    step each episode's weights left ``[task] max_weight`` (the count goes to
    ``verification.csv``'s ``diverged`` column and a note)."""
    from distill.verify import episode_scores

    task = build_task(config_from_dict(imitate("oja")))
    eps = task.keep_valid(task.sample(jax.random.key(5), 8))
    runaway = SymbolicRule.from_string("0.5*x*y")
    scores, at = episode_scores(task, runaway, runaway.init(jax.random.key(0)), eps)
    assert (at >= 0).all() and (at < 100).all()
    teacher = task.references()["teacher"]
    scores_t, at_t = episode_scores(task, teacher, teacher.init(jax.random.key(0)), eps)
    assert (at_t == -1).all() and scores_t.mean() > scores.mean()
