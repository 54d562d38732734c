"""Tutorials in notebooks/ (jupytext .py files) are executed, at their small sizes."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest
import sympy

from discover.vocabulary import SYMBOLS

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, tmp_path, monkeypatch):
    monkeypatch.setenv("QUICKSTART_OUT", str(tmp_path))
    runpy.run_path(str(path), run_name="__main__")
    if path.stem == "custom_task":  # every stage ran on a task named by import path; the report exists
        import plasticity as pl

        run = pl.load_run(tmp_path / "runs" / "target_rate")
        assert run.config.task.name == "target_rate:TargetRate" and run.config.task.target == 2.0
        text = (run.path / "config.toml").read_text()
        assert "tau_m" not in text and "eigen_decay" not in text  # only what applies to this task and network
        ver = run.verification.set_index("rule")
        assert ver.loc[f"eq{run.selected['id']}", "relative_to_neural"] > 0.95
        assert ver.loc["neural", "objective_mean"] > 0.9  # the neuron reaches the target rate
        assert (run.path / "report.html").stat().st_size > 10_000 and (run.path / "report.md").is_file()
    if path.stem == "quickstart":
        from discover.io import selected_equation

        sel = selected_equation(tmp_path)
        coefs = {sympy.sympify(t, locals=SYMBOLS): v["value"] for t, v in json.loads(sel["coefficients"]).items()}
        x, y, w = SYMBOLS["x"], SYMBOLS["y"], SYMBOLS["w"]
        assert set(coefs) == {x * y, w * y**2, w}
        assert coefs[x * y] == pytest.approx(0.01, rel=0.05)
