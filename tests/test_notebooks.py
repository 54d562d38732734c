"""Tutorials in notebooks/ (jupytext .py files) are executed, at their small sizes."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pandas as pd
import pytest
import sympy

from discover.vocabulary import SYMBOLS

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, tmp_path, monkeypatch):
    monkeypatch.setenv("QUICKSTART_OUT", str(tmp_path))
    runpy.run_path(str(path), run_name="__main__")
    if path.stem == "quickstart":
        sel = pd.read_csv(tmp_path / "equations.csv").query("selected").iloc[0]
        coefs = {sympy.sympify(t, locals=SYMBOLS): v["value"] for t, v in json.loads(sel["coefficients"]).items()}
        x, y, w = SYMBOLS["x"], SYMBOLS["y"], SYMBOLS["w"]
        assert set(coefs) == {x * y, w * y**2, w}
        assert coefs[x * y] == pytest.approx(0.01, rel=0.05)
