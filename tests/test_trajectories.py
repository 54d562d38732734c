"""Weight trajectories (teacher vs neural rule vs selected equation) and coefficient CIs.

One tiny real run (imitate an Oja teacher with a polynomial student: discover, distill,
verify, report) checks ``trajectories.npz`` against the simulator and that the report
shows both figures in their sections; the figure functions are also tested on
hand-made data, including the ``oja_pca`` variant (alignment with PC1 and weight norm).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from analysis import figures, report, rundir
from discover.io import RunDirError, selected_equation

TINY = {
    "task": {"name": "imitate", "steps": 40, "record_every": 4, "n_pre": 4, "n_post": 2,
             "teacher": {"rule": "oja", "params": {"eta": 0.01}}},
    "rule": {"kind": "polynomial", "degree": 3},
    "meta": {"steps": 30, "batch": 4, "val_episodes": 4, "eval_every": 10, "learning_rate": 0.01},
    "distill": {"samples": 500, "episodes": 4, "bootstrap": 10, "policy": "verified"},
    "verify": {"episodes": 4, "canonical": []},
}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    import discover.stage
    import distill.stage
    import distill.verify
    from discover.config import config_from_dict

    cfg = config_from_dict(TINY)
    d = tmp_path_factory.mktemp("traj") / "imitate_oja"
    discover.stage.run(cfg, d, progress=False)
    distill.stage.run(cfg, d, progress=False)
    distill.verify.run(cfg, d, progress=False)
    return cfg, d


def _first_episode(cfg):
    import jax

    from discover.build import build_task

    task = build_task(cfg)
    episodes = task.sample(jax.random.key(20_000 + cfg.verify.seed), cfg.verify.episodes)
    return task, jax.tree_util.tree_map(lambda a: a[0], episodes)


def _flat(Ws, n):
    Ws = np.asarray(Ws, np.float64)
    return Ws.reshape(Ws.shape[0], -1)[:, :n]


# --------------------------------------------------------------------------- the real run


def test_trajectories_npz_matches_the_simulator(tiny_run):
    import jax

    from discover.build import load_rule
    from discover.rules import SymbolicRule

    cfg, d = tiny_run
    tr = rundir.read_trajectories(d)
    n_rec, n_syn = 40 // 4, min(8, 4 * 2)
    assert tr["time_unit"] == "steps"
    np.testing.assert_array_equal(tr["t"], 4.0 * np.arange(1, n_rec + 1))
    np.testing.assert_array_equal(tr["synapses"], [[i // 4, i % 4] for i in range(n_syn)])
    for k in ("W_neural", "W_selected", "W_teacher"):
        assert tr[k].shape == (n_rec, n_syn), k
    assert "pc1" not in tr

    task, ep = _first_episode(cfg)
    np.testing.assert_allclose(tr["W0"], np.asarray(ep["W0"]).ravel()[:n_syn])
    Wt = task.simulate(task.teacher, task.teacher_params(), ep).weights
    np.testing.assert_allclose(tr["W_teacher"], _flat(Wt, n_syn), rtol=1e-5, atol=1e-7)
    neural, nparams = load_rule(d)
    np.testing.assert_allclose(tr["W_neural"], _flat(task.simulate(neural, nparams, ep).weights, n_syn),
                               rtol=1e-5, atol=1e-7)
    # the selected row is the one the `verified` policy chose at the end of verify; verify
    # marks it in its own file and leaves distill's equations.csv as distill wrote it
    row = selected_equation(d)
    ver = pd.read_csv(d / "verification.csv")
    assert list(ver.loc[ver["selected"], "rule"]) == [f"eq{row['id']}"]
    assert pd.read_csv(d / "equations.csv")["selected"].sum() == 1
    assert tr["selected_id"] == str(row["id"]) and tr["selected_equation"] == row["equation"]
    tau = {k: float(v) for k, v in neural.tau(nparams).items()}
    rule = SymbolicRule.from_string(str(row["sympy"]), {}, timescales=tau)
    W_eq = task.simulate(rule, rule.init(jax.random.key(0)), ep).weights
    np.testing.assert_allclose(tr["W_selected"], _flat(W_eq, n_syn), rtol=1e-5, atol=1e-7)
    assert not [p for p in d.iterdir() if p.name.startswith(".trajectories.npz")]  # no temporary left


def test_report_shows_trajectories_and_coefficients(tiny_run):
    _, d = tiny_run
    paths = report.run(d, behaviour=False)
    names = {p.name for p in paths["figures"]}
    assert {"trajectories.png", "trajectories.pdf", "coefficients.png", "coefficients.pdf"} <= names
    for stem in ("trajectories", "coefficients"):
        assert (d / "figures" / f"{stem}.png").read_bytes().startswith(b"\x89PNG")
    md = (d / "report.md").read_text()
    sel, front = md.index("## Selected equation"), md.index("## Equation front")
    ver, after = md.index("## Verification"), md.index("## Comparison")
    assert sel < md.index("(figures/coefficients.png)") < front
    assert ver < md.index("(figures/trajectories.png)") < after
    assert "teacher solid, neural rule dashed, selected equation dotted" in md
    assert "95 % confidence intervals" in md
    page = (d / "report.html").read_text()
    assert "figures/trajectories.png" in page and "figures/coefficients.png" in page


# --------------------------------------------------------------------------- hand-made data


def _imitate_arrays(unit="steps", diverge=False):
    t = np.arange(1, 11, dtype=float) * (0.5 if unit == "ms" else 1.0)
    w0 = np.array([0.2, 0.4, 0.6])
    teacher = w0 + 0.01 * t[:, None] * np.array([1.0, -1.0, 0.5])
    selected = teacher + 0.001
    if diverge:
        selected = selected * np.exp(t[:, None])
        selected[-1, 0] = np.inf
    return {"t": t, "time_unit": unit, "synapses": np.array([[0, 0], [0, 1], [1, 0]]), "W0": w0,
            "W_teacher": teacher, "W_neural": teacher - 0.002, "W_selected": selected, "selected_id": "3"}


def test_trajectories_figure_styles_and_units():
    tr = _imitate_arrays()
    fig = figures.trajectories_figure(tr)
    (ax,) = fig.axes
    assert ax.get_xlabel() == "time (steps)" and ax.get_ylabel() == "w (a.u.)"
    lines = [ln for ln in ax.get_lines() if ln.get_xdata().size]
    assert len(lines) == 3 * 3  # teacher, neural, equation for each synapse
    styles = [ln.get_linestyle() for ln in lines]
    assert styles == ["-"] * 3 + ["--"] * 3 + [":"] * 3
    for j in range(3):  # one colour per synapse across the three rules
        assert lines[j].get_color() == lines[3 + j].get_color() == lines[6 + j].get_color()
    np.testing.assert_allclose(lines[0].get_xdata(), np.r_[0.0, tr["t"]])  # starts at W0, t = 0
    np.testing.assert_allclose(lines[0].get_ydata(), np.r_[tr["W0"][0], tr["W_teacher"][:, 0]])
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["teacher", "neural rule", "selected equation (eq3)"]
    assert figures.figure_bytes(fig, "png").startswith(b"\x89PNG")
    assert figures.trajectories_figure(_imitate_arrays("ms")).axes[0].get_xlabel() == "time (ms)"


def test_trajectories_figure_keeps_view_when_equation_diverges():
    fig = figures.trajectories_figure(_imitate_arrays(diverge=True))
    lo, hi = fig.axes[0].get_ylim()
    assert -0.5 < lo and hi < 1.5
    assert any("leaves the plotted range" in t.get_text() for t in fig.axes[0].texts)
    figures.figure_bytes(fig, "png")


def test_oja_trajectories_show_alignment_and_norm():
    t = np.arange(1, 21, dtype=float)
    theta = np.pi / 3 * np.exp(-t / 5)  # the weight vector turns towards pc1 = e_1
    r = 0.5 + 0.5 * (1 - np.exp(-t / 4))
    W = np.stack([r * np.cos(theta), r * np.sin(theta), np.zeros_like(t)], axis=1)
    w0 = 0.5 * np.array([np.cos(np.pi / 3), np.sin(np.pi / 3), 0.0])
    tr = {"t": t, "time_unit": "steps", "synapses": np.array([[0, 0], [0, 1], [0, 2]]), "W0": w0,
          "W_neural": W, "W_selected": 2 * W, "pc1": np.array([1.0, 0.0, 0.0])}
    fig = figures.trajectories_figure(tr)
    ax_cos, ax_norm = fig.axes
    assert ax_cos.get_xlabel() == ax_norm.get_xlabel() == "time (steps)"
    assert "cos²" in ax_cos.get_ylabel() and ax_norm.get_ylabel() == "|w| (a.u.)"
    neural_cos, eq_cos = [ln for ln in ax_cos.get_lines() if ln.get_label() in ("neural rule", "selected equation")]
    np.testing.assert_allclose(neural_cos.get_ydata(), np.cos(np.r_[np.pi / 3, theta]) ** 2, atol=1e-12)
    np.testing.assert_allclose(eq_cos.get_ydata()[1:], np.cos(theta) ** 2, atol=1e-12)  # scale-free
    assert (neural_cos.get_linestyle(), eq_cos.get_linestyle()) == ("--", ":")
    norms = [ln.get_ydata() for ln in ax_norm.get_lines() if ln.get_label() in ("neural rule", "selected equation")]
    np.testing.assert_allclose(norms[0], np.r_[0.5, r])
    np.testing.assert_allclose(norms[1][1:], 2 * r)
    figures.figure_bytes(fig, "png")


def _equations(coefficients):
    return pd.DataFrame({
        "id": [0, 1], "backend": ["sparse"] * 2, "complexity": [3, 7], "loss": [1e-3, 1e-6], "score": [0.0, 1.0],
        "equation": ["0.9*x*y", "0.98*x*y - 1.01*w*y**2"], "sympy": ["0.9*x*y", "0.98*x*y - 1.01*w*y**2"],
        "latex": ["", ""], "coefficients": ["", json.dumps(coefficients)], "selected": [False, True],
    })


def _errorbar_points(ax):
    """(x, y) of each errorbar container's markers."""
    return [(np.asarray(c.lines[0].get_xdata(), float), np.asarray(c.lines[0].get_ydata(), float))
            for c in ax.containers]


def test_coefficients_figure_with_intervals_and_refit():
    coefs = {"x*y": {"value": 1.0, "ci_low": 0.95, "ci_high": 1.05, "fit_value": 0.9, "fit_ci_low": 0.85,
                     "fit_ci_high": 0.96},
             "w*y**2": {"value": -1.0, "ci_low": -1.1, "ci_high": -0.9, "fit_value": -0.8, "fit_ci_low": None,
                        "fit_ci_high": None}}
    parsed = rundir.parse_coefficients(json.dumps(coefs))
    assert parsed["x*y"] == {"value": 1.0, "ci_low": 0.95, "ci_high": 1.05, "fit_value": 0.9, "fit_ci_low": 0.85,
                             "fit_ci_high": 0.96}
    assert math.isnan(parsed["w*y**2"]["fit_ci_low"])
    fig = figures.coefficients_figure(_equations(coefs))
    (ax,) = fig.axes
    (x_ref, y_ref), (x_fit, y_fit) = _errorbar_points(ax)
    np.testing.assert_allclose(x_ref, [1.0, -1.0])
    np.testing.assert_allclose(x_fit, [0.9, -0.8])
    assert (y_ref < y_fit).all()  # the regression's marker sits just below the refit's
    assert [t.get_text() for t in ax.get_yticklabels()] == ["x·y", "w·y²"]
    assert ax.get_xscale() == "linear"
    assert len(ax.get_legend().get_texts()) == 2
    figures.figure_bytes(fig, "png")


def test_coefficients_figure_without_refit_and_wide_range():
    coefs = {"s_post*tr_pre": {"value": 1e-2, "ci_low": 0.9e-2, "ci_high": 1.1e-2},
             "s_pre*tr_post*w": {"value": -2e-5, "ci_low": None, "ci_high": None}}
    fig = figures.coefficients_figure(_equations(coefs))
    (ax,) = fig.axes
    ((x, _),) = _errorbar_points(ax)
    np.testing.assert_allclose(x, [1e-2, -2e-5])
    assert ax.get_xscale() == "symlog"
    assert "bootstrap" in ax.get_legend().get_texts()[0].get_text()
    figures.figure_bytes(fig, "png")
    with pytest.raises(ValueError, match="records no coefficients"):
        figures.coefficients_figure(_equations({}).assign(coefficients=["", ""]))


def test_read_trajectories_absent_and_malformed(tmp_path):
    assert rundir.read_trajectories(tmp_path) is None
    arrays = {k: v for k, v in _imitate_arrays().items() if k != "selected_id"}
    np.savez(tmp_path / "trajectories.npz", **arrays)
    tr = rundir.read_trajectories(tmp_path)
    assert tr["time_unit"] == "steps" and tr["W_neural"].shape == (10, 3)
    np.savez(tmp_path / "trajectories.npz", **{**arrays, "W_neural": arrays["W_neural"][:, :2]})
    with pytest.raises(RunDirError, match=r"'W_neural' has shape \(10, 2\).*plasticity verify DIR"):
        rundir.read_trajectories(tmp_path)
    np.savez(tmp_path / "trajectories.npz", t=arrays["t"])
    with pytest.raises(RunDirError, match="missing arrays 'W0', 'W_neural', 'synapses'"):
        rundir.read_trajectories(tmp_path)
    (tmp_path / "trajectories.npz").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(RunDirError, match="cannot be read as .npz"):
        rundir.read_trajectories(tmp_path)
