"""Measured experiments as data: protocol tables, the event-by-event protocol simulation,
Pfister & Gerstner's published rules, and the ``fit_protocols`` task (issue 14)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import sympy

from discover.build import build_task
from discover.config import ConfigError, config_from_dict
from discover.events import event_ready, merge_events
from discover.experiments import ExperimentError, read_table, spike_steps, table_spikes
from discover.rules import PFISTER_GERSTNER, SymbolicRule, canonical_rule, pfister_gerstner
from discover.vocabulary import SYMBOLS

S = SYMBOLS


def _padded(rows, n):
    return np.stack([np.pad(r, (0, n - len(r)), constant_values=-1) for r in rows])


def _protocols():
    """Pairings, triplets and trains at 0.1 ms: short enough for the clock-driven simulator."""
    pats = [((0,), (10,), 20, 5, 1, 1.0), ((0,), (-10,), 50, 4, 1, 1.0), ((-5, 5), (0,), 40, 3, 1, 1.0),
            ((0,), (-5, 15), 30, 3, 2, 0.3), ((0,), (0,), 20, 3, 1, 1.0)]
    pre, post = zip(*(spike_steps(a, b, f, n, 0.1, t, i) for a, b, f, n, t, i in pats))
    n = max(len(r) for r in pre + post)
    return _padded(pre, n), _padded(post, n)


@pytest.mark.parametrize("name", ["visual_all_to_all_full", "hippocampal_nearest_full"])
def test_event_by_event_equals_every_step(name):
    from analysis.protocols import simulate_pairings

    rule = pfister_gerstner(name)
    pre, post = _protocols()
    event = simulate_pairings(rule, None, pre, post, engine="event")
    clock = simulate_pairings(rule, None, pre, post, engine="clock")
    assert np.all(np.abs(event) > 1e-3)  # every protocol changes the weight
    np.testing.assert_allclose(event, clock, rtol=2e-4, atol=1e-6)


def test_nearest_spike_traces_saturate_and_change_the_result():
    from analysis.protocols import simulate_pairings

    pre, post = _protocols()
    a2a = canonical_rule("stdp_pair")
    near = canonical_rule("stdp_pair", traces="nearest")
    d_a2a = simulate_pairings(a2a, None, pre, post, engine="event")
    d_near = simulate_pairings(near, None, pre, post, engine="event")
    # the post-pre-post triplet (row 3): all-to-all sums two post traces at the pre spike
    assert abs(d_near[3]) < abs(d_a2a[3])
    # one pairing: there is no earlier spike to forget, the two agree
    p, q = spike_steps((0,), (10,), 1.0, 1, 0.1)
    one = [simulate_pairings(r, None, p[None], q[None], engine="event")[0] for r in (a2a, near)]
    np.testing.assert_allclose(one[0], one[1], rtol=1e-6)
    assert abs(one[0] - 0.01 * np.exp(-10 / 20)) < 1e-6


def test_rules_that_cannot_run_event_by_event_say_why():
    assert event_ready(canonical_rule("stdp_pair")) is None
    assert "v_post" in event_ready(SymbolicRule.from_string("0.01*s_post*v_post"))
    assert "between spikes" in event_ready(SymbolicRule.from_string("0.01*s_post*tr_pre - 0.001*tr_post"))


def test_builtin_tables_read_as_protocols():
    sj = read_table("sjostrom2001")
    assert len(sj) == 10 and set(sj["pairs"]) == {60}
    assert sj["sem"].notna().all()
    wang = read_table("wang2005")
    first = wang.iloc[0]  # pre_post_pre (5, -5): pre, 5 ms, post, 5 ms, pre
    assert first["pre_ms"] == (-5.0, 5.0) and first["post_ms"] == (0.0,)
    assert wang["dw"].max() < 1.0  # percent read as fractions
    bp = read_table("bipoo1998")
    assert bp["sem"].isna().all() and len(bp) > 40
    pre, post = table_spikes(sj, 0.1)
    step, a, b = merge_events(pre, post)
    assert int(a.sum(axis=1)[0]) == 60 and int(b.sum(axis=1)[0]) == 60


@pytest.mark.parametrize("text, message", [
    ("freq_hz,lag_ms,sem\n1,10,0.1\n", "no column dw"),
    ("lag_ms,dw\nten,0.1\n", "not a number"),
    ("pre_ms,post_ms,dw\n0;x,10,0.1\n", "not a spike time"),
    ("lag_ms,freq_hz,pairs,dw\n600,2,10,0.1\n", "would overlap"),
    ("dw,sem\n0.1,0.1\n", "no spike pattern"),
    ("lag_ms,dw,sem\n10,0.1,0\n", "must be positive"),
])
def test_bad_protocol_tables_are_named(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text("# a test table\n" + text)
    with pytest.raises(ExperimentError, match=message):
        table = read_table(path)
        for _, r in table.iterrows():
            spike_steps(r["pre_ms"], r["post_ms"], r["freq_hz"], int(r["pairs"]), 0.1)


def test_published_triplet_rules_have_the_frequency_dependence_they_were_fitted_to():
    import jax

    task = build_task(config_from_dict(fit_config(["sjostrom2001"])))
    for name in ("visual_all_to_all_minimal", "visual_nearest_minimal"):
        rule = pfister_gerstner(name)
        params = rule.init(jax.random.key(0))
        plus = task.predictions(rule, params)[task.table["lag_ms"].to_numpy() > 0]
        assert np.all(np.diff(plus) > 0), f"{name}: potentiation at +10 ms must grow with frequency: {plus}"
        assert task.error(rule, params) < 0.5 * task.null_error
    assert len(PFISTER_GERSTNER) == 8


def fit_config(data, **extra):
    n = sum(len(read_table(d)) if not str(d).endswith(".csv") else len(pd.read_csv(d, comment="#")) for d in data)
    cfg = {"task": {"name": "fit_protocols", "data": [str(d) for d in data]},
           "network": {"kind": "lif", "post_mode": "given", "dt": 0.1},
           "rule": {"kind": "polynomial", "inputs": ["s_pre", "s_post", "tr_pre", "tr_post"], "degree": 1,
                    "output_scale": 0.01, "timescales": {"tau_pre": 16.8, "tau_post": 33.7}},
           "meta": {"learning_rate": 0.02, "steps": 600, "batch": n, "train_episodes": n, "val_episodes": n,
                    "eval_every": 100},
           "distill": {"episodes": n, "refine_episodes": n, "samples": 1000, "refine_steps": 150, "policy": "aic"},
           "verify": {"episodes": n, "canonical": []}}
    for k, v in extra.items():
        cfg[k] = {**cfg.get(k, {}), **v}
    return cfg


@pytest.mark.parametrize("change, message", [
    ({"meta": {"batch": 7}}, "multiple of 10"),
    ({"rule": {"inputs": ["s_pre", "s_post", "v_post"]}}, "only spikes, traces and w"),
    ({"task": {"data": ["no_such_data"]}}, "neither a file nor a built-in"),
    ({"task": {"published": ["visual_all_to_all"]}}, "not a Pfister & Gerstner parameter set"),
    ({"network": {"post_mode": "closed"}}, "post_mode = \"given\""),
])
def test_fit_protocols_config_errors(change, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(fit_config(["sjostrom2001"], **change))


def recovered(cfg, run, want, rtol=0.1):
    """Run the whole pipeline; assert the selected equation has exactly ``want``'s terms,
    each coefficient within ``rtol``; return its ``equations.csv`` row."""
    from discover import stage as dstage
    from discover.io import selected_equation
    from distill import stage as sstage
    from distill import verify

    dstage.run(cfg, run, progress=False)
    sstage.run(cfg, run, progress=False)
    verify.run(cfg, run, progress=False)
    sel = selected_equation(run)
    got = {sympy.sympify(t, locals=S): v["value"] for t, v in json.loads(sel["coefficients"]).items()}
    assert set(got) == set(want), f"selected {sel['equation']}"
    for term, v in want.items():
        assert abs(got[term] - v) < rtol * abs(v), f"{term}: {got[term]} (true {v})"
    return sel


@pytest.mark.slow
def test_pair_stdp_recovered_from_its_own_protocol_data(tmp_path):
    """Data made by pair STDP on a pairing protocol (lags and frequencies), fitted by an
    event-driven polynomial, distilled, and selected by AIC: the pair rule's terms and
    coefficients come back, and its E is that of the generating rule."""
    from analysis.protocols import frequency_protocol

    true = {"A_plus": 0.004, "A_minus": 0.005}
    teacher = canonical_rule("stdp_pair", {**true, "tau_pre": 16.8, "tau_post": 33.7})
    df = frequency_protocol(teacher, freqs_hz=[1, 5, 10, 20], lags_ms=[-40, -20, -10, -5, 5, 10, 20, 40], pairs=20)
    df["pairs"] = 20
    df["sem"] = 0.01
    path = tmp_path / "pairs.csv"
    path.write_text("# generated by pair STDP (A_plus 0.004, A_minus 0.005, tau 16.8 / 33.7 ms), 20 pairings\n"
                    + df.to_csv(index=False))
    run = tmp_path / "run"
    sel = recovered(config_from_dict(fit_config([path])), run,
                    {S["s_post"] * S["tr_pre"]: true["A_plus"], S["s_pre"] * S["tr_post"]: -true["A_minus"]})
    fit = pd.read_csv(run / "fit.csv").set_index("rule")
    assert fit.loc[f"eq{sel['id']}", "loss"] < 0.05  # E in units of the SEM: the data are exact


# ----------------------------------------------------------------------------- infer


def test_recordings_with_missing_or_misshaped_arrays_are_named(tmp_path):
    from discover.tasks.infer import read_recording

    good = {"x": np.zeros((4, 10, 3)), "y": np.zeros((4, 2, 2)), "w0": np.zeros((4, 2, 3)), "record_every": 5}
    cases = [({"x": None}, "no array 'x'"), ({"y": np.zeros((4, 3, 2))}, "bins x record_every must equal steps"),
             ({"w0": np.zeros((4, 3, 2))}, r"w0 has shape \(4, 3, 2\)"), ({"w0": None}, "no array 'w0'"),
             ({"y": np.full((4, 2, 2), np.nan)}, "NaN everywhere"), ({"x": np.full((4, 10, 3), np.nan)}, "non-finite")]
    for change, message in cases:
        arrays = {k: v for k, v in {**good, **change}.items() if v is not None}
        path = tmp_path / "rec.npz"
        np.savez(path, **arrays)
        with pytest.raises(ConfigError, match=message):
            read_recording(str(path), spiking=False)
    np.savez(tmp_path / "rate.npz", **good)
    with pytest.raises(ConfigError, match="a rate recording"):
        read_recording(str(tmp_path / "rate.npz"), spiking=True)
    with pytest.raises(ConfigError, match="no such file"):
        read_recording(str(tmp_path / "none.npz"), spiking=False)


def test_infer_config_must_match_its_recording():
    cfg = {"task": {"name": "infer", "n_pre": 10, "n_post": 10, "steps": 100, "record_every": 5,
                    "data": {"path": "configs/recordings/oja_10x10.npz"}}, "network": {"kind": "rate"}}
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1]
    cfg["task"]["data"]["path"] = str(root / "configs/recordings/oja_10x10.npz")
    config_from_dict(cfg)
    cfg["task"]["n_post"] = 8
    with pytest.raises(ConfigError, match="n_post = 8 does not match the recording"):
        config_from_dict(cfg)


@pytest.mark.slow
def test_oja_inferred_from_a_noisy_partial_recording(tmp_path):
    """Activity only, 60 % of the neurons recorded, noise of 0.3 s.d.: Oja's terms and
    coefficients (10 %) come back, and the recording's held-out episodes are what verifies."""
    from discover.networks import RateNetwork
    from discover.recordings import simulate_recording, write_recording

    n = 5
    rec = simulate_recording(RateNetwork(n_pre=n, n_post=n), canonical_rule("oja"), episodes=24, steps=100,
                             record_every=5, noise=0.3, recorded=0.6, seed=3, w0_range=[-0.5, 0.5],
                             keep_weights=False)
    assert np.isnan(rec["y"][:, :, 3:]).all() and np.isfinite(rec["y"][:, :, :3]).all()
    path = write_recording(tmp_path / "rec.npz", rec)
    cfg = config_from_dict({
        "task": {"name": "infer", "n_pre": n, "n_post": n, "steps": 100, "record_every": 5,
                 "data": {"path": str(path)}},
        "network": {"kind": "rate"},
        "rule": {"kind": "polynomial", "inputs": ["x", "y", "w"], "degree": 3, "output_scale": 0.01},
        "meta": {"learning_rate": 0.01, "steps": 600, "batch": 8, "val_episodes": 6, "eval_every": 100},
        "distill": {"episodes": 6, "samples": 2000, "policy": "verified", "refine_steps": 100,
                    "refine_episodes": 12},
        "verify": {"episodes": 6}})
    recovered(cfg, tmp_path / "run", {S["x"] * S["y"]: 0.01, S["w"] * S["y"] ** 2: -0.01})


@pytest.mark.parametrize("spiking", [False, True])
def test_the_recorded_rule_reproduces_its_recording_and_another_does_not(tmp_path, spiking):
    """The recording's own rule has loss 0 on it (unrecorded neurons masked, not compared);
    a rule at twice its rate does not."""
    import jax

    from discover.networks import LIFNetwork, RateNetwork
    from discover.recordings import simulate_recording, write_recording

    if spiking:
        net = LIFNetwork(n_pre=20, n_post=4, dt=1.0, post_mode="closed", w_scale=12.0)
        rule, steps, extra = canonical_rule("stdp_pair", {"A_plus": 0.05, "A_minus": 0.0525}), 400, \
            {"pre_rate_range": [20.0, 30.0]}
        other = canonical_rule("stdp_pair", {"A_plus": 0.1, "A_minus": 0.105})
    else:
        net = RateNetwork(n_pre=4, n_post=4)
        rule, steps, extra = canonical_rule("oja"), 100, {"w0_range": [-0.5, 0.5]}
        other = canonical_rule("oja", {"eta": 0.02})
    rec = simulate_recording(net, rule, episodes=4, steps=steps, record_every=10, recorded=0.75, seed=1, **extra)
    counts = np.nansum(rec["s_post" if spiking else "y"], axis=1)
    assert not spiking or counts[:, :3].sum(axis=1).min() > 10  # the recorded neurons fire: something to fit
    path = write_recording(tmp_path / "rec.npz", rec)
    network = {"kind": "lif", "post_mode": "closed", "dt": 1.0, "w_scale": 12.0} if spiking else {"kind": "rate"}
    cfg = config_from_dict({"task": {"name": "infer", "n_pre": net.n_pre, "n_post": net.n_post, "steps": steps,
                                     "record_every": 10, "data": {"path": str(path)}, "holdout": 0.5},
                            "network": network})
    task = build_task(cfg)
    eps = task.sample(jax.random.key(0), 2)
    assert float(eps["mask"][..., 3:].sum()) == 0 and float(eps["mask"][..., :3].min()) == 1

    def loss(r):
        p = r.init(jax.random.key(0))
        return float(np.mean(jax.vmap(lambda e: task.loss(task.simulate(r, p, e), e))(eps)))

    assert loss(rule) < 1e-6
    assert loss(other) > 1e-3


@pytest.mark.parametrize("spiking", [False, True])
def test_nwb_recording_reads_as_its_npz(tmp_path, spiking):
    """The same recording written as NWB (trials, a stimulus TimeSeries, a units table of
    spike times or an activity TimeSeries, w0 in scratch) reads as the .npz does, unrecorded
    neurons NaN, and the infer task builds from it."""
    from discover.networks import LIFNetwork, RateNetwork
    from discover.nwb import write_nwb
    from discover.recordings import simulate_recording, write_recording
    from discover.tasks.infer import read_recording

    if spiking:
        net, rule, extra = LIFNetwork(n_pre=20, n_post=3, dt=1.0, post_mode="closed", w_scale=12.0), \
            canonical_rule("stdp_pair"), {"pre_rate_range": [20.0, 30.0]}
    else:
        net, rule, extra = RateNetwork(n_pre=4, n_post=3), canonical_rule("oja"), {"w0_range": [-0.5, 0.5]}
    rec = simulate_recording(net, rule, episodes=3, steps=200, record_every=10, recorded=0.67, seed=2, **extra)
    a = read_recording(str(write_recording(tmp_path / "rec.npz", rec)), spiking=spiking)
    b = read_recording(str(write_nwb(tmp_path / "rec.nwb", rec)), spiking=spiking)
    assert set(a) == set(b) and a["record_every"] == b["record_every"] == 10
    for k in ("inputs", "activity", "w0", "w"):
        np.testing.assert_allclose(b[k], a[k], rtol=1e-6, equal_nan=True)
    assert np.isnan(b["activity"][:, :, 2]).all() and np.isfinite(b["activity"][:, :, :2]).all()
    assert not spiking or (b["activity"][:, :, :2].sum() > 5 and b["dt"] == a["dt"] == 1.0)
    network = {"kind": "lif", "post_mode": "closed", "dt": 1.0, "w_scale": 12.0} if spiking else {"kind": "rate"}
    cfg = config_from_dict({"task": {"name": "infer", "n_pre": net.n_pre, "n_post": 3, "steps": 200,
                                     "record_every": 10, "data": {"path": str(tmp_path / "rec.nwb")}},
                            "network": network})
    assert build_task(cfg).episodes == 3


def test_bad_nwb_recordings_are_named(tmp_path):
    from discover.nwb import write_nwb
    from discover.tasks.infer import read_recording

    (tmp_path / "junk.nwb").write_bytes(b"not hdf5")
    with pytest.raises(ConfigError, match="not a readable NWB file"):
        read_recording(str(tmp_path / "junk.nwb"), spiking=False)
    rec = {"s_pre": np.zeros((2, 10, 3)), "s_post": np.full((2, 10, 2), 0.5), "w0": np.zeros((2, 2, 3)),
           "dt": 1.0, "record_every": 1}
    from discover.nwb import NWBError

    with pytest.raises(NWBError, match="whole numbers"):  # noisy counts are not spike times
        write_nwb(tmp_path / "noisy.nwb", rec)
    rate = {"x": np.zeros((2, 10, 3)), "y": np.zeros((2, 5, 2)), "w0": np.zeros((2, 2, 3)), "record_every": 2}
    write_nwb(tmp_path / "rate.nwb", rate)
    with pytest.raises(ConfigError, match="no array 's_pre'"):  # a rate recording read for a spiking network
        read_recording(str(tmp_path / "rate.nwb"), spiking=True)
