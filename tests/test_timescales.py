"""An equation of traces is complete only with its time constants (issue 16): the learned
ones travel from meta-training to ``rule/rule.json``, ``manifest.json``, ``equations.csv``,
the report's selected-equation block, the LaTeX table and ``plasticity export``."""

from __future__ import annotations

import importlib.util
import json

import pandas as pd
import pytest

from analysis.sections import selected_section
from analysis.tables import equations_table
from discover.equations import parse_equation
from discover.io import selected_equation
from plasticity.cli import main

SMALL = ["--set", "task.steps=200", "--set", "task.n_pre=10", "--set", "meta.steps=6", "--set", "meta.population=8",
         "--set", "meta.batch=4", "--set", "meta.val_episodes=4", "--set", "meta.eval_every=3",
         "--set", "distill.samples=600", "--set", "distill.episodes=4", "--set", "distill.bootstrap=5",
         "--set", "verify.episodes=4"]


@pytest.mark.slow
def test_stdp_pair_report_and_table_carry_the_learned_time_constants(tmp_path):
    out = tmp_path / "run"
    assert main(["run", "configs/stdp_pair.toml", "--out", str(out), "--quiet", *SMALL]) == 0
    record = json.loads((out / "manifest.json").read_text())["timescales"]
    assert record["learned"] and record["initial"] == {"tau_pre": 30.0, "tau_post": 12.0}
    final = record["final"]
    assert set(final) == {"tau_pre", "tau_post"} and final != record["initial"]  # CMA-ES moved them
    spec = dict(json.loads((out / "rule" / "rule.json").read_text())["timescales"])
    assert spec["tau_pre"] == pytest.approx(final["tau_pre"], rel=1e-4)  # what the rule runs with
    eqs = pd.read_csv(out / "equations.csv")
    for e, t in zip(eqs["sympy"], eqs["timescales"]):  # each row: the learned values of the traces it reads
        reads = json.loads(t)
        assert set(reads) == {k for k, tr in (("tau_pre", "tr_pre"), ("tau_post", "tr_post")) if tr in e}, e
        assert all(reads[k] == pytest.approx(final[k], rel=1e-3) for k in reads)
    sel = selected_equation(out)
    block = (out / "report.md").read_text().split("## Selected equation")[1].split("\n## ")[0]
    reads = json.loads(sel["timescales"])
    assert ("Trace time constants it was found with:" in block) == bool(reads)
    assert all(f"{k} = {reads[k]:.4g} ms" in block for k in reads)
    tex = (out / "tables" / "equations.tex").read_text()
    assert (r"\tau_\mathrm{" in tex) == bool(reads)
    # whatever this short run selected: a row that reads a trace, as stdp_pair's full run selects
    traced = eqs[eqs["sympy"].str.contains("tr_")]
    assert len(traced), eqs["sympy"].tolist()
    row = traced.iloc[0].copy()
    reads = json.loads(row["timescales"])
    blocks = selected_section(pd.DataFrame([row]).assign(selected=True))
    text = "\n".join(getattr(b, "text", "") for b in blocks)
    assert "Trace time constants it was found with: " + ", ".join(f"{k} = {final[k]:.4g} ms" for k in reads) in text
    caption = equations_table(pd.DataFrame([row]).assign(selected=True))
    assert all(rf"\tau_\mathrm{{{k[4:]}}} = " in caption for k in reads) and "~ms" in caption
    # the export carries the selected equation with the learned time constants of its traces;
    # a run this short may select a rule of traces alone, which export refuses (Brian2 updates
    # synapses at events): the traced event-driven row stands in for the selection
    if "s_pre" not in str(sel["sympy"]) and "s_post" not in str(sel["sympy"]):
        ver = pd.read_csv(out / "verification.csv")
        event = eqs[eqs["sympy"].str.contains("tr_") & eqs["sympy"].str.contains("s_p")].iloc[0]
        ver["selected"] = ver["rule"] == f"eq{event['id']}"
        ver.to_csv(out / "verification.csv", index=False)
        sel = selected_equation(out)
    module = tmp_path / "rule_b2.py"
    assert main(["export", str(out), "--to", "brian2", "--out", str(module)]) == 0
    spec = importlib.util.spec_from_file_location("rule_b2", module)
    exported = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(exported)  # imports no brian2 until make_synapses
    assert parse_equation(exported.EQUATION) == parse_equation(sel["sympy"])
    reads = json.loads(sel["timescales"])
    assert set(exported.TIMESCALES_MS) == set(reads)
    assert all(exported.TIMESCALES_MS[k] == pytest.approx(final[k], rel=1e-4) for k in reads)
    assert (exported.W_MIN, exported.W_MAX) == (0.0, 1.0)
