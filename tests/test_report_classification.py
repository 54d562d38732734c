"""The "Classification" section of the report: ``classification.csv`` of ``few_shot``.

A run directory is written by hand, as in tests/test_analysis.py (whose manifest, history
and verification it reuses), with a ``few_shot`` config of 5 ways, a ``behaviour.csv`` and a
``classification.csv`` shaped like the one verification writes (the meta-learned rule, the
distilled equation and six baselines; Adam without angles, the rules without a learning
rate). The report must show the section right after the task behaviour, its table in
percent, a verdict on the claim of Shervani-Tabar & Rosenbaum 2023, the figure (with a
chance line at 1/ways) and ``tables/classification.tex``; a malformed file is a
:class:`discover.io.RunDirError` naming it and its column (exit code 2 through the CLI),
raised before anything is written; a run without the file has no such section.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_analysis import MANIFEST, _history, _verification

from analysis import figures, report, rundir, sections, tables
from discover.io import RunDirError

FEW_SHOT_TOML = """\
[task]
name = "few_shot"
n_pre = 64
n_post = 5
dataset = "digits"

[network]
kind = "rate_layers"

[rule]
kind = "mlp"

[meta]
steps = 600
batch = 16
seed = 0
learning_rate = 0.003
"""

METHODS = ["neural", "equation", "backprop", "backprop_adam", "feedback_alignment", "readout_only", "hebbian", "oja"]


def _classification() -> pd.DataFrame:
    nan = float("nan")
    return pd.DataFrame({
        "method": METHODS,
        "accuracy_mean": [0.5512, 0.5234, 0.6092, 0.6924, 0.2945, 0.4511, 0.2411, 0.2508],
        "ci_low": [0.5401, 0.5112, 0.5930, 0.6795, 0.2834, 0.4300, 0.2195, 0.2279],
        "ci_high": [0.5623, 0.5356, 0.6256, 0.7054, 0.3056, 0.4723, 0.2626, 0.2736],
        "seeds": [5] * 8,
        "learning_rate": [nan, nan, 0.05477, 0.00573, 0.09703, 0.9558, 0.001, 0.001],
        "angle_to_backprop_deg": [61.25, 63.0, 0.0, nan, 70.91, 77.16, 75.84, 75.97],
        "angle_hidden_deg": [80.5, 82.0, 0.0, nan, 91.78, 90.0, 100.47, 99.43],
        "equation": ["", "-0.0612*e_post*x", "-0.05477*e_post*x", "Adam (optax)", "-0.09703*e_post*x",
                     "hidden: 0; readout: -0.9558*e_post*x", "hidden: 0.001*x*y; readout: -0.9558*e_post*x",
                     "hidden: -0.001*w*y**2 + 0.001*x*y; readout: -0.9558*e_post*x"],
    })


def _write_run(root: Path, with_classification: bool = True) -> Path:
    d = root / "few_shot_run"
    d.mkdir()
    (d / "config.toml").write_text(FEW_SHOT_TOML)
    (d / "manifest.json").write_text(json.dumps(MANIFEST))
    _history().to_csv(d / "meta_history.csv", index=False)
    _verification().to_csv(d / "verification.csv", index=False)
    pd.DataFrame({"rule": ["neural", "selected"], "metric": ["query_accuracy"] * 2, "at": [50.0, 50.0],
                  "mean": [0.55, 0.52], "ci_low": [0.54, 0.51], "ci_high": [0.56, 0.53]}
                 ).to_csv(d / "behaviour.csv", index=False)
    if with_classification:
        _classification().to_csv(d / "classification.csv", index=False)
    return d


@pytest.fixture(scope="module")
def reported(tmp_path_factory) -> tuple[Path, dict]:
    d = _write_run(tmp_path_factory.mktemp("classification"))
    return d, report.run(d, behaviour=False)


def _section(md: str) -> str:
    start = md.index("## Classification")
    return md[start:md.index("\n## ", start + 1)]


# --------------------------------------------------------------------------- reading


def test_read_classification_types_and_file_order(tmp_path):
    df = rundir.read_classification(_write_run(tmp_path))
    assert df["method"].tolist() == METHODS
    assert df["seeds"].dtype.kind == "i" and df["learning_rate"].dtype == float
    assert np.isnan(df.loc[df["method"] == "backprop_adam", "angle_to_backprop_deg"]).all()
    assert df["equation"].iloc[0] == ""  # an empty cell is empty text, not NaN
    (tmp_path / "b").mkdir()
    assert rundir.read_classification(_write_run(tmp_path / "b", with_classification=False)) is None


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda df: df.drop(columns=["accuracy_mean"]),
         r"classification\.csv: missing column 'accuracy_mean'.*plasticity verify DIR"),
        (lambda df: df.assign(ci_low=["x", *df["ci_low"][1:]]),
         r"classification\.csv: column 'ci_low' must hold numbers, but row 1 holds 'x'"),
        (lambda df: df.assign(learning_rate=["fast", *df["learning_rate"][1:]]),
         r"classification\.csv: column 'learning_rate' must hold numbers, but row 1 holds 'fast'"),
        (lambda df: df.assign(accuracy_mean=100 * df["accuracy_mean"]),
         r"classification\.csv: column 'accuracy_mean' must hold fractions in \[0, 1\] \(not percent\), but row 1 "
         r"holds 55\.12"),
        (lambda df: df.assign(seeds=[5, 2.5, *df["seeds"][2:]]),
         r"classification\.csv: column 'seeds' must hold whole numbers >= 1, but row 2 holds 2\.5"),
        (lambda df: df.assign(method=["neural", "neural", *df["method"][2:]]),
         r"classification\.csv: column 'method' names 'neural' twice \(again in row 2\)"),
    ],
)
def test_malformed_classification_raises_naming_file_and_column(tmp_path, change, match):
    d = _write_run(tmp_path)
    change(_classification()).to_csv(d / "classification.csv", index=False)
    with pytest.raises(RunDirError, match=match) as info:
        report.run(d, behaviour=False)
    assert isinstance(info.value, ValueError)
    assert not (d / "report.md").exists() and not (d / "figures").exists()  # checked before anything is written


def test_missing_accuracy_is_exit_code_2_through_the_cli(tmp_path, capsys):
    from plasticity.cli import main

    d = _write_run(tmp_path)
    _classification().drop(columns=["accuracy_mean"]).to_csv(d / "classification.csv", index=False)
    assert main(["report", str(d)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "classification.csv" in err and "'accuracy_mean'" in err
    assert "plasticity verify" in err and "Traceback" not in err


# --------------------------------------------------------------------------- the report


def test_section_follows_the_task_behaviour(reported):
    md = (reported[0] / "report.md").read_text()
    headings = re.findall(r"^## (.+)$", md, flags=re.M)
    assert headings[headings.index("Task behaviour") + 1] == "Classification"
    assert md.count("## Classification") == 1


def test_section_table_in_percent(reported):
    text = _section((reported[0] / "report.md").read_text())
    assert "query accuracy on held-out classes" in text.lower() and "95 % t-interval over the seeds" in text
    assert "tuned on the training classes" in text and "hidden layers only" in text
    assert ("| method | accuracy | seeds | learning rate | angle (deg) | hidden angle (deg) | equation |"
            in text)
    assert "| `neural` | 55.1 % [54.0, 56.2] | 5 | n/a | 61.2 | 80.5 |  |" in text
    assert "| `backprop` | 60.9 % [59.3, 62.6] | 5 | 0.0548 | 0.0 | 0.0 | `-0.05477*e_post*x` |" in text
    assert "| `backprop_adam` | 69.2 % [68.0, 70.5] | 5 | 0.00573 | n/a | n/a | `Adam (optax)` |" in text
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert [r.split(" | ")[0][3:-1] for r in rows] == METHODS  # file order
    assert "LaTeX: `tables/classification.tex`; data: `classification.csv`." in text


def test_section_verdict_states_plainly_that_the_claim_is_not_met(reported):
    text = _section((reported[0] / "report.md").read_text())
    # equation 52.34 %, feedback alignment 29.45 %, backprop 60.92 %
    assert ("The distilled equation is 22.9 points above feedback alignment and 8.6 points below backprop (SGD): "
            "it does **not** meet the claim of Shervani-Tabar & Rosenbaum 2023 (at least 5 points above feedback "
            "alignment and within 2 points of backprop); it is more than 2 points below backprop.") in text
    page = (reported[0] / "report.html").read_text()
    assert "does <strong>not</strong> meet the claim of Shervani-Tabar &amp; Rosenbaum 2023" in page


@pytest.mark.parametrize(
    "equation, expected",
    [
        (0.6021, "The distilled equation is 30.8 points above feedback alignment and 0.7 points below backprop (SGD): "
                 "it meets the claim"),
        (0.6321, "2.3 points above backprop (SGD): it meets the claim"),
        (0.3121, "1.8 points above feedback alignment and 29.7 points below backprop (SGD): it does **not** meet the "
                 "claim of Shervani-Tabar & Rosenbaum 2023 (at least 5 points above feedback alignment and within 2 "
                 "points of backprop); it is less than 5 points above feedback alignment and it is more than 2 points "
                 "below backprop."),
        (0.2012, "9.3 points below feedback alignment"),
    ],
)
def test_verdict_against_the_thresholds(equation, expected):
    df = _classification()
    df.loc[df["method"] == "equation", "accuracy_mean"] = equation
    assert expected in sections.classification_verdict(df)


def test_no_verdict_without_the_three_rows():
    df = _classification()
    assert sections.classification_verdict(df[df["method"] != "backprop"]) == ""
    assert sections.classification_verdict(df[df["method"] != "feedback_alignment"]) == ""
    assert sections.classification_verdict(df[df["method"] != "equation"]) == ""
    blocks = sections.classification_section(df[df["method"] != "equation"])
    assert not any("distilled equation is" in getattr(b, "text", "") for b in blocks)


def test_required_columns_alone_give_a_table_without_the_optional_ones(tmp_path):
    d = _write_run(tmp_path)
    _classification()[["method", "accuracy_mean", "ci_low", "ci_high", "seeds"]].to_csv(
        d / "classification.csv", index=False)
    report.run(d, behaviour=False)
    text = _section((d / "report.md").read_text())
    assert "| method | accuracy | seeds |\n" in text
    assert "| `oja` | 25.1 % [22.8, 27.4] | 5 |\n" in text
    tex = (d / "tables" / "classification.tex").read_text()
    assert r"\eta" not in tex and r"\angle" not in tex and "Method & Accuracy (\\%) & CI \\\\" in tex


def test_figure_is_written_with_a_chance_line(reported):
    d, paths = reported
    assert {p.name for p in paths["figures"]} >= {"classification.png", "classification.pdf"}
    assert (d / "figures" / "classification.png").read_bytes().startswith(b"\x89PNG")
    assert (d / "figures" / "classification.pdf").read_bytes().startswith(b"%PDF")
    text = _section((d / "report.md").read_text())
    assert "](figures/classification.png)" in text and "dashed: chance (20.0 %" in text
    page = (d / "report.html").read_text()
    section = page[page.index("<h2>Classification</h2>"):]
    assert re.search(r'<figure><img src="data:image/png;base64,[^"]+"[^>]*><figcaption>Query accuracy on held-out',
                     section[:section.index("<h2>", 5)])


def test_figure_bars_and_chance():
    df = _classification()
    fig = figures.classification_figure(df, chance=0.2)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == METHODS
    assert np.allclose([b.get_width() for b in ax.patches], 100 * df["accuracy_mean"])
    chance = [ln for ln in ax.get_lines() if ln.get_label() == "chance"]
    assert len(chance) == 1 and np.allclose(chance[0].get_xdata(), 20.0)
    ax = figures.classification_figure(df).axes[0]  # no chance known: no line
    assert not [ln for ln in ax.get_lines() if ln.get_label() == "chance"]
    figures.figure_bytes(fig, "png")


def test_chance_only_for_few_shot():
    assert figures.chance_accuracy({"task": {"name": "few_shot", "n_post": 4}}) == 0.25
    assert figures.chance_accuracy({"task": {"name": "oja_pca", "n_post": 4}}) is None
    assert figures.chance_accuracy({"task": {"name": "few_shot"}}) is None


def test_classification_tex_is_written_and_in_preview(reported):
    d, paths = reported
    assert "classification.tex" in [p.name for p in paths["tables"]]
    tex = (d / "tables" / "classification.tex").read_text()
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex
    assert r"\label{tab:classification}" in tex and "over 5 seeds" in tex
    for m in METHODS:
        assert f"    {tables.breakable_text(m)} & " in tex
    assert r"backprop & $60.9$ & $[59.3, 62.6]$ & $0.0548$ & $0.0$ & $0.0$ \\" in tex
    assert r"backprop\_\allowbreak{}adam & $69.2$ & $[68.0, 70.5]$ & $0.00573$ & -- & -- \\" in tex
    assert r"\input{classification.tex}" in (d / "tables" / "preview.tex").read_text()


def test_seeds_column_only_when_they_differ():
    df = _classification()
    assert "Seeds" not in tables.classification_table(df)
    df.loc[0, "seeds"] = 3
    tex = tables.classification_table(df)
    assert "Seeds" in tex and "over the seeds" in tex and r"neural & $55.1$ & $[54.0, 56.2]$ & 3 & " in tex


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed on this machine")
def test_classification_tex_compiles_without_overfull_boxes(reported, tmp_path):
    shutil.copy(reported[0] / "tables" / "classification.tex", tmp_path)
    from analysis.latex import preview_document

    (tmp_path / "preview.tex").write_text(preview_document(["classification.tex"]))
    res = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "preview.tex"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stdout[-3000:]
    log = (tmp_path / "preview.log").read_text(errors="replace")
    assert "Overfull \\hbox" not in log, log[log.find("Overfull"):][:1500]


def test_no_classification_file_no_section(tmp_path):
    d = _write_run(tmp_path, with_classification=False)
    (d / "tables").mkdir()
    (d / "tables" / "classification.tex").write_text("stale")
    paths = report.run(d, behaviour=False)
    md = (d / "report.md").read_text()
    assert "## Classification" not in md and "classification.csv" not in md  # not even a note
    assert "## Task behaviour" in md
    assert not any(p.stem == "classification" for p in paths["figures"])
    assert not (d / "tables" / "classification.tex").exists()  # a stale table is removed
