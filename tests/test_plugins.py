"""Plug-ins: a rule class and a task from outside the package, named by import path, go
through meta-training, the run directory and back; registries give the messages."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discover.build import build_task, load_rule
from discover.config import ConfigError, config_from_dict
from discover.registry import RULES, TASKS, PluginError
from discover.rollout import rollout
from discover.rules import SymbolicRule, canonical_rule

RULE_MODULE = '''
from dataclasses import dataclass

import jax.numpy as jnp

from discover.rules import Rule


@dataclass(frozen=True)
class TwoTerm(Rule):
    """dw = a*x*y - b*w, with learnable a and b (a rule class of a user's own)."""

    scale: float = 0.01

    def init_core(self, key):
        return {"a": jnp.float32(0.5), "b": jnp.float32(0.1)}

    def apply(self, core, local):
        return self.scale * (core["a"] * local["x"] * local["y"] - core["b"] * local["w"])
'''

CFG = {"name": "plugin", "task": {"name": "imitate", "steps": 100, "record_every": 5, "n_pre": 6, "n_post": 2,
                                  "teacher": {"rule": "hebb_decay"}},
       "rule": {"kind": "user_rules:TwoTerm", "inputs": ["x", "y", "w"]},
       "meta": {"learning_rate": 0.05, "steps": 150, "batch": 8, "eval_every": 50, "val_episodes": 8,
                "lr_schedule": "constant"}}


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "user_rules.py").write_text(RULE_MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("user_rules", None)


def test_a_rule_class_from_outside_the_package_is_trained_saved_and_loaded(user_module):
    from discover import stage

    cfg = config_from_dict(CFG)
    assert cfg.rule.kind == "user_rules:TwoTerm"
    rule, params, history = stage.run(cfg, user_module / "run", progress=False)
    assert type(rule).__module__ == "user_rules"
    # trained: the teacher is eta*(x*y - lam*w), eta = 0.01, lam = 0.5 (Dayan & Abbott 2001)
    a, b = float(params["core"]["a"]), float(params["core"]["b"])
    assert a == pytest.approx(1.0, rel=0.05) and b == pytest.approx(0.5, rel=0.05), (a, b)
    assert history["val_loss"].dropna().iloc[-1] < 0.01
    # saved: rule.json names the class by import path and keeps its own field
    spec = json.loads((user_module / "run" / "rule" / "rule.json").read_text())
    assert spec["kind"] == "user_rules:TwoTerm" and spec["scale"] == 0.01
    # loaded back, here and in a fresh process (the working directory is importable)
    back, bparams = load_rule(user_module / "run")
    assert back == rule and float(bparams["core"]["a"]) == a
    code = ("from discover.build import load_rule; r, p = load_rule('run'); "
            "print(type(r).__name__, float(p['core']['a']), float(p['core']['b']))")
    out = subprocess.run([sys.executable, "-c", code], cwd=user_module, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    name, a2, b2 = out.stdout.split()
    assert name == "TwoTerm" and float(a2) == a and float(b2) == b


def test_import_paths_that_do_not_resolve_are_config_errors(user_module):
    with pytest.raises(ConfigError, match=r"\[rule\] kind = 'user_rules:Nope'.*has no 'Nope'"):
        config_from_dict({**CFG, "rule": {"kind": "user_rules:Nope"}})
    with pytest.raises(ConfigError, match=r"\[task\] name = 'no_such_module:T'.*cannot import module"):
        config_from_dict({"task": {"name": "no_such_module:T"}})
    with pytest.raises(PluginError, match="is not a known task; choose one of 'oja_pca', 'imitate'"):
        TASKS.get("nosuch")
    assert RULES.key_of(SymbolicRule) == "symbolic"


def test_a_task_defined_here_runs_with_every_builtin_piece():
    """A 14-line task: its own config keys are the only valid ones, and the rollout it
    receives is the one every stage uses."""
    from dataclasses import dataclass

    import plasticity as pl

    @TASKS.register("test_target_rate")
    class TargetRate(pl.Task):
        @dataclass(frozen=True)
        class Config(pl.TaskConfig):
            target: float = 1.5

        def sample(self, key, n):
            x = jax.random.uniform(key, (n, self.steps, self.network.n_pre))
            return {"x": x, "W0": jnp.full((n, self.network.n_post, self.network.n_pre), 0.1)}

        def loss(self, rollout, episode):
            return jnp.mean((rollout.activity[-2:] / self.record_every - self.config.target) ** 2)

    with pytest.raises(ConfigError, match=r"unknown key 'eigen_decay' in \[task\] \(for name = 'test_target_rate'\)"):
        config_from_dict({"task": {"name": "test_target_rate", "eigen_decay": 0.5}})
    cfg = config_from_dict({"task": {"name": "test_target_rate", "target": 3.0, "steps": 20, "record_every": 5}})
    task = build_task(cfg)
    assert isinstance(task, TargetRate) and task.config.target == 3.0
    rule = canonical_rule("hebb_decay")
    p = rule.init(jax.random.key(0))
    ep = jax.tree_util.tree_map(lambda a: a[0], task.sample(jax.random.key(0), 1))
    direct = rollout(task.network, rule, p, task.network.init_state(ep["W0"]), {"x": ep["x"]}, record_every=5)
    assert float(task.episode_loss(rule, p, ep)[0]) == pytest.approx(float(task.loss(direct, ep)))


def test_symbolic_rules_compare_by_their_equation():
    """Equality and hash see the expression: a jit static argument gets the right rule."""
    a, b = SymbolicRule.from_string("0.01*x*y"), SymbolicRule.from_string("-0.01*x*y")
    assert a != b and hash(a) != hash(b) and a == SymbolicRule.from_string("0.01*x*y")

    f = jax.jit(lambda rule, v: rule({"core": {}}, {"x": v, "y": v}), static_argnums=0)
    v = jnp.float32(2.0)
    assert float(f(a, v)) == pytest.approx(0.04) and float(f(b, v)) == pytest.approx(-0.04)


def test_rollout_records_weights_activity_and_locals():
    """One rollout, several records: blocks of record_every steps, locals per step, and
    `until` freezes the state (variable-length episodes in one vmap)."""
    from discover.networks import RateNetwork

    net, rule = RateNetwork(n_pre=3, n_post=2), canonical_rule("oja")
    p = rule.init(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (20, 3))
    s0 = net.init_state(jnp.full((2, 3), 0.3))
    full = rollout(net, rule, p, s0, {"x": x}, record_locals=True)
    blocked = rollout(net, rule, p, s0, {"x": x}, record_every=5)
    np.testing.assert_allclose(blocked.weights, full.weights[4::5], rtol=1e-6)
    np.testing.assert_allclose(blocked.activity, full.activity.reshape(4, 5, 2).sum(1), rtol=1e-5)
    assert full.local["x"].shape == (20, 2, 3)
    cut = rollout(net, rule, p, s0, {"x": x}, until=7)
    np.testing.assert_array_equal(cut.final["W"], full.weights[6])


def test_cli_checks_the_backend_before_any_work(tmp_path):
    """`plasticity run CONFIG --backend foo` used to meta-train for minutes first."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(textwrap.dedent("""
        [meta]
        steps = 100000
    """))
    out = subprocess.run([sys.executable, "-m", "plasticity.cli", "run", str(cfg), "--backend", "foo",
                          "--out", str(tmp_path / "r"), "--quiet"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "--backend 'foo'" in out.stderr and "'sparse', 'operon', 'pysr'" in " ".join(out.stderr.split())
    assert not (tmp_path / "r" / "checkpoint").exists()


def test_installed_packages_add_names_through_entry_points(monkeypatch):
    """An entry point in the group `plasticity.tasks` is a task name like the built-ins."""
    from importlib.metadata import EntryPoint

    from discover import registry

    reg = registry.Registry("plasticity.test_tasks", "task", "[task] name")
    ep = EntryPoint("oja_again", "discover.tasks.oja_pca:OjaPCA", "plasticity.test_tasks")
    monkeypatch.setattr(registry, "entry_points", lambda group: [ep] if group == "plasticity.test_tasks" else [])
    from discover.tasks.oja_pca import OjaPCA

    assert reg.get("oja_again") is OjaPCA and "oja_again" in reg.names()


def test_resolved_config_holds_only_what_applies_with_lists_on_one_line():
    import tomllib

    from discover.config import dumps_config

    text = dumps_config(config_from_dict({"network": {"w_max": 2.0}, "rule": {"hidden": [8, 8]}}))
    assert "hidden = [8, 8]\n" in text and "scale_range = [0.5, 2.0]\n" in text
    for key in ("tau_m", "teacher", "population", "w0_range", "degree"):  # other tasks', networks', ...
        assert f"\n{key} =" not in text, key
    back = config_from_dict(tomllib.loads(text))
    assert back == config_from_dict({"network": {"w_max": 2.0}, "rule": {"hidden": [8, 8]}})


def test_backend_options_reach_the_backend_and_unknown_ones_are_refused():
    from distill.backends import get_backend
    from distill.stage import check_config

    cfg = config_from_dict({"distill": {"backend": "operon", "backend_options": {"max_time": 3}}})
    check_config(cfg)
    assert get_backend(cfg.distill.backend, **cfg.distill.backend_options).max_time == 3
    with pytest.raises(ConfigError, match=r"\[distill.backend_options\] 'max_tme' is not an option of the sparse"):
        check_config(config_from_dict({"distill": {"backend_options": {"max_tme": 3}}}))
    with pytest.raises(ConfigError, match=r"\[verify\] canonical names 'nosuch'"):
        check_config(config_from_dict({"verify": {"canonical": ["nosuch"]}}))
