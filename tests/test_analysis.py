"""Tests of stage 3, analysis: tables (golden LaTeX), figures and the report.

A small run directory is written by hand in ``tmp_path`` (pandas CSVs, TOML, JSON), so
these tests need neither meta-training nor distillation.
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
import sympy

from analysis import figures, report, rundir, tables
from discover.io import RunDirError

REPO = Path(__file__).resolve().parents[1]

CONFIG_TOML = """\
[task]
name = "oja_pca"

[network]
kind = "rate"

[rule]
kind = "mlp"

[meta]
steps = 200
batch = 16
seed = 0
learning_rate = 0.001

[distill]
backend = "stls"
"""

MANIFEST = {
    "package_version": "0.1.0",
    "git_commit": "abc1234",
    "seeds": [0, 1],
    "device_count": 1,
    "jax_version": "0.4.30",
    "timings_s": {"discover": 12.5, "distill": 3.25},
    "created": "2025-01-01T00:00:00",
}


def _equations() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [0, 1, 2],
            "backend": ["stls", "stls", "stls"],
            "complexity": [3, 7, 11],
            "loss": [2.5e-2, 1.2345e-6, 1.1e-6],
            "score": [0.0, 3.2, 0.01],
            "equation": ["0.5*x*y", "0.98*x*y - 1.01*w*y**2", "0.98*x*y - 1.01*w*y**2 + 0.001*w"],
            "sympy": ["0.5*x*y", "0.98*x*y - 1.01*w*y**2", "0.98*x*y - 1.01*w*y**2 + 0.001*w"],
            "latex": ["0.5 x y", "- 1.01 w y^{2} + 0.98 x y", "- 1.01 w y^{2} + 0.98 x y + 0.001 w"],
            "coefficients": [
                json.dumps({"x*y": 0.5}),
                json.dumps(
                    {
                        "x*y": {"value": 0.98, "ci_low": 0.97, "ci_high": 0.99},
                        "w*y**2": {"value": -1.01, "ci_low": -1.02, "ci_high": -1.0},
                    }
                ),
                "",
            ],
            "selected": [False, True, False],
        }
    )


def _verification() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "rule": ["neural", "equation_1", "oja", "stdp_pair"],
            "kind": ["neural", "equation", "canonical", "canonical"],
            "equation": ["", "0.98*x*y - 1.01*w*y**2", "x*y - y**2*w", "tr_pre*s_post - 1.05*tr_post*s_pre"],
            "objective_mean": [0.91234, 0.905, 0.91, 0.5],
            "objective_ci_low": [0.9, 0.89, 0.895, float("nan")],
            "objective_ci_high": [0.924, 0.92, 0.925, float("nan")],
            "relative_to_neural": [1.0, 0.99196, 0.99743, 0.548],
        }
    )


def _history() -> pd.DataFrame:
    steps = np.arange(0, 200, 10)
    return pd.DataFrame(
        {
            "step": steps,
            "meta_loss": np.exp(-steps / 50) + 1e-3,
            "val_loss": [np.exp(-s / 50) + 2e-3 if s % 50 == 0 else np.nan for s in steps],
            "wall_s": steps * 0.1,
        }
    )


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    d = tmp_path / "oja_run"
    d.mkdir()
    (d / "config.toml").write_text(CONFIG_TOML)
    (d / "manifest.json").write_text(json.dumps(MANIFEST))
    _history().to_csv(d / "meta_history.csv", index=False)
    _equations().to_csv(d / "equations.csv", index=False)
    _verification().to_csv(d / "verification.csv", index=False)
    return d


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    "x, digits, scientific, expected",
    [
        (0.91234, 3, False, "0.912"),
        (1.0, 3, False, "1.00"),
        (123.4, 3, False, "123"),
        (999.6, 3, False, r"1.00 \times 10^{3}"),
        (0.0012345, 3, False, "0.00123"),
        (0.00012345, 3, False, r"1.23 \times 10^{-4}"),
        (-0.5, 3, False, "-0.500"),
        (1.2345e-6, 3, True, r"1.23 \times 10^{-6}"),
        (2.5e-2, 3, True, r"2.50 \times 10^{-2}"),
        (3.14159, 3, True, "3.14"),
        (0.0, 3, True, "0"),
        (float("nan"), 3, False, "--"),
        (0.91234, 2, False, "0.91"),
    ],
)
def test_format_number(x, digits, scientific, expected):
    assert tables.format_number(x, digits, scientific) == expected


def test_round_expr_rounds_to_significant_figures():  # the one rounding of equations (distill.simplify)
    from distill.simplify import round_expr

    def round_sig(x):
        return float(round_expr(sympy.Float(x), 3))

    assert round_sig(0.0123456) == 0.0123
    assert round_sig(-98765.0) == -98800.0
    assert round_sig(0.0) == 0.0
    assert math.isnan(round_sig(float("nan")))


def test_expr_latex_rounds_floats_to_significant_figures():
    x, y, w = sympy.symbols("x y w")
    expr = sympy.Float(0.981234) * x * y - sympy.Float(1.0123) * w * y**2 + sympy.Float(1.234e-5) * w
    assert tables.expr_latex(expr) == r"- 1.01 w y^{2} + 1.23 \cdot 10^{-5} w + 0.981 x y"
    # integers stay exact
    assert tables.expr_latex(2 * x * y) == "2 x y"


def test_escape_latex():
    assert tables.escape_latex("stdp_pair") == r"stdp\_pair"
    assert tables.escape_latex(r"a&b%c$d#e{f}g~h^i\j") == (
        r"a\&b\%c\$d\#e\{f\}g\textasciitilde{}h\textasciicircum{}i\textbackslash{}j"
    )


# --------------------------------------------------------------------------- golden LaTeX

EQUATIONS_TEX = r"""\begin{table}[htbp]
  \centering
  \small
  \caption{Pareto front of distilled equations (backend: stls): complexity (sympy node count) against fit loss to the neural rule. The selected equation is set in bold.}
  \label{tab:equations}
  \begin{tabularx}{\linewidth}{rrr>{\raggedright\arraybackslash}X}
    \toprule
    ID & Complexity & Loss & Equation \\
    \midrule
    0 & 3 & $2.50 \times 10^{-2}$ & $\Delta w = 0.5 x y$ \\
    \textbf{1} & \textbf{7} & {\boldmath$1.23 \times 10^{-6}$} & {\boldmath$\Delta w = - 1.01 w y^{2} + 0.98 x y$} \\
    2 & 11 & $1.10 \times 10^{-6}$ & $\Delta w = - 1.01 w y^{2} + 0.98 x y + 0.001 w$ \\
    \bottomrule
  \end{tabularx}
\end{table}
"""

VERIFICATION_TEX = r"""\begin{table}[htbp]
  \centering
  \small
  \caption{Meta-objective of each rule on held-out episodes (higher is better): mean, confidence interval (CI) and ratio to the neural rule.}
  \label{tab:verification}
  \begin{tabularx}{\linewidth}{llr>{\centering\arraybackslash}Xr}
    \toprule
    Rule & Kind & Objective & CI & Relative to neural \\
    \midrule
    neural & neural & $0.912$ & $[0.900, \allowbreak 0.924]$ & $1.00$ \\
    equation\_1 & equation & $0.905$ & $[0.890, \allowbreak 0.920]$ & $0.992$ \\
    oja & canonical & $0.910$ & $[0.895, \allowbreak 0.925]$ & $0.997$ \\
    stdp\_pair & canonical & $0.500$ & -- & $0.548$ \\
    \bottomrule
  \end{tabularx}
\end{table}
"""


def test_equations_table_golden():
    assert tables.equations_table(_equations()) == EQUATIONS_TEX


def test_equations_table_multi_backend_golden():
    df = pd.DataFrame(
        {
            "id": [0, 1],
            "backend": ["stls", "operon"],
            "complexity": [3, 5],
            "loss": [1e-3, 2.5e-4],
            "latex": ["x y", "x y - w"],
            "selected": [True, False],
        }
    )
    expected = r"""\begin{table}[htbp]
  \centering
  \small
  \caption{Front}
  \label{tab:front}
  \begin{tabularx}{\linewidth}{rlrr>{\raggedright\arraybackslash}X}
    \toprule
    ID & Backend & Complexity & Loss & Equation \\
    \midrule
    \textbf{0} & \textbf{stls} & \textbf{3} & {\boldmath$1.00 \times 10^{-3}$} & {\boldmath$\Delta w = x y$} \\
    1 & operon & 5 & $2.50 \times 10^{-4}$ & $\Delta w = x y - w$ \\
    \bottomrule
  \end{tabularx}
\end{table}
"""
    assert tables.equations_table(df, caption="Front", label="tab:front") == expected


def test_verification_table_golden():
    assert tables.verification_table(_verification()) == VERIFICATION_TEX


def test_equation_latex_falls_back_to_equation_text():
    row = pd.Series({"latex": "", "equation": "0.981234*x*y - 1.0123*w*y**2"})
    assert tables.equation_latex(row) == r"- 1.01 w y^{2} + 0.981 x y"


def test_write_tables(run_dir):
    paths = tables.write_tables(run_dir)
    assert [p.name for p in paths] == ["equations.tex", "verification.tex", "preview.tex"]
    assert (run_dir / "tables" / "equations.tex").read_text() == EQUATIONS_TEX
    assert (run_dir / "tables" / "verification.tex").read_text() == VERIFICATION_TEX
    preview = (run_dir / "tables" / "preview.tex").read_text()
    assert preview.startswith(r"\documentclass{article}")
    assert r"\usepackage{booktabs}" in preview and r"\usepackage{amsmath}" in preview
    assert r"\input{equations.tex}" in preview and r"\input{verification.tex}" in preview
    assert preview.rstrip().endswith(r"\end{document}")


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed on this machine")
def test_preview_compiles_with_pdflatex(run_dir):
    tables.write_tables(run_dir)
    out = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "preview.tex"],
        cwd=run_dir / "tables",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout[-3000:]
    assert (run_dir / "tables" / "preview.pdf").is_file()


def _pdflatex(folder: Path, name: str = "preview.tex") -> str:
    """Run pdflatex in ``folder``; return its log after checking the run succeeded."""
    out = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "-file-line-error", name],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=180,
    )
    log = (folder / Path(name).with_suffix(".log")).read_text(errors="replace")
    assert out.returncode == 0, out.stdout[-3000:]
    assert (folder / Path(name).with_suffix(".pdf")).is_file()
    assert "! " not in log and "LaTeX Error" not in log, log[-3000:]
    return log


def _long_run_dir(tmp_path: Path) -> Path:
    """A run directory whose tables are as wide as real ones get: long spiking equations,
    scientific-notation losses and intervals, a diverged rule, and a comparison table."""
    d = tmp_path / "long_run"
    d.mkdir()
    (d / "config.toml").write_text(CONFIG_TOML.replace('kind = "rate"', 'kind = "lif"'))
    (d / "manifest.json").write_text(json.dumps(MANIFEST))
    s_pre, s_post, tr_pre, tr_post, tr_pre_slow, tr_post_slow, v_post, w = sympy.symbols(
        "s_pre s_post tr_pre tr_post tr_pre_slow tr_post_slow v_post w", real=True)
    monomials = [s_post * tr_pre, -s_pre * tr_post, s_post * tr_pre * tr_post_slow, -s_pre * tr_post * tr_pre_slow,
                 s_post * w * tr_pre, -s_pre * w**2 * tr_post, s_post * v_post * tr_pre, s_pre * tr_pre_slow**2,
                 -s_post * tr_post_slow**2 * w, s_pre * s_post * w * tr_post, 1.234e-5 * s_post * v_post**2,
                 -7.5e-6 * s_pre * tr_post_slow * tr_pre_slow * w]
    coefs = [0.009812, 0.010434, 0.0065123, 0.0031, 0.000871, 0.000612, 0.0000913, 0.00051, 0.00042, 0.000333,
             1.0, 1.0]
    exprs = [sum(sympy.Float(c) * m for c, m in zip(coefs[:k], monomials[:k])) for k in (2, 4, 8, 12)]
    eqs = pd.DataFrame({
        "id": range(len(exprs)),
        "backend": ["sparse", "sparse", "operon", "operon"],
        "complexity": [9, 21, 45, 77],
        "loss": [2.345e-7, 1.1e-8, 9.87e-9, 9.1e-9],
        "score": [0.0, 1.5, 0.01, 0.001],
        "equation": [str(e) for e in exprs],
        "sympy": [str(e) for e in exprs],
        "latex": [tables.expr_latex(e) for e in exprs],
        "selected": [False, False, False, True],
    })
    eqs.to_csv(d / "equations.csv", index=False)
    pd.DataFrame({
        "rule": ["neural", "eq0", "eq1", "eq2", "eq3", "stdp_pair", "stdp_triplet", "teacher"],
        "kind": ["neural", "equation", "equation", "equation", "equation", "canonical", "canonical", "teacher"],
        "objective_mean": [0.98765, -24139.5, 0.95, 0.97, 0.989, -float("inf"), 0.1098, 1.0],
        "objective_ci_low": [0.98, -43450.1, 0.94, 0.96, 0.98, -float("inf"), -0.0461, 1.0],
        "objective_ci_high": [0.99, -8190.07, 0.96, 0.98, 0.99, -float("inf"), 0.2563, 1.0],
        "relative_to_neural": [1.0, -24441.3, 0.962, 0.982, 1.0013, -float("inf"), 0.111, 1.0125],
    }).to_csv(d / "verification.csv", index=False)
    long = tables.expr_latex(exprs[-1])
    pd.DataFrame({
        "canonical": ["stdp_pair", "stdp_triplet", "a_long_custom_canonical_rule"],
        "canonical_latex": [tables.expr_latex(0.01 * s_post * tr_pre - 0.0105 * s_pre * tr_post),
                            tables.expr_latex(0.0065 * s_post * tr_pre * tr_post_slow - 0.0071 * s_pre * tr_post),
                            long],
        "equation_id": ["3"] * 3,
        "equation_latex": [long] * 3,
        "term_jaccard": [0.1666, 0.1666, 1.0],
        "coef_distance": [1.2345, 1.3, 0.0],
        "behaviour_distance": [0.0123, 0.31, float("inf")],
        "behaviour": ["stdp_window"] * 3,
        "closest": [False, False, True],
    }).to_csv(d / "comparison.csv", index=False)
    return d


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed on this machine")
def test_preview_with_long_equations_compiles_without_overfull_boxes(tmp_path):
    d = _long_run_dir(tmp_path)
    paths = tables.write_tables(d)
    assert [p.name for p in paths] == ["equations.tex", "verification.tex", "comparison.tex", "preview.tex"]
    assert r"\input{comparison.tex}" in (d / "tables" / "preview.tex").read_text()
    log = _pdflatex(d / "tables")
    assert "Overfull \\hbox" not in log, log[log.find("Overfull"):][:1500]


# --------------------------------------------------------------------------- figures


def test_write_figures(run_dir):
    paths = figures.write_figures(run_dir)
    names = sorted(p.name for p in paths)
    assert names == sorted(
        f"{n}.{ext}" for n in ("meta_loss", "pareto", "coefficients", "verification") for ext in ("png", "pdf")
    )
    for p in paths:
        head = p.read_bytes()[:8]
        assert head.startswith(b"\x89PNG") if p.suffix == ".png" else head.startswith(b"%PDF")


def test_figures_only_for_present_inputs(run_dir):
    (run_dir / "equations.csv").unlink()
    (run_dir / "verification.csv").unlink()
    assert sorted(p.name for p in figures.write_figures(run_dir)) == ["meta_loss.pdf", "meta_loss.png"]


def test_figures_tolerate_nonpositive_losses_and_unparsable_latex():
    history = pd.DataFrame({"step": [0, 1, 2], "meta_loss": [1.0, 0.0, -0.5], "val_loss": [np.nan] * 3,
                            "wall_s": [0.0, 1.0, 2.0]})
    fig = figures.meta_loss_figure(history)
    assert fig.axes[0].get_yscale() == "linear"
    figures.figure_bytes(fig, "png")
    eq = _equations()
    eq.loc[1, "latex"] = r"\notacommand{x"
    figures.figure_bytes(figures.pareto_figure(eq), "png")


# --------------------------------------------------------------------------- report


def test_report_run(run_dir):
    paths = report.run(run_dir)
    assert set(paths) == {"figures", "tables", "report_md", "report_html"}
    for p in [*paths["figures"], *paths["tables"], paths["report_md"], paths["report_html"]]:
        assert Path(p).is_file(), p
    md = (run_dir / "report.md").read_text()
    for section in ("Task and network", "Meta-training", "Selected equation", "Equation front",
                    "Verification", "Manifest"):
        assert f"## {section}" in md
    assert "$$\n\\Delta w = - 1.01 w y^{2} + 0.98 x y\n$$" in md
    assert "| `x*y` | 0.980 | [0.970, 0.990] |" in md  # coefficient CI
    assert "| `equation_1` | equation | `0.98*x*y - 1.01*w*y**2` | 0.905 | [0.890, 0.920] | 0.992 |" in md
    assert "| `stdp_pair` | canonical |" in md
    assert "![" in md and "(figures/meta_loss.png)" in md
    assert "`oja_pca`" in md and "`abc1234`" in md and "12.5 s" in md
    assert "missing" not in md
    page = (run_dir / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 6  # 5 figures + the typeset equation
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert "dw = 0.98*x*y - 1.01*w*y**2" in page
    assert "equation_1" in page and "stdp_pair" in page
    # atomic writes leave no temporary files behind
    assert not [p for p in run_dir.rglob("*") if p.name.endswith(".tmp")]


def test_report_notes_missing_verification(run_dir):
    (run_dir / "verification.csv").unlink()
    paths = report.run(run_dir)
    md = (run_dir / "report.md").read_text()
    assert "`verification.csv` is missing; `plasticity verify DIR` writes it." in md
    assert "## Verification" in md
    assert not (run_dir / "tables" / "verification.tex").exists()
    assert r"\input{verification.tex}" not in (run_dir / "tables" / "preview.tex").read_text()
    assert not any(p.stem == "verification" for p in paths["figures"])
    assert "verification.csv</code> is missing" in (run_dir / "report.html").read_text()


def test_report_with_only_config_and_manifest(tmp_path):
    d = tmp_path / "bare"
    d.mkdir()
    (d / "config.toml").write_text(CONFIG_TOML)
    (d / "manifest.json").write_text(json.dumps({"package_version": "0.1.0"}))
    paths = report.run(d)
    assert paths["figures"] == []
    md = paths["report_md"].read_text()
    assert "`meta_history.csv` is missing; `plasticity discover CONFIG --out DIR` writes it." in md
    assert "`equations.csv` is missing; `plasticity distill DIR` writes it." in md
    assert "`verification.csv` is missing; `plasticity verify DIR` writes it." in md
    assert "records no timings" in md


def test_malformed_equations_names_file_column_and_command(run_dir):
    _equations().drop(columns=["latex"]).to_csv(run_dir / "equations.csv", index=False)
    with pytest.raises(ValueError, match=r"equations\.csv: missing column 'latex'.*plasticity distill DIR"):
        report.run(run_dir)
    assert not (run_dir / "report.md").exists()  # nothing written on bad input


@pytest.mark.parametrize(
    "name, frame, change, match",
    [
        ("equations.csv", _equations, lambda df: df.assign(loss=["a", 1, 2]),
         r"column 'loss' must hold numbers, but row 1 holds 'a'"),
        ("equations.csv", _equations, lambda df: df.assign(selected=[False, False, False]),
         r"'selected' must be True on exactly one row, found 0"),
        ("equations.csv", _equations, lambda df: df.assign(coefficients=["{", "{}", "{}"]),
         r"column 'coefficients', row 1"),
        ("verification.csv", _verification, lambda df: df.assign(kind=["neural", "eq", "canonical", "canonical"]),
         r"column 'kind', row 2 holds 'eq'; use one of neural, equation, canonical, teacher, published, baseline, equations; .*plasticity verify DIR"),
        ("verification.csv", _verification, lambda df: df.drop(columns=["objective_ci_low"]),
         r"verification\.csv: missing column 'objective_ci_low'"),
        ("equations.csv", _equations, lambda df: df.assign(complexity=[3, None, 11]),
         r"column 'complexity' is empty in row 2"),
        ("meta_history.csv", _history, lambda df: df.drop(columns=["val_loss", "wall_s"]),
         r"missing columns 'val_loss', 'wall_s'.*plasticity discover CONFIG --out DIR"),
    ],
)
def test_malformed_inputs_raise_value_error(run_dir, name, frame, change, match):
    change(frame()).to_csv(run_dir / name, index=False)
    with pytest.raises(RunDirError, match=match) as info:
        report.run(run_dir)
    assert isinstance(info.value, ValueError)
    assert name in str(info.value)


def test_missing_manifest_or_config_is_an_error(run_dir):
    (run_dir / "manifest.json").unlink()
    with pytest.raises(ValueError, match=r"manifest\.json: file is missing"):
        report.run(run_dir)
    with pytest.raises(ValueError, match="does not exist"):
        report.run(run_dir / "nope")


def test_coefficients_parsing():
    assert rundir.parse_coefficients("") == {}
    parsed = rundir.parse_coefficients('{"x*y": 1.5, "w": {"value": -0.1, "ci_low": -0.2, "ci_high": 0.0}}')
    assert parsed["x*y"]["value"] == 1.5 and math.isnan(parsed["x*y"]["ci_low"])
    assert parsed["w"] == {"value": -0.1, "ci_low": -0.2, "ci_high": 0.0}


def test_analysis_import_is_light():
    code = (
        "import sys, analysis.report, analysis.tables, analysis.figures; "
        "heavy = [m for m in ('jax', 'discover', 'distill', 'matplotlib.pyplot') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_the_verified_pick_is_the_selected_equation_everywhere(run_dir):
    # verify marks its pick in verification.csv (`selected`); distill's mark in equations.csv stays
    ver = _verification().assign(rule=["neural", "eq2", "oja", "stdp_pair"], selected=[False, True, False, False])
    ver.to_csv(run_dir / "verification.csv", index=False)
    eqs = rundir.read_equations(run_dir)
    assert eqs["selected"].tolist() == [False, False, True]
    assert rundir.selected_row(eqs)["id"] == 2
    assert rundir.read_verification(run_dir)["selected"].dtype == bool
    report.run(run_dir, behaviour=False)
    assert "Equation `2`" in (run_dir / "report.md").read_text()
    assert r"\textbf{2}" in (run_dir / "tables" / "equations.tex").read_text()
    ver.assign(rule=["neural", "eq9", "oja", "stdp_pair"]).to_csv(run_dir / "verification.csv", index=False)
    with pytest.raises(RunDirError, match=r"verification\.csv: column 'selected' picks equation 9"):
        rundir.read_equations(run_dir)
