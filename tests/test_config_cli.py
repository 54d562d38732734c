"""Config validation (``discover.config``) and the command line (``plasticity.cli``).

Bad input must end with exit code 2, a one-paragraph ``error:`` message naming the field
and the fix, no traceback, and nothing already written lost (DESIGN.md section 6).
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from discover.build import build_network, build_task
from discover.config import (
    Config,
    ConfigError,
    TaskConfig,
    config_from_dict,
    config_to_dict,
    load_config,
)
from discover.rules import CANONICAL
from plasticity.cli import main

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs").glob("*.toml"))
_SCRIPT = Path(sys.executable).parent / "plasticity"  # the console script of this environment
PLASTICITY = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "plasticity.cli"]

TINY = """\
name = "tiny"
[task]
name = "oja_pca"
steps = 20
n_pre = 3
[rule]
kind = "polynomial"
inputs = ["x", "y", "w"]
degree = 2
[meta]
steps = 3
batch = 2
val_episodes = 2
eval_every = 1
save_every = 1
[distill]
samples = 40
episodes = 2
bootstrap = 5
[verify]
episodes = 2
"""

IMITATE = """\
name = "imitate_tiny"
[task]
name = "imitate"
steps = 10
n_pre = 2
n_post = 1
[task.teacher]
rule = {rule}
{params}
[network]
kind = "rate"
[rule]
kind = "polynomial"
degree = 3
[meta]
steps = 6
batch = 2
val_episodes = 2
eval_every = 1
save_every = {save_every}
learning_rate = {lr}
lr_schedule = "constant"
"""


def write(tmp_path: Path, text: str, name: str = "cfg.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def imitate_toml(rule='"oja"', params="", save_every=1, lr=0.003):
    return IMITATE.format(rule=rule, params=params, save_every=save_every, lr=lr)


def assert_user_error(code, err, *fragments):
    """Exit 2, one paragraph starting with 'error:', no traceback, the fragments present."""
    assert code == 2
    assert err.startswith("error: "), err
    assert "Traceback" not in err
    assert "\n\n" not in err.strip(), err
    flat = " ".join(err.split())
    for f in fragments:
        assert " ".join(f.split()) in flat, (f, err)


def assert_path_in(err, path):
    """``path`` is named (ignoring where the message was wrapped; see the xfail test on wrapping)."""
    assert str(path) in "".join(err.split()), (path, err)


# ----------------------------------------------------------------------------- config_from_dict


def test_empty_config_is_the_default():
    assert config_from_dict({}) == Config()


def test_unknown_key_names_the_key_the_section_and_the_valid_keys():
    with pytest.raises(ConfigError) as e:
        config_from_dict({"task": {"stepz": 3}})
    msg = str(e.value)
    assert msg.startswith("unknown key 'stepz' in [task] (for name = 'oja_pca'); valid keys there are: ")
    for f in dataclasses.fields(TaskConfig):
        assert f.name in msg
    # each task has its own keys: imitate's are not valid for oja_pca, and the reverse
    with pytest.raises(ConfigError, match=r"unknown key 'w0_range' in \[task\] \(for name = 'oja_pca'\)"):
        config_from_dict({"task": {"w0_range": [0.1, 0.2]}})
    with pytest.raises(ConfigError, match=r"unknown key 'eigen_decay' in \[task\] \(for name = 'imitate'\)"):
        config_from_dict({"task": {"name": "imitate", "eigen_decay": 0.5, "teacher": {"rule": "oja"}}})
    with pytest.raises(ConfigError, match=r"unknown key 'tau_m' in \[network\] \(for kind = 'rate'\)"):
        config_from_dict({"network": {"tau_m": 10.0}})
    with pytest.raises(ConfigError, match=r"unknown key 'population' in \[meta\] \(for optimizer = 'adam'\)"):
        config_from_dict({"meta": {"population": 8}})
    with pytest.raises(ConfigError, match="unknown key 'nmae' in the top level"):
        config_from_dict({"nmae": "x"})
    with pytest.raises(ConfigError, match=r"unknown key 'parms' in \[task.teacher\]; valid keys there are: rule, par"):
        config_from_dict({"task": {"name": "imitate", "teacher": {"rule": "oja", "parms": {}}}})


@pytest.mark.parametrize(
    "data,message",
    [
        ({"meta": {"steps": "ten"}}, "[meta] steps must be an integer, not 'ten'"),
        ({"meta": {"steps": 1.5}}, "[meta] steps must be an integer, not 1.5"),
        ({"meta": {"batch": True}}, "[meta] batch must be an integer, not True"),
        ({"meta": {"learning_rate": "fast"}}, "[meta] learning_rate must be a number, not 'fast'"),
        ({"rule": {"learn_timescales": 1}}, "[rule] learn_timescales must be true or false or a list, e.g. [1, 2], not 1"),
        ({"rule": {"hidden": 16}}, "[rule] hidden must be a list, e.g. [1, 2], not 16"),
        ({"rule": {"hidden": [16, "a"]}}, "[rule] hidden must be an integer, not 'a'"),
        ({"task": "imitate"}, "task must be a table ([task]), not 'imitate'"),
        ({"task": {"name": "imitate", "teacher": {"rule": "oja", "params": {"eta": "big"}}}},
         "[task.teacher.params] eta must be a number, not 'big'"),
        ({"name": 3}, "name must be a string, not 3"),
    ],
)
def test_wrong_types(data, message):
    with pytest.raises(ConfigError) as e:
        config_from_dict(data)
    assert str(e.value) == message


@pytest.mark.parametrize(
    "data,message",
    [
        ({"network": {"kind": "quantum"}}, "[network] kind = 'quantum' is not a known network; choose one of "
         "'rate', 'rate_lateral', 'lif', 'rate_layers', or name your own class by import path, e.g. \"my_module:MyClass\"."),
        ({"rule": {"kind": "transformer"}}, "[rule] kind = 'transformer' is not a known rule; choose one of "
         "'mlp', 'polynomial', 'symbolic', 'auto', or name your own class by import path, e.g. \"my_module:MyClass\"."),
        ({"rule": {"kind": "polynomal"}}, "[rule] kind = 'polynomal' is not a known rule; choose one of "
         "'mlp', 'polynomial', 'symbolic', 'auto', or name your own class by import path, e.g. \"my_module:MyClass\". "
         "Did you mean 'polynomial'?"),
        ({"meta": {"batch": 0}}, "[meta] batch must be > 0, got 0"),
        ({"meta": {"learning_rate": -1}}, "[meta] learning_rate must be > 0, got -1.0"),
        ({"task": {"name": "imitate", "w0_range": [0.8, 0.2]}},
         "[task] w0_range must be [low, high] with low <= high, got [0.8, 0.2]"),
        ({"task": {"name": "imitate", "w0_range": [0.1]}},
         "[task] w0_range must be [low, high] with low <= high, got [0.1]"),
        ({"task": {"scale_range": [2.0, 1.0]}}, "[task] scale_range must be [low, high] with low <= high, got [2.0, 1.0]"),
    ],
)
def test_bad_values(data, message):
    with pytest.raises(ConfigError) as e:
        config_from_dict(data)
    assert str(e.value) == message


@pytest.mark.parametrize(
    "data,fragment",
    [
        ({"task": {"name": "imitate"}}, "task imitate needs a teacher: add [task.teacher] rule"),
        ({"network": {"kind": "lif"}}, "task oja_pca needs a linear rate neuron"),
        ({"task": {"n_post": 2}}, "task oja_pca has one output neuron: set [task] n_post = 1"),
        ({"task": {"steps": 10, "record_every": 3}}, "[task] steps = 10 must be a multiple of record_every = 3"),
        ({"task": {"steps": 10}, "meta": {"checkpoint_every": 4}}, "[meta] checkpoint_every = 4 must divide"),
        ({"distill": {"event_fraction": 1.5}}, "[distill] event_fraction must be in [0, 1]"),
    ],
)
def test_inconsistent_configs(data, fragment):
    with pytest.raises(ConfigError) as e:
        config_from_dict(data)
    assert fragment in str(e.value)


def test_valid_values_are_coerced_and_round_trip():
    cfg = config_from_dict({"task": {"name": "imitate", "teacher": {"rule": "oja", "params": {"eta": 1}}},
                            "meta": {"learning_rate": 1, "steps": 7}, "network": {"w_max": 2}})
    assert cfg.task.teacher.params == {"eta": 1.0} and isinstance(cfg.task.teacher.params["eta"], float)
    assert isinstance(cfg.meta.learning_rate, float) and cfg.meta.steps == 7
    assert cfg.network.w_max == 2.0 and cfg.network.w_min is None
    assert config_from_dict(config_to_dict(cfg)) == cfg


# ----------------------------------------------------------------------------- load_config


def test_invalid_toml_names_the_file(tmp_path):
    p = write(tmp_path, "name = \n[task]\n", "broken.toml")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert str(p) in msg and "is not valid TOML" in msg and "line 1" in msg


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_semantic_errors_are_prefixed_with_the_file(tmp_path):
    p = write(tmp_path, "[meta]\nlearning_rat = 0.1\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert str(e.value).startswith(f"{p}: unknown key 'learning_rat' in [meta]")


def test_there_are_builtin_configs():
    assert len(CONFIGS) >= 1


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_builtin_config_loads_and_builds(path):
    cfg = load_config(path)
    build_network(cfg)
    task = build_task(cfg)
    assert (task.driver() is None) == (cfg.task.name != "imitate")
    # time steps of an episode: [task] steps, or steps per trial times trials (reward_driven)
    assert task.steps == cfg.task.steps * getattr(cfg.task, "trials", 1)


# ----------------------------------------------------------------------------- command line


def test_cli_bad_config_file(tmp_path, capsys):
    p = write(tmp_path, "[meta]\nlearning_rat = 0.1\n")
    code = main(["discover", str(p), "--out", str(tmp_path / "run"), "--quiet"])
    out, err = capsys.readouterr()
    assert_user_error(code, err, "unknown key 'learning_rat' in [meta]", "valid keys there are:")
    assert_path_in(err, p)
    assert not (tmp_path / "run").exists()


def test_cli_invalid_toml_and_missing_config(tmp_path, capsys):
    p = write(tmp_path, "name = 'x\n")
    code = main(["discover", str(p), "--quiet"])
    assert_user_error(code, capsys.readouterr().err, "is not valid TOML")
    code = main(["discover", str(tmp_path / "absent.toml"), "--quiet"])
    assert_user_error(code, capsys.readouterr().err, "is neither a file nor a built-in config")


def test_cli_bad_config_through_the_console_script(tmp_path):
    p = write(tmp_path, "[network]\nkind = 'quantum'\n")
    proc = subprocess.run([*PLASTICITY, "discover", str(p), "--out", str(tmp_path / "run"), "--quiet"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert_user_error(proc.returncode, proc.stderr, "[network] kind = 'quantum' is not a known network; choose "
                      "one of 'rate', 'rate_lateral', 'lif'")


@pytest.mark.parametrize(
    "rule,fragments",
    [
        ('"x*q"', ["[task.teacher] rule:", "unknown symbol 'q'", "x_mean"]),
        ('"x*(y - w"', ["[task.teacher] rule:", "syntax error"]),
        ("\"__import__('os').system('touch {sentinel}')\"", ["[task.teacher] rule:", "is not allowed"]),
        ("\"open('{sentinel}', 'w')\"", ["[task.teacher] rule:", "calling open() is not allowed"]),
        ('"eta*x*y"', ["[task.teacher] rule:", "unknown symbol 'eta'"]),
        ('"oja"\n[task.teacher.params]\nbogus = 1.0', ["[task.teacher] rule:", "'bogus'"]),
        ('"tr_pre*y"', ["[task.teacher] rule uses ['tr_pre']", "a rate network does not have"]),
    ],
    ids=["unknown-symbol", "syntax", "import", "open", "missing-param", "bogus-param", "wrong-network"],
)
def test_cli_bad_teacher_equation(tmp_path, capsys, rule, fragments):
    sentinel = tmp_path / "pwned"
    p = write(tmp_path, imitate_toml(rule=rule.replace("{sentinel}", str(sentinel))))
    code = main(["discover", str(p), "--out", str(tmp_path / "run"), "--quiet"])
    assert_user_error(code, capsys.readouterr().err, *fragments)
    assert not sentinel.exists()


@pytest.mark.parametrize("rule", ['"x*y/0"', '"x*y*log(0)"'])
def test_cli_uncompilable_teacher_equation(tmp_path, capsys, rule):
    p = write(tmp_path, imitate_toml(rule=rule))
    code = main(["discover", str(p), "--out", str(tmp_path / "run"), "--quiet"])
    assert_user_error(code, capsys.readouterr().err, "[task.teacher] rule")


def test_cli_distill_missing_run_dir(capsys):
    code = main(["distill", "/nonexistent/run", "--quiet"])
    assert_user_error(code, capsys.readouterr().err, "/nonexistent/run", "does not exist")


def test_cli_error_message_keeps_paths_whole(capsys):
    path = "/nonexistent/" + "-".join(["run"] * 40)
    code = main(["distill", path, "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert path in err


def test_cli_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in CANONICAL:
        assert re.search(rf"^\s+{name}\s", out, re.M), name
    for word in ("oja_pca", "imitate", "sparse", "operon", "pysr"):
        assert word in out
    for p in CONFIGS:
        assert p.stem in out


# ----------------------------------------------------------------------------- a tiny real run


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny")
    cfg = write(d, TINY, "tiny.toml")
    run_dir = d / "run"
    assert main(["discover", str(cfg), "--out", str(run_dir), "--quiet"]) == 0
    return cfg, run_dir


def test_tiny_discover_writes_the_run_directory(tiny_run):
    import pandas as pd

    cfg, run_dir = tiny_run
    for f in ("config.toml", "manifest.json", "meta_history.csv", "rule/rule.json", "rule/params.npz",
              "checkpoint/state.json"):
        assert (run_dir / f).is_file(), f
    assert load_config(run_dir / "config.toml") == load_config(cfg)
    hist = pd.read_csv(run_dir / "meta_history.csv")
    assert list(hist["step"]) == [1, 2, 3]
    assert json.loads((run_dir / "checkpoint" / "state.json").read_text())["step"] == 3


def test_cli_distill_with_pysr_names_julia_and_the_other_backends(tiny_run, capsys):
    from distill.backends.pysr import unavailable_reason

    if unavailable_reason() is None:
        pytest.skip("a Julia runtime and pysr are installed here: the pysr backend would really run")
    _, run_dir = tiny_run
    code = main(["distill", str(run_dir), "--backend", "pysr", "--quiet"])
    assert_user_error(code, capsys.readouterr().err, "backend 'pysr' is unavailable", "Julia runtime",
                      "sparse", "operon")
    assert (run_dir / "rule" / "params.npz").is_file() and (run_dir / "config.toml").is_file()


@pytest.mark.slow
def test_cli_distill_with_operon_works(tiny_run, capsys):
    import pandas as pd

    from distill.backends.operon import unavailable_reason

    if unavailable_reason() is not None:
        pytest.skip(f"pyoperon cannot run here: {unavailable_reason()}")
    _, run_dir = tiny_run
    assert main(["distill", str(run_dir), "--backend", "operon", "--quiet"]) == 0
    eqs = pd.read_csv(run_dir / "equations.csv")
    assert len(eqs) >= 1 and set(eqs["backend"]) == {"operon"} and eqs["selected"].sum() == 1
    assert main(["verify", str(run_dir), "--quiet"]) == 0
    ver = pd.read_csv(run_dir / "verification.csv")
    assert {"neural", "equation", "canonical"} <= set(ver["kind"])


def test_cli_refuses_to_overwrite_a_run_made_with_another_config(tiny_run, tmp_path, capsys):
    _, run_dir = tiny_run
    before = (run_dir / "config.toml").read_text()
    other = write(tmp_path, TINY.replace("degree = 2", "degree = 3"))
    code = main(["discover", str(other), "--out", str(run_dir), "--quiet"])
    assert_user_error(code, capsys.readouterr().err, "different config", "--out")
    assert (run_dir / "config.toml").read_text() == before


# ----------------------------------------------------------------------------- NaN in meta-training


def test_runaway_student_is_reported_and_keeps_the_checkpoint(tmp_path, capsys):
    """A meta learning rate of 1e3 blows the polynomial rule up after the first update: its
    weights leave [task] max_weight in every episode (once a NaN; now caught by the guard)."""
    import numpy as np

    from discover import stage
    from discover.meta import MetaTrainingError

    run_dir = tmp_path / "run"
    p = write(tmp_path, imitate_toml(lr=1.5, save_every=1))  # runs away at meta-step 2
    with pytest.raises(MetaTrainingError) as e:
        stage.run(load_config(p), run_dir, progress=False)
    msg = " ".join(str(e.value).split())
    step = int(re.search(r"diverged \(left \+-100, \[task\] max_weight\) in all 2 validation episodes at "
                         r"meta-step (\d+)", msg).group(1))
    saved = int(re.search(r"The last good checkpoint \(step (\d+)\) is in (\S+)\.", msg).group(1))
    assert step >= 1 and saved == step - 1
    assert re.search(r"at meta-step \d+, first at time step \d+ of 10,", msg), msg  # where in the episode
    assert str(run_dir / "checkpoint") in msg
    # files already written are intact, and the checkpoint holds the last finite parameters
    assert load_config(run_dir / "config.toml").meta.learning_rate == 1.5
    assert json.loads((run_dir / "checkpoint" / "state.json").read_text())["step"] == saved
    state = json.loads((run_dir / "checkpoint" / "state.json").read_text())
    with np.load(run_dir / "checkpoint" / state["folder"] / "params.npz") as d:
        assert all(np.all(np.isfinite(d[k])) for k in d.files)
    capsys.readouterr()

    # the same command line: resumes from that checkpoint, fails the same way, exit code 2
    code = main(["discover", str(p), "--out", str(run_dir), "--quiet"])
    err = capsys.readouterr().err
    assert f"resuming meta-training from step {saved}" in err
    err = err[err.index("error: "):]
    assert_user_error(code, err, f"in all 2 validation episodes at meta-step {step}", "the student's weights diverged",
                      "[meta] learning_rate (now 1.5)")
    assert_path_in(err, run_dir / "checkpoint")
    assert json.loads((run_dir / "checkpoint" / "state.json").read_text())["step"] == saved
    assert (run_dir / "config.toml").is_file() and (run_dir / "meta_history.csv").is_file()


def test_divergence_message_names_a_checkpoint_that_exists(tmp_path, capsys):
    run_dir = tmp_path / "run"
    p = write(tmp_path, imitate_toml(lr=1000.0, save_every=50))
    code = main(["discover", str(p), "--out", str(run_dir), "--quiet"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2 and "student's weights diverged" in err and "No checkpoint was written yet" in err
    m = re.search(r"last good checkpoint \(step (\d+)\)", err)
    if m:  # a checkpoint is promised: it must be there
        state = run_dir / "checkpoint" / "state.json"
        assert state.is_file()
        assert json.loads(state.read_text())["step"] == int(m.group(1))


def test_set_that_picks_another_class_drops_the_old_ones_keys_with_a_note(capsys):
    """`--set rule.kind=polynomial` on a config written for an MLP: `hidden` goes, with a note;
    another teacher equation: the old teacher's parameters go. A key given with --set stays,
    so its misspelling is still an error."""
    from plasticity.cli import load_with_overrides, resolve_config

    cfg = load_with_overrides(resolve_config("stdp_open"), ["rule.kind=polynomial", "rule.degree=2"])
    assert cfg.rule.kind == "polynomial" and cfg.rule.degree == 2
    err = capsys.readouterr().err
    assert "dropped [rule] hidden" in err and "'mlp'" in err
    cfg = load_with_overrides(resolve_config("imitate_oja"), ["task.teacher.rule='0.01*x*y - 0.004*w'"])
    assert cfg.task.teacher.params == {} and "dropped [task.teacher.params] eta" in capsys.readouterr().err
    cfg = load_with_overrides(resolve_config("imitate_oja"), ["task.teacher.rule='eta*x*y'"])
    assert cfg.task.teacher.params == {"eta": 0.01}  # still used: kept
    with pytest.raises(ConfigError, match="hiddn"):  # given with --set: not dropped, an error
        load_with_overrides(resolve_config("stdp_open"), ["rule.kind=polynomial", "rule.hiddn=[4]"])


def test_event_driven_rule_without_spike_inputs_is_refused_before_training(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["discover", "stdp_open", "--out", str(out), "--quiet", "--set", "rule.kind=polynomial",
                 "--set", "rule.inputs=['tr_pre','tr_post','w']", "--set", "meta.steps=2"]) == 2
    err = capsys.readouterr().err
    assert "neither s_pre nor s_post" in err and "Traceback" not in err
    assert not (out / "checkpoint").exists()
