"""Recovery tests: really meta-train, really distill, really re-verify, at CI size.

Each test runs the whole pipeline (discover -> distill -> verify) on a teacher or a
functional task and checks the *equation* (term set and coefficients), not only the fit,
and its re-verification in the simulator.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
import sympy

from discover import stage as dstage
from discover.config import config_from_dict
from discover.io import selected_equation
from discover.vocabulary import SYMBOLS
from distill import stage as sstage
from distill import verify

pytestmark = pytest.mark.slow

S = SYMBOLS


def run_pipeline(cfg_dict, tmp_path):
    cfg = config_from_dict(cfg_dict)
    dstage.run(cfg, tmp_path, progress=False)
    sstage.run(cfg, tmp_path, progress=False)
    ver = verify.run(cfg, tmp_path, progress=False)
    sel = selected_equation(tmp_path)  # the verified policy's pick
    coefs = {sympy.sympify(t, locals=S): v["value"] for t, v in json.loads(sel["coefficients"]).items()}
    rel = ver.set_index("rule").loc[f"eq{sel['id']}", "relative_to_neural"]
    return coefs, rel, ver


def assert_report_compiles(run_dir, closest):
    """The real run's report: tables compile in pdflatex without overfull boxes, and the
    comparison names the expected canonical rule as closest (issue: publishable reports)."""
    import shutil
    import subprocess

    from analysis import report

    report.run(run_dir)
    comp = pd.read_csv(run_dir / "comparison.csv")
    assert comp.loc[comp["closest"].astype(bool), "canonical"].tolist() == [closest]
    if shutil.which("pdflatex") is None:
        return
    out = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "preview.tex"],
                         cwd=run_dir / "tables", capture_output=True, text=True, timeout=180)
    log = (run_dir / "tables" / "preview.log").read_text(errors="replace")
    assert out.returncode == 0, out.stdout[-2000:]
    assert "Overfull \\hbox" not in log


def assert_terms(coefs, expected, rtol):
    """Exactly the expected terms, each coefficient within ``rtol``."""
    assert set(coefs) == set(expected), f"terms {set(coefs)} != {set(expected)}"
    for t, v in expected.items():
        assert coefs[t] == pytest.approx(v, rel=rtol), f"{t}: {coefs[t]} vs {v}"


def imitate_rate(teacher, params, activation="linear", w_bounds=(None, None), steps=1500, **extra_task):
    task = {"name": "imitate", "steps": 100, "record_every": 5, "n_pre": 6, "n_post": 2,
            "teacher": {"rule": teacher, "params": params}, **extra_task}
    net = {"kind": "rate", "activation": activation}
    if w_bounds[0] is not None:
        net.update(w_min=w_bounds[0], w_max=w_bounds[1])
    return {"task": task, "network": net,
            "rule": {"kind": "polynomial", "degree": 3, "output_scale": 0.01},
            "meta": {"learning_rate": 0.01, "steps": steps, "batch": 8, "eval_every": 100, "val_episodes": 16},
            "distill": {"policy": "verified", "samples": 3000, "episodes": 12, "bootstrap": 20},
            "verify": {"episodes": 16}}


def test_imitate_oja(tmp_path):
    coefs, rel, _ = run_pipeline(imitate_rate("oja", {"eta": 0.01}), tmp_path)
    x, y, w = S["x"], S["y"], S["w"]
    assert_terms(coefs, {x * y: 0.01, w * y**2: -0.01}, 0.05)
    assert rel >= 0.95


def test_imitate_hebb_decay(tmp_path):
    coefs, rel, _ = run_pipeline(imitate_rate("hebb_decay", {"eta": 0.01, "lam": 0.5}, activation="tanh"), tmp_path)
    x, y, w = S["x"], S["y"], S["w"]
    assert_terms(coefs, {x * y: 0.01, w: -0.005}, 0.05)
    assert rel >= 0.95


def test_imitate_bcm(tmp_path):
    cfg = imitate_rate("bcm", {"eta": 0.01}, w_bounds=(0.0, 1.0))
    coefs, rel, _ = run_pipeline(cfg, tmp_path)
    x, y, th = S["x"], S["y"], S["theta"]
    assert_terms(coefs, {x * y**2: 0.01, x * y * th: -0.01}, 0.1)
    assert rel >= 0.95


def test_imitate_equation_string_teacher(tmp_path):
    # Oja plus a constant decay: not in the canonical list, given only as a string, with
    # three coefficients of different sizes.
    cfg = imitate_rate("a*x*y - b*w*y**2 - c*w", {"a": 0.01, "b": 0.005, "c": 0.003})
    coefs, rel, ver = run_pipeline(cfg, tmp_path)
    x, y, w = S["x"], S["y"], S["w"]
    assert_terms(coefs, {x * y: 0.01, w * y**2: -0.005, w: -0.003}, 0.05)
    assert rel >= 0.95
    assert "teacher" in set(ver["rule"])


def test_imitate_pair_stdp_open_loop_mlp(tmp_path):
    cfg = {"task": {"name": "imitate", "steps": 500, "record_every": 10, "n_pre": 10, "n_post": 2,
                    "pre_rate_range": [10.0, 40.0], "post_rate_range": [10.0, 40.0],
                    "teacher": {"rule": "stdp_pair"}},
           "network": {"kind": "lif", "post_mode": "given"},
           "rule": {"kind": "mlp", "hidden": [16], "output_scale": 0.01},
           "meta": {"learning_rate": 0.003, "steps": 600, "batch": 8, "eval_every": 100, "val_episodes": 16},
           "distill": {"policy": "verified", "samples": 4000, "episodes": 12, "bootstrap": 20},
           "verify": {"episodes": 16}}
    coefs, rel, _ = run_pipeline(cfg, tmp_path)
    sp, so, tp, to = S["s_pre"], S["s_post"], S["tr_pre"], S["tr_post"]
    assert set(coefs) == {so * tp, sp * to}
    ratio = -coefs[sp * to] / coefs[so * tp]
    assert ratio == pytest.approx(1.05, rel=0.10)
    assert rel >= 0.95
    assert_report_compiles(tmp_path, "stdp_pair")


@pytest.mark.parametrize("seed", [0])
def test_default_demo_rediscovers_oja(tmp_path, seed):
    """`plasticity run` (configs/oja.toml, the built-in default) from function alone. One
    seed in CI (~3 min of a worker each); seeds 0-2 are README's table,
    `benchmarks/oja_seeds.py --seeds 0 1 2`."""
    from plasticity.cli import main

    assert main(["run", "--out", str(tmp_path), "--set", f"meta.seed={seed}", "--quiet"]) == 0
    sel = selected_equation(tmp_path)  # the verified policy's pick
    coefs = {sympy.sympify(t, locals=S): v["value"] for t, v in json.loads(sel["coefficients"]).items()}
    x, y, w = S["x"], S["y"], S["w"]
    assert {x * y, w * y**2} <= set(coefs)
    # a function task: the ratio is not pinned by a teacher and moves with the machine's
    # float rounding (seed 1: 1.082 on the machine of README's table, 1.106 on an AMD EPYC)
    assert -coefs[w * y**2] / coefs[x * y] == pytest.approx(1.0, rel=0.12)
    big = max(abs(v) for v in coefs.values())
    others = sum(abs(v) for t, v in coefs.items() if t not in (x * y, w * y**2))
    assert others < 0.05 * big
    ver = pd.read_csv(tmp_path / "verification.csv").set_index("rule")
    assert ver.loc[f"eq{sel['id']}", "relative_to_neural"] >= 0.95
    for name in ("report.md", "report.html", "tables/equations.tex", "figures/meta_loss.png", "manifest.json"):
        assert (tmp_path / name).exists(), name
    if seed == 0:
        assert_report_compiles(tmp_path, "oja")


def test_triplet_stdp_from_weights_event_driven_polynomial(tmp_path):
    """configs/stdp_triplet.toml at CI size: the event-driven polynomial student (degree 2
    over fast and slow traces and w, per spike type) recovers the Pfister & Gerstner 2006
    minimal rule, and the selected equation's Sjostrom frequency curves match the teacher's."""
    from analysis.compare import frequency_distance

    cfg = {"task": {"name": "imitate", "steps": 1000, "record_every": 10, "n_pre": 10, "n_post": 2,
                    "pre_rate_range": [5.0, 50.0], "post_rate_range": [5.0, 50.0],
                    "teacher": {"rule": "stdp_triplet"}},
           "network": {"kind": "lif", "post_mode": "given"},
           "rule": {"kind": "polynomial", "degree": 2, "output_scale": 0.01,
                    "inputs": ["s_pre", "s_post", "tr_pre", "tr_post", "tr_pre_slow", "tr_post_slow", "w"],
                    "timescales": {"tau_pre": 16.8, "tau_post": 33.7, "tau_pre_slow": 101.0, "tau_post_slow": 114.0}},
           "meta": {"learning_rate": 0.01, "steps": 600, "batch": 8, "eval_every": 100, "val_episodes": 16},
           "distill": {"policy": "verified", "samples": 4000, "episodes": 12, "bootstrap": 20},
           "verify": {"episodes": 16}}
    coefs, rel, _ = run_pipeline(cfg, tmp_path)
    sp, so, tp, to, tys = S["s_pre"], S["s_post"], S["tr_pre"], S["tr_post"], S["tr_post_slow"]
    # Pfister & Gerstner 2006, Table 4 (visual cortex, minimal all-to-all): A3_plus 6.5e-3, A2_minus 7.1e-3
    assert_terms(coefs, {so * tp * tys: 6.5e-3, sp * to: -7.1e-3}, 0.15)
    assert rel >= 0.95
    assert_report_compiles(tmp_path, "stdp_triplet")
    freq = pd.read_csv(tmp_path / "comparison_frequency.csv")
    d_teacher = frequency_distance(freq[freq["rule"] == "equation"], freq[freq["rule"] == "teacher"])
    d_pair = frequency_distance(freq[freq["rule"] == "equation"], freq[freq["rule"] == "stdp_pair"])
    assert d_teacher < 0.05 < 0.3 < d_pair


def test_pair_stdp_closed_loop_from_spikes_only_by_evolution(tmp_path):
    """configs/stdp_pair.toml at CI size: postsynaptic spikes only, closed loop, CMA-ES; 1 s
    episodes, 8 per generation, 300 generations, the trace time constants at the teacher's
    20 / 20 ms (the shipped config learns them from 30 / 12 ms over 1,500 generations of 2 s
    episodes, ~15 min of one CI worker: benchmarks/stdp_seeds.py runs it; ES learning time
    constants is tested in test_meta and test_timescales). The equation is exactly the two
    pair terms with A_minus/A_plus within 10 %."""
    import tomllib
    from pathlib import Path

    cfg = tomllib.loads((Path(__file__).resolve().parents[1] / "configs" / "stdp_pair.toml").read_text())
    cfg["task"]["steps"] = 1000
    cfg["meta"].update(steps=300, batch=8)
    cfg["rule"].update(learn_timescales=False, timescales={"tau_pre": 20.0, "tau_post": 20.0})
    coefs, rel, _ = run_pipeline(cfg, tmp_path)
    sp, so, tp, to = S["s_pre"], S["s_post"], S["tr_pre"], S["tr_post"]
    assert set(coefs) == {so * tp, sp * to}
    assert -coefs[sp * to] / coefs[so * tp] == pytest.approx(1.05, rel=0.10)
    assert rel >= 0.95
    # the report's pairing-window figure overlays the equation on the teacher
    from analysis.compare import window_distance

    assert_report_compiles(tmp_path, "stdp_pair")
    win = pd.read_csv(tmp_path / "comparison_windows.csv")
    assert {"equation", "neural", "teacher"} <= set(win["rule"])
    assert window_distance(win[win["rule"] == "equation"], win[win["rule"] == "teacher"]) < 0.05


def shipped_with_teacher(name, teacher, **overrides):
    """A shipped config with only the teacher changed, at CI size (fewer steps and episodes)."""
    import tomllib
    from pathlib import Path

    d = tomllib.loads((Path(__file__).resolve().parents[1] / "configs" / f"{name}.toml").read_text())
    d["task"]["teacher"] = {"rule": teacher, "params": {}}
    d["meta"].update(steps=1500, val_episodes=16, eval_every=100)
    d["distill"].update(refine_steps=100, bootstrap=20)
    d["verify"].update(episodes=16)
    for section, values in overrides.items():
        d.setdefault(section, {}).update(values)
    return d


def test_instar_by_the_shipped_config_with_only_the_teacher_changed(tmp_path):
    # issue 18: instar stopped with "NaN at meta-step 0" (its teacher runs away in ~0.4 % of
    # these episodes, which are now left out); the auto student is a degree-3 polynomial
    coefs, rel, _ = run_pipeline(shipped_with_teacher("imitate_oja", "0.01*y*(x - w)"), tmp_path)
    x, y, w = S["x"], S["y"], S["w"]
    assert_terms(coefs, {x * y: 0.01, w * y: -0.01}, 0.05)
    assert rel >= 0.95


@pytest.mark.parametrize("teacher,expected", [
    ("0.01*x*(y - w)", {"x*y": 0.01, "w*x": -0.01}),  # outstar
    ("0.01*y*(x - 0.5)", {"x*y": 0.01, "y": -0.005}),  # presynaptic threshold
])
def test_unbounded_teachers_recovered_once_bounds_are_set(teacher, expected, tmp_path):
    # unbounded on the shipped config's episodes (tests/test_divergence.py: the message
    # names the teacher and the bounds); with [network] w_min = 0, w_max = 1, recovered
    cfg = shipped_with_teacher("imitate_oja", teacher, network={"w_min": 0.0, "w_max": 1.0})
    coefs, rel, _ = run_pipeline(cfg, tmp_path)
    assert_terms(coefs, {sympy.sympify(t, locals=S): v for t, v in expected.items()}, 0.05)
    assert rel >= 0.95


def shipped_config(name):
    import tomllib
    from pathlib import Path

    return tomllib.loads((Path(__file__).resolve().parents[1] / "configs" / f"{name}.toml").read_text())


def test_reward_driven_rule_from_a_binary_reward_by_evolution(tmp_path):
    """configs/reward_driven.toml at CI size (10 patterns, 200 trials per pattern set, a
    population of 8 on 2 sets for 150 generations; the shipped config: 30 patterns, 500
    trials, 16 x 4 for 300 generations, benchmarks/e2l_tasks.py). The rule sees m, elig, w
    and a constant; the selected equation must carry the credit of the Urbanczik-Senn rule
    (elig*m, positive: weights move along the eligibility where the reward says so; the
    shipped config selects elig*(m - 0.8) up to scale) and learn as well as us_reward (at
    the neural rule's scale) on the same pattern sets."""
    cfg = shipped_config("reward_driven")
    cfg["task"].update(trials=200, patterns=10)
    cfg["meta"].update(steps=150, population=8, batch=2, val_episodes=8, eval_every=25)
    cfg["distill"].update(episodes=4, samples=2000, bootstrap=20)
    cfg["verify"].update(episodes=8)
    coefs, rel, ver = run_pipeline(cfg, tmp_path)
    e, m = S["elig"], S["m"]
    assert coefs.get(e * m, 0.0) > 0
    if e in coefs:  # elig*(m - c): credit mostly where the reward falls short
        assert 0.2 < -coefs[e] / coefs[e * m] < 2.0
    v = ver.set_index("rule")["objective_mean"]
    sel = v[ver.set_index("rule")["selected"].astype(bool)].iloc[0]
    assert sel >= v["us_reward"] - 0.05 and sel > v["none"] + 0.1


def test_correlation_detection_rule_from_function_by_evolution(tmp_path):
    """configs/correlation_detection.toml at CI size (10 s of learning, SNR on 5.5 s, 16
    members on 2 trials for 25 generations; the shipped config: 20 s, 11 s, 16 x 4 for 200,
    benchmarks/e2l_tasks.py). No teacher: the selected equation must potentiate where a
    presynaptic spike preceded a postsynaptic one (s_post*tr_pre, positive: correlation
    detection) and reach at least the SNR of E2L's hand-made homeostatic STDP at E2L's
    parameters, well above no plasticity, on held-out trials."""
    cfg = shipped_config("correlation_detection")
    cfg["task"].update(steps=10_000, snr_ms=5_500.0)
    cfg["meta"].update(steps=25, population=16, batch=2, val_episodes=4, eval_every=5)
    cfg["distill"].update(episodes=2, samples=2000, bootstrap=20)
    cfg["verify"].update(episodes=8)
    coefs, rel, ver = run_pipeline(cfg, tmp_path)
    assert coefs.get(S["s_post"] * S["tr_pre"], 0.0) > 0
    v = ver.set_index("rule")["objective_mean"]
    sel = v[ver.set_index("rule")["selected"].astype(bool)].iloc[0]
    assert sel >= v["homeostatic_stdp_e2l"] and sel > v["none"] + 2.0


def test_error_driven_rule_from_function(tmp_path):
    """configs/error_driven.toml at CI size (E2L's 10-s episodes, 200 Adam steps on 4
    episodes; the shipped config: 800 on 8). The rule sees u_target, v_post, psp, w and a
    constant; the selected equation is psp*(u_target - v_post) up to scale (the two terms,
    ratio -1 within 10 %, nothing else) at >= 95 % of us_error at its least-squares scale.
    Shorter episodes (4 s) select u_target - v_post without psp (every weight the same
    change), which verification cannot tell apart within its tolerance."""
    cfg = shipped_config("error_driven")
    cfg["meta"].update(steps=200, batch=4, val_episodes=8)
    cfg["distill"].update(episodes=4, bootstrap=20)
    cfg["verify"].update(episodes=8)
    coefs, rel, ver = run_pipeline(cfg, tmp_path)
    p, u, v = S["psp"], S["u_target"], S["v_post"]
    assert set(coefs) == {p * u, p * v}
    assert coefs[p * v] / coefs[p * u] == pytest.approx(-1.0, rel=0.10)
    obj = ver.set_index("rule")["objective_mean"]
    sel = obj[ver.set_index("rule")["selected"].astype(bool)].iloc[0]
    assert rel >= 0.95 and sel >= 0.95 * obj["us_error"] and obj["none"] < 0.5


def test_oja_subspace_feed_forward_and_lateral_rules_learned_together(tmp_path):
    """configs/oja_subspace.toml at CI size (600-step episodes, 500 Adam steps on 8; the
    shipped config: 1000 steps, 2000 on 16). No teacher: two rules, one per synapse type,
    from the function alone (three outputs span the top-3 principal subspace). The
    feed-forward equation is Oja's form (x*y potentiates, w*y**2 depresses) and the lateral
    one anti-Hebbian (x*y, the other output times this one, depresses: Foldiak 1989); both
    together, run in the simulator with no neural rule left, find the subspace."""
    cfg = shipped_config("oja_subspace")
    cfg["task"].update(steps=600)
    cfg["meta"].update(steps=500, batch=8, val_episodes=16)
    cfg["distill"].update(episodes=8, samples=2000, bootstrap=20)
    cfg["verify"].update(episodes=16)
    run_pipeline_types = config_from_dict(cfg)
    dstage.run(run_pipeline_types, tmp_path, progress=False)
    eqs = sstage.run(run_pipeline_types, tmp_path, progress=False)
    ver = verify.run(run_pipeline_types, tmp_path, progress=False).set_index("rule")
    assert set(eqs["synapse"]) == {"ff", "lat"}
    picks = {}
    for rule in ver.index[ver["selected"].astype(bool)]:
        row = eqs[eqs["id"].astype(str) == rule[2:]].iloc[0]
        picks[row["synapse"]] = {sympy.sympify(t, locals=S): v["value"]
                                 for t, v in json.loads(row["coefficients"]).items()}
    x, y, w = S["x"], S["y"], S["w"]
    ff, lat = picks["ff"], picks["lat"]
    assert ff.get(x * y, 0) > 0 and ff.get(w * y**2, 0) < 0
    assert lat.get(x * y, 0) < 0 and abs(lat[x * y]) == max(map(abs, lat.values()))
    obj = ver["objective_mean"]
    assert obj["equations"] >= 0.9 and obj["equations"] >= obj["neural"] - 0.03
    beh = pd.read_csv(tmp_path / "behaviour.csv")  # the learning curve ends at the objective
    end = beh[(beh["metric"] == "overlap")].sort_values("at").groupby("rule")["mean"].last()
    assert end["selected"] == pytest.approx(obj["equations"], abs=1e-4)
    assert end["oja_no_lateral"] < end["selected"] - 0.2


def test_inhibitory_balance_rule_from_function_by_evolution(tmp_path):
    """configs/inhibitory_balance.toml at CI size (a population of 8 on 2 tunings for 20
    generations; the shipped config: 16 on 4 for 150, benchmarks/inhibitory_balance.py). No
    teacher: from a neuron driven at ~30 Hz by tuned excitation, the selected equation for the
    inhibitory synapses must potentiate them at postsynaptic spikes after presynaptic ones
    (s_post*tr_pre, positive: Vogels et al.'s Hebbian half), bring the rate well down towards
    5 Hz and make the inhibitory tuning follow the excitatory one, on held-out tunings."""
    cfg = shipped_config("inhibitory_balance")
    cfg["meta"].update(steps=20, population=8, batch=2, val_episodes=4, eval_every=5, save_every=5)
    cfg["distill"].update(episodes=2, samples=2000, bootstrap=20)
    cfg["verify"].update(episodes=8)
    coefs, rel, ver = run_pipeline(cfg, tmp_path)
    assert coefs.get(S["s_post"] * S["tr_pre"], 0.0) > 0
    import jax

    from discover.build import build_task, load_rule
    from distill.verify import row_rule

    task = build_task(config_from_dict(cfg))
    neural, nparams = load_rule(tmp_path)
    eq = row_rule(selected_equation(tmp_path), {k: float(v) for k, v in neural.tau(nparams).items()}, neural)
    p = eq.init(jax.random.key(0))
    eps = task.sample(jax.random.key(7), 4)
    rate, corr = jax.jit(jax.vmap(lambda e: (lambda o: (task.output_rate(o, e), task.tuning_correlation(
        o.final["W"])))(task.simulate(eq, p, e))))(eps)
    assert 2.5 < float(rate.mean()) < 10.0 and float(corr.mean()) > 0.8
    v = ver.set_index("rule")["objective_mean"]
    assert v[ver.set_index("rule")["selected"].astype(bool)].iloc[0] > v["none"] + 2.0


def test_few_shot_rule_learns_held_out_digits_better_than_feedback_alignment(tmp_path):
    """configs/digits_few_shot.toml at CI size (150 Adam steps on 8 episodes; the shipped
    config: 400 on 16). From feedback alignment (the search's start), the term pool learns a
    rule whose distilled equation, run in the simulator on digits 5-9 that no stage of
    meta-training saw, classifies at least 5 points above feedback alignment at its tuned
    rate (Shervani-Tabar & Rosenbaum 2023's claim), and keeps the pseudo-gradient term."""
    cfg = shipped_config("digits_few_shot")
    cfg["task"].update(tune_episodes=16, lr_points=8, eval_seeds=2, eval_episodes=32, angle_episodes=4)
    cfg["meta"].update(steps=150, batch=8, val_episodes=16)
    cfg["distill"].update(episodes=8, samples=2000, bootstrap=20)
    cfg["verify"].update(episodes=32)
    coefs, rel, ver = run_pipeline(cfg, tmp_path)
    e_post, x = S["e_post"], S["x"]
    assert coefs.get(e_post * x, 0) < 0
    table = pd.read_csv(tmp_path / "classification.csv").set_index("method")
    acc = table["accuracy_mean"]
    assert acc["equation"] >= acc["feedback_alignment"] + 0.05
    assert acc["neural"] >= acc["feedback_alignment"] + 0.05
    assert table.loc["backprop", "angle_to_backprop_deg"] == pytest.approx(0.0, abs=1e-3)
    from analysis import report

    report.run(tmp_path, behaviour=False)
    text = (tmp_path / "report.md").read_text()
    assert "## Classification" in text and "feedback alignment" in text
