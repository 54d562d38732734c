"""Tests of analysis.compare: a distilled equation against the canonical rules, per run and
across runs (``plasticity compare``).

Run directories are written by hand (TOML, JSON, CSVs), with the equations a real run
distills (the Oja demo's, pair STDP imitated by the event-driven MLP, and a triplet rule),
so no meta-training is needed. The behaviour checks run the simulator (JAX) at small size.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import analysis
from analysis import compare, report, rundir, tables
from analysis.checks import bcm, oja
from analysis.checks.frequency import FrequencyCheck
from analysis.checks.oja import OjaCheck
from discover.io import RunDirError
from discover.rules import CANONICAL, canonical_rule
from distill.stage import read_timescales
from plasticity.cli import main

OJA_EQ = "-0.0149*w*y**2 + 0.0141*x*y"
PAIR_EQ = "0.0098*s_post*tr_pre - 0.0104*s_pre*tr_post"
TRIPLET_EQ = "0.0064*s_post*tr_pre*tr_post_slow - 0.0072*s_pre*tr_post"

#: Trace time constants of a triplet-STDP run (those of its teacher, Pfister & Gerstner 2006).
TRIPLET_TAUS = {"tau_pre": 16.8, "tau_post": 33.7, "tau_pre_slow": 101.0, "tau_post_slow": 114.0}


def make_run(root: Path, name: str, network: str, selected: str, others: tuple[str, ...] = ("0.01*x*y",),
             timescales: dict[str, float] | None = None, task: str = "imitate", teacher: str | None = None) -> Path:
    """A run directory with a front of equations (``selected`` last and selected),
    verification rows for them, optionally ``rule/rule.json`` with trace time constants
    and a ``[task.teacher]`` (a canonical rule name) in ``config.toml``."""
    d = root / name
    d.mkdir(parents=True)
    teacher_toml = f'\n[task.teacher]\nrule = "{teacher}"\n\n[task.teacher.params]\n' if teacher else ""
    (d / "config.toml").write_text(f'[task]\nname = "{task}"\n{teacher_toml}\n[network]\nkind = "{network}"\n')
    (d / "manifest.json").write_text(json.dumps({"package_version": "0.1.0", "timings_s": {"discover": 1.0}}))
    texts = [*others, selected]
    n = len(texts)
    pd.DataFrame({
        "id": range(n),
        "backend": ["sparse"] * n,
        "complexity": [4 + 7 * i for i in range(n)],
        "loss": [10.0 ** -(3 + i) for i in range(n)],
        "score": [0.1 * i for i in range(n)],
        "equation": texts,
        "sympy": texts,
        "latex": [""] * n,
        "selected": [i == n - 1 for i in range(n)],
        # as distill writes it: the time constants of the traces each equation reads
        "timescales": [json.dumps(read_timescales(t, timescales)) if timescales else "" for t in texts],
    }).to_csv(d / "equations.csv", index=False)
    pd.DataFrame({
        "rule": ["neural", *(f"eq{i}" for i in range(n))],
        "kind": ["neural", *(["equation"] * n)],
        "equation": ["", *texts],
        "objective_mean": [0.9, *np.linspace(0.5, 0.91, n)],
        "objective_ci_low": [0.88, *np.linspace(0.45, 0.89, n)],
        "objective_ci_high": [0.92, *np.linspace(0.55, 0.93, n)],
        "relative_to_neural": [1.0, *(np.linspace(0.5, 0.91, n) / 0.9)],
    }).to_csv(d / "verification.csv", index=False)
    if timescales is not None:
        (d / "rule").mkdir()
        (d / "rule" / "rule.json").write_text(json.dumps(
            {"kind": "mlp", "inputs": ["tr_pre", "tr_post"], "timescales": timescales, "learn_timescales": False}))
    return d


# --------------------------------------------------------------------------- equation level


def test_normalized_coefficients_jaccard_and_distance():
    norm = compare.normalized_coefficients({"x*y": 0.0141, "w*y**2": -0.0149, "w": 0.0})
    assert list(norm) == ["w*y**2", "x*y"]  # largest first, zero dropped
    assert norm["w*y**2"] == -1.0 and norm["x*y"] == pytest.approx(0.0141 / 0.0149)
    assert compare.normalized_coefficients({}) == {}
    assert compare.term_jaccard({"a": 1, "b": 1}, {"b": 2, "c": 3}) == pytest.approx(1 / 3)
    assert compare.term_jaccard({}, {}) == 1.0
    assert compare.coefficient_distance({"a": 1.0}, {"b": 1.0}) == pytest.approx(math.sqrt(2))
    assert compare.coefficient_distance({"a": 1.0, "b": -0.5}, {"a": 1.0, "b": -0.5}) == 0.0


def test_canonical_rule_at_published_parameters_matches_itself_exactly():
    # Oja 1982 at any learning rate normalizes to {x*y: 1, w*y**2: -1}.
    df = compare.equation_comparison("0.5*(x*y - y**2*w)", "rate")
    oja = df.set_index("canonical").loc["oja"]
    assert oja["term_jaccard"] == 1.0 and oja["coef_distance"] == pytest.approx(0.0, abs=1e-12)
    assert json.loads(oja["coefficients_canonical"]) == {"w*y**2": -1.0, "x*y": 1.0}
    assert oja["canonical_equation"] == "-0.01*w*y**2 + 0.01*x*y"
    assert bool(oja["closest"]) and df["closest"].sum() == 1
    assert set(df["canonical"]) == {"hebb_decay", "oja", "bcm", "covariance"}
    assert set(compare.COLUMNS) <= set(df.columns)


@pytest.mark.parametrize(
    "equation, network, closest, distance",
    [
        (OJA_EQ, "rate", "oja", 0.0537),
        (PAIR_EQ, "lif", "stdp_pair", 0.0101),
        (TRIPLET_EQ, "lif", "stdp_triplet", 0.0266),
        ("0.0141*x*y - 0.007*w", "rate", "hebb_decay", 0.0035),
        ("0.01*x*y**2 - 0.0098*theta*x*y", "rate", "bcm", 0.02),
    ],
)
def test_closest_canonical_rule(equation, network, closest, distance):
    result = compare.compare_equation(equation, network, behaviour=False)
    assert result.closest == closest
    row = result.table.set_index("canonical").loc[closest]
    assert row["coef_distance"] == pytest.approx(distance, abs=2e-3)
    assert row["term_jaccard"] == 1.0
    others = result.table[~result.table["closest"]]
    assert (others["coef_distance"] > 1.0).all()


def test_network_kind_is_inferred_from_the_variables():
    assert compare.compare_equation(PAIR_EQ, behaviour=False).table["network"].iloc[0] == "lif"
    assert compare.compare_equation(OJA_EQ, behaviour=False).table["network"].iloc[0] == "rate"


def test_spike_powers_reduce_before_comparison():
    # s**2 == s for spike indicators: the same rule as PAIR_EQ.
    a = compare.compare_equation("0.0098*s_post**2*tr_pre - 0.0104*s_pre**3*tr_post", "lif", behaviour=False)
    assert a.closest == "stdp_pair" and a.table["term_jaccard"].iloc[0] == 1.0


# --------------------------------------------------------------------------- behaviour level


def test_oja_check_oja_converges_to_unit_norm_pc1():
    _, can = oja.oja_behaviour(OJA_EQ, ["oja"])
    align, norm = can["oja"]
    assert align > 0.99 and norm == pytest.approx(1.0, abs=0.02)
    assert oja.oja_distance((1.0, 1.0), (1.0, 1.0)) == 0.0
    assert oja.oja_distance((1.0, 1.0), (math.nan, math.inf)) == math.inf
    assert math.isnan(oja.oja_distance((math.nan, math.inf), (math.nan, math.inf)))


BCM_EQ = "0.01*x*y**2 - 0.01*x*y*theta"


def test_threshold_crossing_and_rate_distance():
    y = np.linspace(0.0, 2.0, 201)
    assert bcm.threshold_crossing(y, y * (y - 1.0)) == pytest.approx(1.0)  # BCM, grid through theta
    assert bcm.threshold_crossing(y, y * (y - 0.55)) == pytest.approx(0.55)  # interpolated
    assert math.isnan(bcm.threshold_crossing(y, y - y**2))  # Oja-like: potentiation, then depression
    assert math.isnan(bcm.threshold_crossing(y, y * np.nan))
    assert bcm.threshold_distance(1.0, 0.5) == pytest.approx(0.25)
    assert bcm.threshold_distance(1.0, math.nan) == 1.0 and bcm.threshold_distance(math.nan, math.nan) == 0.0
    assert bcm.rate_distance(0.3, (1.0, 1.0), (0.4, 0.5)) == pytest.approx((0.3 + 0.6 + 0.25) / 3)
    assert bcm.rate_distance(math.nan, (1.0, math.nan), (1.0, math.nan)) == 0.0
    assert bcm.rate_distance(math.inf, (1.0, 1.0), (1.0, 1.0)) == math.inf


@pytest.mark.parametrize("equation, closest", [(BCM_EQ, "bcm"), (OJA_EQ, "oja")])
def test_bcm_check_threshold_and_selectivity(equation, closest):
    result = compare.compare_equation(equation, "rate")
    df = result.table.set_index("canonical")
    assert result.closest == closest and not result.notes
    # closest by behaviour too: the smallest behaviour distance
    assert df["behaviour_distance"].idxmin() == closest
    assert (df.drop(index=closest)["behaviour_distance"] > 0.5).all()
    assert df.loc["bcm", "threshold_y_canonical"] == pytest.approx(1.0)  # depression below theta, potentiation above
    assert math.isnan(df.loc["oja", "threshold_y_canonical"])
    assert df.loc["bcm", "selectivity_canonical"] > 0.9  # BCM picks one pattern
    assert df.loc["oja", "selectivity_canonical"] < 0.3 and df.loc["hebb_decay", "selectivity_canonical"] < 0.3
    if closest == "bcm":
        assert np.allclose(df["threshold_y"], 1.0) and (df["selectivity"] > 0.9).all()
        assert df.loc["bcm", "behaviour_distance"] < 0.05
    else:
        assert df["threshold_y"].isna().all() and (df["selectivity"] < 0.3).all()
        assert df.loc["oja", "behaviour_distance"] < 0.1


def test_report_run_rate(tmp_path):
    d = make_run(tmp_path, "oja_run", "rate", OJA_EQ, task="oja_pca")
    report.run(d)
    df = rundir.read_comparison(d)
    assert {"canonical", "term_jaccard", "coef_distance", "behaviour_distance", "closest"} <= set(df.columns)
    assert df.loc[df["closest"], "canonical"].tolist() == ["oja"]
    assert (df["equation_id"] == "1").all()
    oja = df.set_index("canonical").loc["oja"]
    assert oja["behaviour"] == "oja_pc1"
    assert oja["pc1_alignment_equation"] > 0.99 and oja["weight_norm_equation"] == pytest.approx(1.0, abs=0.05)
    # behaviourally, the discovered rule is Oja too: the smallest behaviour distance
    assert df["behaviour_distance"].idxmin() == df.index[df["canonical"] == "oja"][0]
    assert oja["behaviour_distance"] < 0.1
    # the BCM check's numbers are columns of comparison.csv
    assert {"selectivity", "threshold_y", "selectivity_canonical", "threshold_y_canonical"} <= set(df.columns)
    assert df["threshold_y"].isna().all() and oja["selectivity"] < 0.3
    assert df.set_index("canonical").loc["bcm", "threshold_y_canonical"] == pytest.approx(1.0)
    tex = (d / "tables" / "comparison.tex").read_text()
    assert r"\textbf{oja}" in tex and r"\begin{tabularx}" in tex
    assert r"\input{comparison.tex}" in (d / "tables" / "preview.tex").read_text()
    md = (d / "report.md").read_text()
    assert "## Comparison with canonical rules" in md
    assert "Closest canonical rule: **oja**" in md
    assert "(figures/comparison.png)" in md and "alignment with PC1" in md
    # the pairing protocols are for spiking rules only
    assert df["frequency_distance"].isna().all()
    assert not (d / "comparison_frequency.csv").exists() and not (d / "comparison_windows.csv").exists()
    assert not list((d / "figures").glob("comparison_frequency.*"))
    assert "frequency distance" not in md


@pytest.mark.parametrize(
    "name, equation, timescales, closest, other, teacher",
    [
        ("pair", PAIR_EQ, None, "stdp_pair", "stdp_triplet", None),
        ("triplet", TRIPLET_EQ, TRIPLET_TAUS, "stdp_triplet", "stdp_pair", "stdp_triplet"),
    ],
)
def test_report_run_spiking(tmp_path, name, equation, timescales, closest, other, teacher):
    d = make_run(tmp_path, name, "lif", equation, others=("0.01*s_post*tr_pre",), timescales=timescales,
                 teacher=teacher)
    report.run(d)
    df = rundir.read_comparison(d).set_index("canonical")
    assert df.index[df["closest"]].tolist() == [closest]
    assert (df["behaviour"] == "stdp_window").all()
    # the pairing windows agree with the equation level
    assert df.loc[closest, "behaviour_distance"] < 0.05 < df.loc[other, "behaviour_distance"]
    windows = rundir.read_comparison_windows(d)
    # the run's teacher (when it has one) is drawn beside the equation; make_run trains no neural rule
    # every canonical rule of the network kind, but those that read a teaching potential or a
    # reward (us_error, us_reward), which pairing protocols do not give: no behaviour columns
    lif = {n for n, c in CANONICAL.items() if c.network == "lif" and not c.population}  # for every synapse
    taught = {n for n in lif if set(canonical_rule(n).inputs) & {"u_target", "m", "elig"}}
    assert taught == {"us_error", "us_reward"}
    assert set(windows["rule"]) == {"equation"} | (lif - taught) | ({"teacher"} if teacher else set())
    assert df.loc[sorted(taught), "behaviour_distance"].isna().all()
    for _, part in windows.groupby(["rule", "protocol"]):
        assert part["dw_normalized"].abs().max() == pytest.approx(1.0)
    assert (d / "figures" / "comparison_window.png").read_bytes().startswith(b"\x89PNG")
    md = (d / "report.md").read_text()
    assert f"Closest canonical rule: **{closest}**" in md and "(figures/comparison_window.png)" in md
    note = "default trace time constants"
    assert (note in md) == (timescales is None)
    # the pairing-frequency protocol (Sjöström et al. 2001) agrees with the equation level too
    assert df["frequency_distance"].idxmin() == closest
    assert df.loc[closest, "frequency_distance"] < 0.05 < df.loc[other, "frequency_distance"]
    freq = rundir.read_comparison_frequency(d)
    assert list(freq.columns) == ["rule", "freq_hz", "lag_ms", "dw"]
    assert set(freq["rule"]) == {"equation"} | (lif - taught) | ({"teacher"} if teacher else set())
    assert freq["rule"].iloc[0] == "equation"
    for _, part in freq.groupby("rule"):
        assert sorted(part["freq_hz"].unique()) == [1.0, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0]
        assert sorted(part["lag_ms"].unique()) == [-10.0, 10.0] and len(part) == 14
        assert np.isfinite(part["dw"]).all()
    curve = freq.set_index(["rule", "freq_hz", "lag_ms"])["dw"]
    # pair STDP: +10 ms potentiation falls with the frequency; triplet STDP: it rises (Pfister & Gerstner 2006)
    assert curve["stdp_pair", 50.0, 10.0] < curve["stdp_pair", 1.0, 10.0]
    assert curve["stdp_triplet", 50.0, 10.0] > curve["stdp_triplet", 1.0, 10.0] + 0.5
    if teacher:  # a canonical teacher at its published parameters is that canonical rule
        assert curve["teacher"].to_numpy() == pytest.approx(curve[teacher].to_numpy())
    for ext, magic in (("png", b"\x89PNG"), ("pdf", b"%PDF")):
        assert (d / "figures" / f"comparison_frequency.{ext}").read_bytes().startswith(magic)
    assert "(figures/comparison_frequency.png)" in md and "Weight change against pairing frequency" in md
    assert "frequency distance" in md and "`comparison_frequency.csv`" in md
    assert "No trained neural rule" in md  # the hand-made run has no rule/params.npz


# --------------------------------------------------------------------------- when it cannot run


def test_report_still_works_when_the_equation_cannot_be_compared(tmp_path):
    d = make_run(tmp_path, "bad", "rate", OJA_EQ)
    report.run(d, behaviour=False)
    assert (d / "comparison.csv").is_file() and (d / "tables" / "comparison.tex").is_file()
    eqs = pd.read_csv(d / "equations.csv")
    eqs["latex"] = eqs["latex"].astype(object)
    eqs.loc[eqs["selected"], ["sympy", "equation", "latex"]] = ["unknown_symbol*x", "unknown_symbol*x", "u x"]
    eqs.to_csv(d / "equations.csv", index=False)
    paths = report.run(d)
    assert paths["report_html"].is_file()
    md = (d / "report.md").read_text()
    assert "## Comparison with canonical rules" in md
    assert "The comparison could not run. the selected equation cannot be parsed" in md
    assert "unknown_symbol" in md
    # the old comparison is not shown as if it were this equation's
    assert not (d / "comparison.csv").exists() and not (d / "tables" / "comparison.tex").exists()
    assert not (d / "figures" / "comparison.png").exists()
    assert r"\input{comparison.tex}" not in (d / "tables" / "preview.tex").read_text()


def test_report_without_equations_notes_what_writes_them(tmp_path):
    d = make_run(tmp_path, "noeq", "rate", OJA_EQ)
    (d / "equations.csv").unlink()
    report.run(d)
    md = (d / "report.md").read_text()
    section = md.split("## Comparison with canonical rules", 1)[1]
    assert "`equations.csv` is missing; `plasticity distill DIR` writes it." in section


def test_failed_behaviour_check_keeps_the_equation_level(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise FloatingPointError("simulator exploded")

    monkeypatch.setattr(OjaCheck, "measure_rule", boom)
    d = make_run(tmp_path, "oja_run", "rate", OJA_EQ)
    report.run(d)
    df = rundir.read_comparison(d)
    assert df.loc[df["closest"], "canonical"].tolist() == ["oja"]
    assert df["behaviour_distance"].isna().all()
    md = (d / "report.md").read_text()
    assert "Oja behaviour check failed: FloatingPointError: simulator exploded" in md


def test_a_bug_in_a_behaviour_check_is_not_hidden(monkeypatch):
    def bug(*a, **k):
        raise RuntimeError("a bug, not a rule the simulator cannot run")

    monkeypatch.setattr(OjaCheck, "measure_rule", bug)
    with pytest.raises(RuntimeError, match="a bug"):
        compare.compare_equation(OJA_EQ, "rate")


def test_missing_protocols_module_skips_the_window_with_a_note(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "analysis.protocols", None)
    monkeypatch.delattr(analysis, "protocols", raising=False)
    d = make_run(tmp_path, "pair", "lif", PAIR_EQ, others=("0.01*s_post*tr_pre",))
    report.run(d)
    df = rundir.read_comparison(d)
    assert df.loc[df["closest"], "canonical"].tolist() == ["stdp_pair"]
    assert df["behaviour_distance"].isna().all()
    assert "STDP window comparison skipped" in (d / "report.md").read_text()
    assert not (d / "comparison_windows.csv").exists()
    assert not (d / "comparison_frequency.csv").exists() and df["frequency_distance"].isna().all()


def test_unexpected_error_in_compare_still_gives_a_report(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise ZeroDivisionError("x")

    monkeypatch.setattr(compare, "compare_run", boom)
    d = make_run(tmp_path, "r", "rate", OJA_EQ)
    report.run(d)
    assert "The comparison could not run. ZeroDivisionError: x" in (d / "report.md").read_text()


def test_malformed_comparison_csv_names_the_file(tmp_path):
    d = make_run(tmp_path, "r", "rate", OJA_EQ)
    pd.DataFrame({"canonical": ["oja"], "term_jaccard": [1.0], "coef_distance": [0.0],
                  "behaviour_distance": [0.1], "closest": ["maybe"]}).to_csv(d / "comparison.csv", index=False)
    with pytest.raises(RunDirError, match=r"comparison\.csv: column 'closest'.*plasticity report DIR"):
        rundir.read_comparison(d)


# --------------------------------------------------------------------------- pairing frequency


def _curve(dw_plus, dw_minus, freqs=(1.0, 20.0, 50.0)):
    rows = [(f, lag, d) for f, p, m in zip(freqs, dw_plus, dw_minus) for lag, d in ((10.0, p), (-10.0, m))]
    return pd.DataFrame(rows, columns=["freq_hz", "lag_ms", "dw"])


def test_frequency_distance_normalizes_each_curve_by_its_own_max():
    a = _curve([0.1, 0.2, 0.4], [-0.2, -0.1, 0.0])
    assert compare.frequency_distance(a, a) == 0.0
    assert compare.frequency_distance(a, a.assign(dw=a["dw"] * 7.5)) == pytest.approx(0.0)  # a learning rate
    assert compare.frequency_distance(a, a.assign(dw=-a["dw"])) == pytest.approx(2 * math.sqrt(
        np.mean((a["dw"] / 0.4) ** 2)))
    assert compare.frequency_distance(a, a.iloc[::-1]) == 0.0  # row order does not matter
    b = _curve([0.0, 0.0, 0.0], [0.0, 0.0, 0.0])
    assert compare.frequency_distance(b, b) == 0.0
    assert math.isnan(compare.frequency_distance(a, a.iloc[:4]))  # different points
    assert math.isnan(compare.frequency_distance(a, a.assign(dw=np.nan)))  # a diverged rule


def test_frequency_curves_of_the_neural_rule_and_a_custom_teacher(tmp_path):
    from discover.build import rule_spec
    from discover.io import save_pytree
    from discover.rules import SymbolicRule

    d = make_run(tmp_path, "pair", "lif", PAIR_EQ, others=("0.01*s_post*tr_pre",))
    # a trained "neural" rule (a symbolic stand-in that load_rule reads like any other) and a teacher
    # given as an equation with its own parameters
    neural = SymbolicRule.from_string(PAIR_EQ, {}, label="neural")
    (d / "rule").mkdir()
    (d / "rule" / "rule.json").write_text(json.dumps(rule_spec(neural)))
    import jax

    save_pytree(d / "rule" / "params.npz", neural.init(jax.random.key(0)))
    text = (d / "config.toml").read_text().replace(
        "[network]", '[task.teacher]\nrule = "a*s_post*tr_pre - b*s_pre*tr_post"\n\n'
                     "[task.teacher.params]\na = 0.02\nb = 0.021\n\n[network]")
    (d / "config.toml").write_text(text)
    result = compare.run(d)
    freq = rundir.read_comparison_frequency(d)
    lif = [n for n, c in CANONICAL.items() if c.network == "lif" and not c.population and n not in ("us_error", "us_reward")]
    assert freq["rule"].drop_duplicates().tolist() == ["equation", "neural", "teacher", *lif]
    curve = freq.set_index(["rule", "freq_hz", "lag_ms"])["dw"]
    assert curve["neural"].to_numpy() == pytest.approx(curve["equation"].to_numpy())
    # the teacher is pair STDP at twice the published amplitudes (additive: twice its dw)
    assert curve["teacher"].to_numpy() == pytest.approx(2 * curve["stdp_pair"].to_numpy(), rel=1e-3)  # float32
    assert not any("neural rule" in n for n in result.notes)
    assert (d / "comparison_frequency.csv") in result.paths


def test_failed_frequency_protocol_keeps_the_windows(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise FloatingPointError("frequency exploded")

    monkeypatch.setattr(FrequencyCheck, "measure_rule", boom)
    d = make_run(tmp_path, "pair", "lif", PAIR_EQ, others=("0.01*s_post*tr_pre",))
    (d / "comparison_frequency.csv").write_text("rule,freq_hz,lag_ms,dw\nequation,1,10,0.1\n")  # stale
    report.run(d)
    df = rundir.read_comparison(d)
    pairing = ~df["canonical"].isin(["us_error", "us_reward"])  # those have no pairing behaviour
    assert df["frequency_distance"].isna().all() and df.loc[pairing, "behaviour_distance"].notna().all()
    assert (d / "comparison_windows.csv").is_file()
    assert not (d / "comparison_frequency.csv").exists()
    assert not (d / "figures" / "comparison_frequency.png").exists()
    assert "Pairing-frequency protocol failed: FloatingPointError: frequency exploded" in (d / "report.md").read_text()


def test_stale_frequency_outputs_are_removed_when_the_run_becomes_a_rate_run(tmp_path):
    d = make_run(tmp_path, "r", "lif", PAIR_EQ, others=("0.01*s_post*tr_pre",))
    report.run(d)
    assert (d / "comparison_frequency.csv").is_file() and (d / "figures" / "comparison_frequency.pdf").is_file()
    (d / "config.toml").write_text('[task]\nname = "oja_pca"\n\n[network]\nkind = "rate"\n')
    eqs = pd.read_csv(d / "equations.csv")
    eqs.loc[eqs["selected"], ["sympy", "equation"]] = [OJA_EQ, OJA_EQ]
    eqs.to_csv(d / "equations.csv", index=False)
    report.run(d)
    assert rundir.read_comparison(d).loc[lambda t: t["closest"], "canonical"].tolist() == ["oja"]
    for p in ("comparison_frequency.csv", "comparison_windows.csv", "figures/comparison_frequency.png",
              "figures/comparison_frequency.pdf", "figures/comparison_window.png"):
        assert not (d / p).exists(), p
    assert "comparison_frequency" not in (d / "report.md").read_text()
    # and when the comparison cannot run at all
    for p in ("comparison_frequency.csv", "figures/comparison_frequency.png", "figures/comparison_frequency.pdf"):
        (d / p).write_text("stale")
    compare.remove_outputs(d)
    assert not (d / "comparison_frequency.csv").exists() and not list((d / "figures").glob("comparison*"))


# --------------------------------------------------------------------------- several runs


def _runs(tmp_path: Path) -> list[Path]:
    return [
        make_run(tmp_path, "oja_seed_0_with_a_rather_long_run_name", "rate", OJA_EQ, task="oja_pca"),
        make_run(tmp_path, "stdp_pair_open_loop", "lif", PAIR_EQ, others=("0.01*s_post*tr_pre",)),
        make_run(tmp_path, "stdp_triplet", "lif", TRIPLET_EQ, others=("0.01*s_post*tr_pre",),
                 timescales=TRIPLET_TAUS),
    ]


def test_cli_compare_writes_one_table_and_one_figure(tmp_path, capsys):
    runs = _runs(tmp_path)
    out = tmp_path / "cmp"
    assert main(["compare", *map(str, runs), "--out", str(out)]) == 0
    assert "compare: 3 runs" in capsys.readouterr().out
    df = pd.read_csv(out / "runs_comparison.csv")
    assert df["run"].tolist() == [r.name for r in runs]
    assert df["closest"].tolist() == ["oja", "stdp_pair", "stdp_triplet"]
    assert df["relative_to_neural"].to_numpy() == pytest.approx([0.91 / 0.9] * 3)
    coef = df.set_index("run")
    assert coef.loc[runs[0].name, "coef[w*y**2]"] == -1.0
    assert coef.loc[runs[0].name, "coef[x*y]"] == pytest.approx(0.0141 / 0.0149)
    assert coef.loc[runs[1].name, "coef[x*y]"] == 0.0  # a term another run lacks is 0
    assert coef.loc[runs[1].name, "coef[s_pre*tr_post]"] == -1.0
    tex = (out / "runs_comparison.tex").read_text()
    assert tex.count(r"\\") == 4 and r"\begin{tabularx}" in tex  # header + 3 runs
    # the triplet run's equation with the time constants of the traces it reads
    assert json.loads(coef.loc[runs[2].name, "timescales"]) == {"tau_pre": 16.8, "tau_post": 33.7,
                                                                 "tau_post_slow": 114.0}  # not tau_pre_slow
    assert json.loads(coef.loc[runs[0].name, "timescales"]) == {}  # a rate rule reads no trace
    assert r"\newline $\tau_\mathrm{pre} = " in tex and r"\tau_\mathrm{post\_slow}" in tex
    assert r"stdp\_\allowbreak{}pair" in tex and r"$\Delta w = - 0.0149 w y^{2} + 0.0141 x y$" in tex
    assert (out / "runs_comparison.png").read_bytes().startswith(b"\x89PNG")
    assert (out / "runs_comparison.pdf").read_bytes().startswith(b"%PDF")
    assert r"\input{runs_comparison.tex}" in (out / "preview.tex").read_text()


def test_runs_table_reuses_each_runs_comparison(tmp_path):
    a, b = _runs(tmp_path)[:2]
    report.run(b)  # writes b/comparison.csv with a behaviour distance
    df = compare.runs_table([a, b]).set_index("run")
    assert math.isnan(df.loc[a.name, "behaviour_distance"])  # equation level only
    assert df.loc[b.name, "behaviour_distance"] < 0.05


def test_cli_compare_bad_run_directory_exits_2(tmp_path, capsys):
    run = make_run(tmp_path, "r", "rate", OJA_EQ)
    (run / "equations.csv").unlink()
    assert main(["compare", str(run), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "equations.csv" in err and "plasticity distill" in err and "Traceback" not in err


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed on this machine")
def test_runs_comparison_compiles_without_overfull_boxes(tmp_path):
    out = tmp_path / "cmp"
    compare.compare_runs(_runs(tmp_path), out)
    res = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "preview.tex"], cwd=out,
                         capture_output=True, text=True, timeout=180)
    log = (out / "preview.log").read_text(errors="replace")
    assert res.returncode == 0, res.stdout[-3000:]
    assert "Overfull \\hbox" not in log, log[log.find("Overfull"):][:1500]


def test_comparison_table_golden():
    df = pd.DataFrame({
        "canonical": ["stdp_pair", "stdp_triplet"],
        "canonical_latex": ["0.01 s_{post} tr_{pre} - 0.0105 s_{pre} tr_{post}",
                            "0.0065 s_{post} tr_{post slow} tr_{pre} - 0.0071 s_{pre} tr_{post}"],
        "equation_id": ["1", "1"],
        "equation_latex": ["0.0098 s_{post} tr_{pre} - 0.0104 s_{pre} tr_{post}"] * 2,
        "term_jaccard": [1.0, 1 / 3],
        "coef_distance": [0.0101, 1.3138],
        "behaviour_distance": [0.00343, float("nan")],
        "behaviour": ["stdp_window", "stdp_window"],
        "closest": [True, False],
    })
    expected = r"""\begin{table}[htbp]
  \centering
  \small
  \caption{Comparison}
  \label{tab:comparison}
  \begin{tabularx}{\linewidth}{>{\raggedright\arraybackslash}p{0.18\linewidth}>{\raggedright\arraybackslash}Xrrr}
    \toprule
    Rule & $\Delta w$ & $J$ & $d_\mathrm{coef}$ & $d_\mathrm{beh}$ \\
    \midrule
    discovered (eq.~1) & $0.0098 \allowbreak s_{post} \allowbreak tr_{pre} - 0.0104 \allowbreak s_{pre} \allowbreak tr_{post}$ &  &  &  \\
    \midrule
    \textbf{stdp\_\allowbreak{}pair} & {\boldmath$0.01 \allowbreak s_{post} \allowbreak tr_{pre} - 0.0105 \allowbreak s_{pre} \allowbreak tr_{post}$} & {\boldmath$1.00$} & {\boldmath$0.0101$} & {\boldmath$0.00343$} \\
    stdp\_\allowbreak{}triplet & $0.0065 \allowbreak s_{post} \allowbreak tr_{post slow} \allowbreak tr_{pre} - 0.0071 \allowbreak s_{pre} \allowbreak tr_{post}$ & $0.333$ & $1.31$ & -- \\
    \bottomrule
  \end{tabularx}
\end{table}
"""
    assert tables.comparison_table(df, caption="Comparison") == expected
    assert "STDP pairing windows" in tables.comparison_table(df)
