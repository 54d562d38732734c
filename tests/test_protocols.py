"""analysis.protocols: pairing and frequency protocols for any rule, and their figures.

Checked against the closed form of pair STDP, against Brian2 (``brian2_pairing.json``),
against an independent event-driven float64 implementation of the triplet rule, and for
an MLP rule (the neural rule of a run directory) through :func:`discover.build.load_rule`.

Tolerances: the simulator's state is float32 and each spike changes ``w`` (``|w| < 2``)
at most once, so ``w``'s rounding costs at most ``2**-24`` per spike; traces add a
relative ~1e-6 (1e-4 allowed).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from test_fidelity import reference  # the Brian2 reference files, found as the fidelity tests find them

from analysis.figures import figure_bytes
from analysis.protocols import (
    DW_LABEL,
    WINDOW_XLABEL,
    analytic_pair_window,
    frequency_figure,
    frequency_protocol,
    pairing_protocol,
    window_figure,
)
from discover.rules import MLPRule, canonical_rule, make_symbolic_rule

REPO = Path(__file__).resolve().parents[1]
ULP = 2.0**-24  # half an ulp of float32 for 1 <= |w| < 2


LAGS = [*range(-100, -4, 5), -2, -1, 0, 1, 2, *range(5, 101, 5)]  # those of the Brian2 file


# ----------------------------------------------------------------------------- pair STDP


def test_pair_stdp_window_is_the_analytic_curve():
    rule = canonical_rule("stdp_pair")
    df = pairing_protocol(rule, dt_ms_list=LAGS)
    assert list(df.columns) == ["dt_ms", "dw"] and len(df) == len(LAGS)
    assert df["dt_ms"].tolist() == [float(x) for x in LAGS]
    expected = analytic_pair_window(LAGS, A_plus=0.01, A_minus=0.0105, tau_plus=20.0, tau_minus=20.0)
    np.testing.assert_allclose(df["dw"], expected, rtol=1e-4, atol=2 * ULP)
    assert df.loc[df.dt_ms == 0, "dw"].item() == pytest.approx(0.01, rel=1e-4)  # pre pathway first
    # default lags: -100..100 ms in steps of 5
    default = pairing_protocol(rule)
    assert default["dt_ms"].tolist() == [float(x) for x in range(-100, 101, 5)]


def test_pair_stdp_window_with_other_parameters():
    """Bi & Poo 2001 fits (tau_pre 16.8, tau_post 33.7 ms), dt = 0.5 ms, params passed in."""
    rule = canonical_rule("stdp_pair", {"A_plus": 0.005, "A_minus": 0.004, "tau_pre": 16.8, "tau_post": 33.7})
    params = rule.init(jax.random.key(0))
    lags = [-50.0, -10.0, -0.5, 0.0, 0.5, 10.0, 50.0]
    df = pairing_protocol(rule, params, dt_ms_list=lags, dt=0.5)
    expected = analytic_pair_window(lags, 0.005, 0.004, tau_plus=16.8, tau_minus=33.7)
    np.testing.assert_allclose(df["dw"], expected, rtol=1e-4, atol=2 * ULP)


@pytest.mark.parametrize("table,pairs", [("window_single_pairing", 1), ("window_60_pairings_1hz", 60)])
def test_pair_stdp_window_matches_brian2(table, pairs):
    ref = reference("brian2_pairing.json")
    rows = ref[table]
    rule = canonical_rule("stdp_pair", {"A_plus": ref["pair_params"]["Ap"], "A_minus": ref["pair_params"]["Am"],
                                        "tau_pre": ref["pair_params"]["tau_p"],
                                        "tau_post": ref["pair_params"]["tau_m"]})
    df = pairing_protocol(rule, dt_ms_list=[r["dt_ms"] for r in rows], pairs=pairs, freq_hz=1.0, dt=ref["dt_ms"])
    brian = np.array([r["pair_aa"] for r in rows])
    assert np.max(np.abs(df["dw"] - brian)) <= 0.05 * np.max(np.abs(brian))
    np.testing.assert_allclose(df["dw"], brian, rtol=1e-4, atol=2 * pairs * ULP)


def test_pair_stdp_frequency_protocol_matches_brian2():
    ref = reference("brian2_pairing.json")
    rows = ref["frequency_60_pairings"]
    freqs = list(dict.fromkeys(r["freq_hz"] for r in rows))
    lags = list(dict.fromkeys(r["lag_ms"] for r in rows))
    df = frequency_protocol(canonical_rule("stdp_pair"), freqs_hz=freqs, lags_ms=lags, pairs=60, dt=ref["dt_ms"])
    assert list(df.columns) == ["freq_hz", "lag_ms", "dw"]
    got = df.set_index(["freq_hz", "lag_ms"])["dw"]
    brian = pd.Series({(float(r["freq_hz"]), float(r["lag_ms"])): r["pair_aa"] for r in rows})
    got = got.loc[brian.index]
    assert np.max(np.abs(got - brian)) <= 0.05 * np.max(np.abs(brian))
    np.testing.assert_allclose(got, brian, rtol=1e-4, atol=120 * ULP)


def test_frequency_protocol_defaults_and_rounded_periods():
    """Default frequencies include 30 Hz, whose period (33.3 ms) is not on the 0.1 ms grid:
    each spike is rounded, and for pair STDP the result lies between 25 and 40 Hz's."""
    df = frequency_protocol(canonical_rule("stdp_pair"))
    assert df["freq_hz"].tolist() == [float(f) for f in (1, 5, 10, 20, 30, 40, 50) for _ in (0, 1)]
    assert df["lag_ms"].tolist() == [10.0, -10.0] * 7
    assert np.all(np.isfinite(df["dw"]))
    ltp = df[df.lag_ms == 10].set_index("freq_hz")["dw"]
    assert np.all(np.diff(ltp.to_numpy()) < 0)  # pair STDP: all-to-all depression grows with frequency


# ----------------------------------------------------------------------------- triplet STDP


def triplet_event_driven(pre_ms, post_ms, A2p, A3p, A2m, A3m, tau):
    """Pfister & Gerstner 2006 minimal all-to-all triplet rule, event by event in float64
    (exact exponential traces, Brian2 order: a pre and a post spike at the same time run the
    pre pathway first; slow traces are read before their own spike's increment)."""
    events = sorted([(t, 0) for t in pre_ms] + [(t, 1) for t in post_ms])
    r1 = r2 = o1 = o2 = 0.0
    last, dw = 0.0, 0.0
    for t, kind in events:
        d = t - last
        r1 *= np.exp(-d / tau["tau_pre"])
        r2 *= np.exp(-d / tau["tau_pre_slow"])
        o1 *= np.exp(-d / tau["tau_post"])
        o2 *= np.exp(-d / tau["tau_post_slow"])
        last = t
        if kind == 0:
            r1 += 1.0
            dw -= o1 * (A2m + A3m * r2)
            r2 += 1.0
        else:
            dw += r1 * (A2p + A3p * o2)
            o1 += 1.0
            o2 += 1.0
    return dw


def test_triplet_rule_frequency_dependence():
    """Pfister & Gerstner 2006 (visual cortex, minimal all-to-all): at +10 ms potentiation
    grows with the pairing frequency; at -10 ms depression at low frequency turns into
    potentiation at 40-50 Hz (Sjöström et al. 2001, Fig. 1). Every value equals the
    event-driven float64 computation."""
    rule = canonical_rule("stdp_triplet")
    params = rule.init(jax.random.key(0))
    df = frequency_protocol(rule, params)
    ltp = df[df.lag_ms == 10].sort_values("freq_hz")["dw"].to_numpy()
    ltd = df[df.lag_ms == -10].sort_values("freq_hz")["dw"].to_numpy()
    assert np.all(np.diff(ltp) > 0), ltp
    assert ltp[-1] > 0.5 and abs(ltp[0]) < 1e-3  # A2_plus = 0: no potentiation without triplets
    assert ltd[0] < -0.3 and ltd[-1] > 0
    # the 1 Hz, -10 ms value in closed form: 60 pairs x A2_minus exp(-10 / tau_post)
    assert ltd[0] == pytest.approx(-60 * 7.1e-3 * np.exp(-10 / 33.7), rel=1e-3)
    # every value against the independent event-driven implementation
    tau = {k: float(np.exp(v)) for k, v in params["log_tau"].items()}
    c = {k: float(v) for k, v in params["core"].items()}
    for _, row in df.iterrows():
        period = 1000.0 / row.freq_hz
        starts = np.rint(np.arange(60) * period / 0.1) * 0.1
        pre = starts + max(0.0, -row.lag_ms)
        post = starts + max(0.0, row.lag_ms)
        ref = triplet_event_driven(pre, post, c["A2_plus"], c["A3_plus"], c["A2_minus"], c["A3_minus"], tau)
        assert row.dw == pytest.approx(ref, rel=1e-4, abs=120 * ULP), (row.freq_hz, row.lag_ms)


# ----------------------------------------------------------------------------- any rule


def mlp_rule(seed=1):
    rule = MLPRule(inputs=("s_pre", "s_post", "tr_pre", "tr_post", "v_post", "w"), hidden=(8,),
                   event_driven=True, output_scale=0.01, init_gain=1.0,
                   norm=((0.0, 1.0), (0.0, 1.0), (-70.0, 5.0), (1.0, 0.1)), label="neural")
    return rule, rule.init(jax.random.key(seed))


def test_protocols_run_an_mlp_rule_from_a_run_directory(tmp_path):
    """A neural rule as the discover stage writes it (rule/rule.json + rule/params.npz),
    loaded with discover.build.load_rule: both protocols give finite, non-trivial results,
    identical to those of the in-memory rule."""
    from discover.build import load_rule, rule_spec
    from discover.io import save_pytree, write_json

    rule, params = mlp_rule()
    write_json(tmp_path / "rule" / "rule.json", rule_spec(rule))
    save_pytree(tmp_path / "rule" / "params.npz", params)
    loaded, loaded_params = load_rule(tmp_path)
    assert isinstance(loaded, MLPRule)

    window = pairing_protocol(loaded, loaded_params, dt_ms_list=[-20, -5, 0, 5, 20])
    assert list(window.columns) == ["dt_ms", "dw"] and window.shape == (5, 2)
    assert np.all(np.isfinite(window["dw"])) and np.ptp(window["dw"]) > 1e-6
    same = pairing_protocol(rule, params, dt_ms_list=[-20, -5, 0, 5, 20])
    np.testing.assert_allclose(window["dw"], same["dw"], rtol=1e-6, atol=1e-9)

    freq = frequency_protocol(loaded, loaded_params, freqs_hz=(5, 20, 50), pairs=10)
    assert list(freq.columns) == ["freq_hz", "lag_ms", "dw"] and freq.shape == (6, 3)
    assert np.all(np.isfinite(freq["dw"]))


def test_rule_with_a_drift_term_and_independent_variants():
    """A rule that changes w without spikes (a decay) runs for each variant's own length:
    a variant's result does not depend on the variants simulated beside it."""
    rule = make_symbolic_rule("A*tr_pre*s_post - lam*w", {"A": 0.01, "lam": 1e-6})
    both = frequency_protocol(rule, freqs_hz=(1, 50), lags_ms=(10,), pairs=5)
    alone = frequency_protocol(rule, freqs_hz=(50,), lags_ms=(10,), pairs=5)
    assert both["dw"].iloc[1] == pytest.approx(alone["dw"].iloc[0], rel=1e-6)
    # the decay is visible: the 1 Hz protocol lasts 4 s = 40001 steps of -lam*w
    assert both["dw"].iloc[0] < 5 * 0.01 * np.exp(-0.5) - 0.03


def test_protocol_input_errors():
    rule = canonical_rule("stdp_pair")
    with pytest.raises(ValueError, match="not a multiple of the simulation step dt = 0.1 ms"):
        pairing_protocol(rule, dt_ms_list=[0.05])
    with pytest.raises(ValueError, match="pairings would overlap"):
        frequency_protocol(rule, freqs_hz=(100,), lags_ms=(10,))
    with pytest.raises(ValueError, match="dt_ms_list is empty"):
        pairing_protocol(rule, dt_ms_list=[])
    with pytest.raises(ValueError, match="at least one pairing"):
        pairing_protocol(rule, pairs=0)


# ----------------------------------------------------------------------------- figures


def test_window_and_frequency_figures():
    pair = pairing_protocol(canonical_rule("stdp_pair"), dt_ms_list=[-40, -10, 0, 10, 40])
    fig = window_figure(pair, label="pair STDP",
                        reference=pair.assign(dw=analytic_pair_window(pair["dt_ms"])),
                        reference_label="analytic")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_xlabel() == WINDOW_XLABEL == "t_post - t_pre (ms)"
    assert ax.get_ylabel() == DW_LABEL == "Δw"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["pair STDP", "analytic"]
    assert figure_bytes(fig, "png")[:4] == b"\x89PNG"

    # several rules in one frame (a "rule" column)
    two = pd.concat([pair.assign(rule="pair"), pair.assign(rule="half", dw=pair["dw"] / 2)])
    ax2 = window_figure(two).axes[0]
    assert [t.get_text() for t in ax2.get_legend().get_texts()] == ["pair", "half"]

    freq = pd.DataFrame({"freq_hz": [1.0, 1.0, 20.0, 20.0], "lag_ms": [10.0, -10.0, 10.0, -10.0],
                         "dw": [0.3, -0.3, 0.2, -0.25]})
    fig = frequency_figure(freq, label="pair")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "pairing frequency (Hz)" and ax.get_ylabel() == "Δw"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["pair, Δt = +10 ms", "pair, Δt = -10 ms"]
    assert figure_bytes(fig, "pdf")[:4] == b"%PDF"


def test_protocols_module_import_is_light():
    code = ("import sys, analysis.protocols; "
            "heavy = [m for m in ('jax', 'discover', 'matplotlib.pyplot') if m in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
