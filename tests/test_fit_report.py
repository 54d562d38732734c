"""The "Fit to data" section of the report: ``fit.csv`` and ``data_fit.csv`` of ``fit_protocols``.

A run directory is written by hand, as in tests/test_analysis.py (whose config, manifest
and history it reuses): a spiking front of three equations, a verification under the
``aic`` policy with two published Pfister & Gerstner 2006 sets, and the two files of the
fit to data, with pairings at two frequencies and lags, two triplets (one without a SEM)
and a published set whose AIC is below the selected equation's. The report must show the
section right after the selected equation, its table sorted by AIC with the equation of
least AIC marked, the figure and ``tables/fit.tex``; a malformed file is a
:class:`discover.io.RunDirError` naming it and its column (exit code 2 through the CLI);
a run without the files has no such section.
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
from test_analysis import CONFIG_TOML, MANIFEST, _history

from analysis import figures, report, rundir, tables
from discover.io import RunDirError

EQS = ["0.01*s_post*tr_pre", "0.0098*s_post*tr_pre - 0.0104*s_pre*tr_post",
       "0.0037*s_post*tr_post_slow*tr_pre - 0.0071*s_pre*tr_post"]
PG = {"pg2006_visual_all_to_all_minimal": "0.0065*s_post*tr_post_slow*tr_pre - 0.0071*s_pre*tr_post",
      "pg2006_visual_nearest_minimal": "0.05*s_post*tr_post_slow*tr_pre - 0.008*s_pre*tr_post"}

#: By AIC: the nearest-spike published set first (below every equation), then eq1, the selected one.
AIC_ORDER = ["pg2006_visual_nearest_minimal", "eq1", "pg2006_visual_all_to_all_minimal", "eq2", "eq0"]


def _fit() -> pd.DataFrame:
    rows = [("eq0", "equation", EQS[0], 8.0, 1), ("eq1", "equation", EQS[1], 0.7, 2),
            ("eq2", "equation", EQS[2], 0.65, 3), ("pg2006_visual_all_to_all_minimal", "published",
                                                   PG["pg2006_visual_all_to_all_minimal"], 0.6, 3),
            ("pg2006_visual_nearest_minimal", "published", PG["pg2006_visual_nearest_minimal"], 0.2, 3)]
    df = pd.DataFrame(rows, columns=["rule", "kind", "equation", "loss", "free_parameters"])
    df["chi_square"] = 6 * df["loss"]  # N = 6 experiments
    df["aic"] = df["chi_square"] + 2 * df["free_parameters"]
    return df


def _data_fit() -> pd.DataFrame:
    freq = [1.0, 1.0, 20.0, 20.0, 1.0, 1.0]
    lag = [10.0, -10.0, 10.0, -10.0, np.nan, np.nan]
    dw = np.array([0.05, -0.3, 0.3, -0.35, 0.25, 0.1])
    sem = [0.05, 0.08, 0.14, 0.1, 0.07, np.nan]
    return pd.DataFrame({
        "dataset": ["sjostrom2001"] * 4 + ["wang2005"] * 2,
        "protocol": ["pairing"] * 4 + ["post_pre_post", "pre_post_pre"],
        "label": ["Δt = +10 ms, 60 at 1 Hz", "Δt = -10 ms, 60 at 1 Hz", "Δt = +10 ms, 60 at 20 Hz",
                  "Δt = -10 ms, 60 at 20 Hz", "post_pre_post (5, -5) ms", "pre_post_pre (5, -5) ms"],
        "pre_ms": ["0", "0", "0", "0", "5", "0;10"], "post_ms": ["10", "-10", "10", "-10", "0;10", "5"],
        "freq_hz": freq, "lag_ms": lag, "pairs": 60, "trains": 1, "dw": dw, "sem": sem,
        "sigma": [0.05, 0.08, 0.14, 0.1, 0.07, 0.1],  # the default SEM, 0.1, where the data give none
        "dw_neural": dw * 0.9, "dw_selected": dw + 0.02,
        "dw_pg2006_visual_all_to_all_minimal": dw - 0.03, "dw_pg2006_visual_nearest_minimal": dw + 0.01,
    })


def _write_run(root: Path, with_fit: bool = True) -> Path:
    d = root / "sjostrom_run"
    d.mkdir()
    (d / "config.toml").write_text(CONFIG_TOML.replace('"oja_pca"', '"fit_protocols"')
                                   .replace('kind = "rate"', 'kind = "lif"'))
    (d / "manifest.json").write_text(json.dumps(MANIFEST))
    _history().to_csv(d / "meta_history.csv", index=False)
    pd.DataFrame({
        "id": [0, 1, 2], "backend": ["sparse"] * 3, "complexity": [5, 11, 13], "loss": [3e-6, 2e-8, 1.9e-8],
        "score": [0.0, 2.1, 0.01], "equation": EQS, "sympy": EQS, "latex": ["", "", ""],
        "selected": [False, False, True],  # distill's pick; verification's (the AIC's) wins
    }).to_csv(d / "equations.csv", index=False)
    rules = ["neural", "eq0", "eq1", "eq2", *PG]
    pd.DataFrame({
        "rule": rules, "kind": ["neural", "equation", "equation", "equation", "published", "published"],
        "equation": ["", *EQS, *PG.values()],
        "objective_mean": [-0.3, -8.0, -0.7, -0.65, -0.6, -0.2],
        "objective_ci_low": [-0.5, -9.0, -0.9, -0.7, -0.8, -0.3],
        "objective_ci_high": [-0.1, -7.0, -0.5, -0.4, -0.4, -0.1],
        "relative_to_neural": [1.0, 26.7, 2.33, 1.83, 2.0, 0.667],
        "selected": [r == "eq1" for r in rules],
    }).to_csv(d / "verification.csv", index=False)
    if with_fit:
        _fit().sample(frac=1.0, random_state=0).to_csv(d / "fit.csv", index=False)  # file order is not AIC order
        _data_fit().to_csv(d / "data_fit.csv", index=False)
    return d


@pytest.fixture(scope="module")
def reported(tmp_path_factory) -> tuple[Path, dict]:
    d = _write_run(tmp_path_factory.mktemp("fit"))
    return d, report.run(d, behaviour=False)


def _row_names(tex: str) -> list[str]:
    """The first cell of each body row of LaTeX table(s), bold removed."""
    rows = [line.strip() for line in tex.splitlines() if line.endswith(r"\\") and not line.strip().startswith("Rule &")]
    return [re.sub(r"\\textbf\{(.*?)\}", r"\1", r).split(" &")[0] for r in rows]


def _section(md: str) -> str:
    start = md.index("## Fit to data")
    return md[start:md.index("\n## ", start + 1)]


# --------------------------------------------------------------------------- reading


def test_read_fit_sorts_by_aic_and_marks_the_equation_of_least_aic(tmp_path):
    fit = rundir.read_fit(_write_run(tmp_path))
    assert fit["rule"].tolist() == AIC_ORDER
    assert fit.loc[fit["selected"], "rule"].tolist() == ["eq1"]  # a published set is never the selected equation
    assert fit["free_parameters"].dtype.kind == "i"
    data = rundir.read_data_fit(tmp_path / "sjostrom_run")
    assert data["dw_selected"].dtype == float and data["pre_ms"].tolist()[-1] == "0;10"


@pytest.mark.parametrize(
    "name, frame, change, match",
    [
        ("fit.csv", _fit, lambda df: df.drop(columns=["aic"]), r"fit\.csv: missing column 'aic'.*plasticity verify"),
        ("fit.csv", _fit, lambda df: df.assign(kind=["equation"] * 4 + ["canonical"]),
         r"fit\.csv: column 'kind', row 5 holds 'canonical'; use one of equation, published"),
        ("fit.csv", _fit, lambda df: df.assign(free_parameters=[1, 2.5, 3, 3, 3]),
         r"fit\.csv: column 'free_parameters' must hold whole numbers >= 0, but row 2 holds 2\.5"),
        ("data_fit.csv", _data_fit, lambda df: df.assign(sigma=[0.05, 0.0, 0.1, 0.1, 0.1, 0.1]),
         r"data_fit\.csv: column 'sigma' must hold positive numbers.*row 2 holds 0; .*plasticity verify"),
        ("data_fit.csv", _data_fit, lambda df: df.assign(dw_selected=["x"] * 6),
         r"data_fit\.csv: column 'dw_selected' must hold numbers, but row 1 holds 'x'"),
        ("data_fit.csv", _data_fit, lambda df: df.drop(columns=["lag_ms"]), r"data_fit\.csv: missing column 'lag_ms'"),
    ],
)
def test_malformed_fit_files_raise_naming_file_and_column(tmp_path, name, frame, change, match):
    d = _write_run(tmp_path)
    change(frame()).to_csv(d / name, index=False)
    with pytest.raises(RunDirError, match=match):
        report.run(d, behaviour=False)
    assert not (d / "report.md").exists()  # checked before anything is written


def test_malformed_fit_is_exit_code_2_through_the_cli(tmp_path, capsys):
    from plasticity.cli import main

    d = _write_run(tmp_path)
    _fit().drop(columns=["aic"]).to_csv(d / "fit.csv", index=False)
    assert main(["report", str(d)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "fit.csv" in err and "'aic'" in err and "Traceback" not in err


# --------------------------------------------------------------------------- the report


def test_section_follows_the_selected_equation(reported):
    d, _ = reported
    md = (d / "report.md").read_text()
    headings = re.findall(r"^## (.+)$", md, flags=re.M)
    assert headings[headings.index("Selected equation") + 1] == "Fit to data"
    assert md.count("## Fit to data") == 1


def test_section_text_names_data_error_and_selection(reported):
    text = _section((reported[0] / "report.md").read_text())
    assert "`sjostrom2001` (4), `wang2005` (2): N = 6 experiments (4 pairings, 2 other)" in text
    assert "mean squared deviation from the data in units of the SEM" in text
    assert "the 1 experiment without a SEM is weighted by the task's default SEM, 0.100 (column `sigma`" in text
    assert "Akaike's criterion selects **eq1** (E = 0.700, k = 2, AIC = 8.20)" in text
    # the published set of lower AIC is named, with a signed difference
    assert ("the best published fit, `pg2006_visual_nearest_minimal`, has AIC = 7.20 (ΔAIC = −1.00, lower than "
            "the selected equation)") in text
    assert "> **Note:**" not in text  # the run's pick (verification.csv) is the AIC's


def test_section_table_is_sorted_by_aic_with_the_selected_marked(reported):
    text = _section((reported[0] / "report.md").read_text())
    assert "| rule | kind | equation | E | k | AIC |" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| rule")]
    names = [re.sub(r"[`*]", "", r.split(" | ")[0][2:]).removesuffix(" (selected)") for r in rows]
    assert names == AIC_ORDER
    assert [r for r in rows if "(selected)" in r] == [
        f"| **eq1** (selected) | equation | `{EQS[1]}` | 0.700 | 2 | 8.20 |"]
    assert f"| `pg2006_visual_nearest_minimal` | published | `{PG['pg2006_visual_nearest_minimal']}` | 0.200 | 3 |" \
        " 7.20 |" in rows


def test_section_figure_in_markdown_and_html(reported):
    d, paths = reported
    assert {p.name for p in paths["figures"]} >= {"data_fit.png", "data_fit.pdf"}
    assert (d / "figures" / "data_fit.png").read_bytes().startswith(b"\x89PNG")
    assert (d / "figures" / "data_fit.pdf").read_bytes().startswith(b"%PDF")
    text = _section((d / "report.md").read_text())
    assert "](figures/data_fit.png)" in text and "(PDF: `figures/data_fit.pdf`)" in text
    assert "P&G all-to-all minimal, P&G nearest minimal" in text  # short labels in the caption
    assert "Right: other protocols" in text and "open points: experiments without a SEM" in text
    assert "LaTeX: `tables/fit.tex`; data: `fit.csv`, `data_fit.csv`." in text
    page = (d / "report.html").read_text()
    section = page[page.index("<h2>Fit to data</h2>"):]
    section = section[:section.index("<h2>", 5)]
    assert "<td><strong>eq1</strong> (selected)</td>" in section
    assert "**" not in section  # the marker is rendered, not left as Markdown
    table = section[section.index("<table>"):]
    assert table.index("pg2006_visual_nearest_minimal") < table.index("<strong>eq1</strong>")
    assert re.search(r'<figure><img src="data:image/png;base64,[^"]+"[^>]*><figcaption>Measured weight change',
                     section)
    assert "<code>figures/data_fit.png</code>" in section


def test_fit_tex_is_written_and_in_preview(reported):
    d, paths = reported
    assert "fit.tex" in [p.name for p in paths["tables"]]
    tex = (d / "tables" / "fit.tex").read_text()
    assert r"\toprule" in tex and r"\bottomrule" in tex and r"\label{tab:fit}" in tex
    assert "the 6 measured experiments" in tex
    assert _row_names(tex) == [tables.breakable_text(r) for r in AIC_ORDER]
    assert r"\textbf{eq1} & \textbf{equation} & {\boldmath$" in tex
    assert tex.count(r"\textbf{") == 3  # rule, kind, k of the selected row only
    assert r"\input{fit.tex}" in (d / "tables" / "preview.tex").read_text()


def test_published_label_is_short():
    names = ["dw_pg2006_visual_all_to_all_minimal", "dw_pg2006_visual_nearest_full"]
    assert figures.published_label(names[0], names) == "P&G all-to-all minimal"
    assert figures.published_label("pg2006_hippocampal_nearest_full", [*names, "pg2006_hippocampal_nearest_full"]) \
        == "P&G hippocampal nearest full"  # two preparations: each label keeps its own
    assert figures.published_label("dw_my_fit") == "my_fit"


@pytest.mark.parametrize("rows, panels", [(slice(0, 4), 1), (slice(4, 6), 1), (slice(0, 6), 2)])
def test_figure_has_a_panel_per_kind_of_experiment(rows, panels):
    data = _data_fit().iloc[rows].reset_index(drop=True)
    data["dw_pg2006_a"] = data["dw_pg2006_b"] = data["dw_pg2006_c"] = data["dw"]  # 5 published sets
    fig = figures.data_fit_figure(data)
    assert len(fig.axes) == panels
    first = fig.axes[0]
    if rows.start == 0:  # pairings: against frequency on a log axis, the selected solid, 4 published dashed
        assert first.get_xscale() == "log" and first.get_xlabel() == "pairing frequency (Hz)"
        lines = [ln for ln in first.get_lines() if ln.get_linestyle() not in ("None", "")]
        widths = [ln.get_linewidth() for ln in lines if len(ln.get_xdata()) == 2 and ln.get_ydata()[0] != 0]
        assert widths.count(1.6) == 2  # the selected equation, solid, one line per lag
        assert widths.count(0.8) == 2 * figures.MAX_PUBLISHED  # thin: the first 4 published sets, per lag
    else:
        assert [t.get_text() for t in first.get_xticklabels()] == data["label"].tolist()
    figures.figure_bytes(fig, "png")


def test_no_fit_files_no_section(tmp_path):
    d = _write_run(tmp_path, with_fit=False)
    paths = report.run(d, behaviour=False)
    md, page = (d / "report.md").read_text(), (d / "report.html").read_text()
    assert "Fit to data" not in md and "Fit to data" not in page
    assert "fit.csv" not in md and "data_fit.csv" not in md  # absent for other tasks: not even a note
    assert "## Selected equation" in md and "## Equation front" in md
    assert not any(p.stem == "data_fit" for p in paths["figures"])
    assert not (d / "tables" / "fit.tex").exists()
    assert r"\input{fit.tex}" not in (d / "tables" / "preview.tex").read_text()


def test_stale_fit_outputs_go_with_fit_csv(tmp_path):
    d = _write_run(tmp_path)
    tables.write_tables(d)
    assert (d / "tables" / "fit.tex").is_file()
    (d / "fit.csv").unlink()
    (d / "data_fit.csv").unlink()
    assert "fit.tex" not in [p.name for p in tables.write_tables(d)]
    assert not (d / "tables" / "fit.tex").exists()


def test_only_data_fit_notes_the_missing_fit_csv(tmp_path):
    d = _write_run(tmp_path)
    (d / "fit.csv").unlink()
    report.run(d, behaviour=False)
    text = _section((d / "report.md").read_text())
    assert "> **Note:** `fit.csv` is missing; `plasticity verify DIR` writes it." in text
    assert "](figures/data_fit.png)" in text and "| rule | kind |" not in text


def test_a_pick_other_than_the_aic_is_noted(tmp_path):
    d = _write_run(tmp_path)
    ver = pd.read_csv(d / "verification.csv")
    ver["selected"] = ver["rule"] == "eq2"
    ver.to_csv(d / "verification.csv", index=False)
    report.run(d, behaviour=False)
    text = _section((d / "report.md").read_text())
    assert "> **Note:** The run's selected equation (`eq2`, section Selected equation) is not the equation of " \
           "least AIC in `fit.csv` (`eq1`)" in text


# --------------------------------------------------------------------------- LaTeX


def _long_fit(n: int = 30) -> pd.DataFrame:
    """``n`` models with long spiking equations and long published names, as real runs get."""
    terms = ["s_post*tr_pre", "s_pre*tr_post", "s_post*tr_post_slow*tr_pre", "s_pre*tr_post*tr_pre_slow",
             "s_post*tr_post_slow**2", "s_pre*tr_post*tr_post_slow", "s_post*tr_pre**2"]
    rows = []
    for i in range(n):
        k = 1 + i % len(terms)
        eq = " - ".join(f"{0.001234 * (j + 1) * (i + 1):.4g}*{t}" for j, t in enumerate(terms[:k]))
        rows.append({"rule": f"eq{i}", "kind": "equation", "equation": eq, "loss": 0.3 + 0.01 * i,
                     "free_parameters": k, "aic": 3.0 + 0.1 * i + 2 * k})
    rows.append({"rule": "pg2006_hippocampal_all_to_all_full", "kind": "published",
                 "equation": "s_post*tr_pre*(0.0062*tr_post_slow + 5.0e-10) - s_pre*tr_post*(0.00023*tr_pre_slow "
                             "+ 0.007)", "loss": 0.34, "free_parameters": 6, "aic": 15.4})
    df = pd.DataFrame(rows)
    df["chi_square"] = 10 * df["loss"]
    return df


def test_long_fit_table_continues_in_further_floats():
    df = _long_fit()
    df["selected"] = df["rule"] == "eq0"
    tex = tables.fit_table(df, experiments=10)
    assert tex.count(r"\begin{table}") >= 2
    assert r"\caption{Table~\ref{tab:fit}, continued.}" in tex and r"\label{tab:fit-2}" in tex
    assert _row_names(tex) == [tables.breakable_text(r) for r in df["rule"]]  # every model once, in order


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed on this machine")
def test_fit_tex_compiles_without_overfull_boxes(tmp_path):
    d = _write_run(tmp_path)
    _long_fit().to_csv(d / "fit.csv", index=False)
    tables.write_tables(d)
    out = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "-file-line-error",
                          "preview.tex"], cwd=d / "tables", capture_output=True, text=True, timeout=180)
    log = (d / "tables" / "preview.log").read_text(errors="replace")
    assert out.returncode == 0, out.stdout[-3000:]
    fit_log = log[log.index("(./fit.tex"):]
    assert "Overfull" not in fit_log, fit_log[fit_log.find("Overfull"):][:1500]
    assert "Float too large" not in fit_log, fit_log[fit_log.find("Float too large"):][:500]
