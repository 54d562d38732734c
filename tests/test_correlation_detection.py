"""The correlation-detection task (issue 12): E2L's protocol, the delta synapse, the SNR."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discover.build import build_task
from discover.config import ConfigError, config_from_dict, load_config
from discover.networks import LIFNetwork
from discover.rules import SymbolicRule, canonical_rule


def small(**task):
    cfg = load_config("configs/correlation_detection.toml")
    import dataclasses

    return build_task(dataclasses.replace(cfg, task=dataclasses.replace(cfg.task, **task)))


def test_delta_synapse_jumps_one_step_later_and_decays_with_tau_m():
    net = LIFNetwork(n_pre=2, n_post=1, synapse="delta", tau_m=18.0, v_rest=0.0, v_th=1e9, v_reset=0.0,
                     w_min=None, w_max=None)
    rule = SymbolicRule.from_string("0*w", {})
    state = net.init_state(jnp.array([[0.7, 0.2]]))
    vs = []
    for t in range(4):
        state, local = net.step(rule, rule.init(jax.random.key(0)), state,
                                {"s_pre": jnp.array([1.0, 0.0]) if t == 0 else jnp.zeros(2)})
        vs.append(float(local["v_post"][0, 0]))
    e = math.exp(-1.0 / 18.0)
    assert vs == pytest.approx([0.0, 0.7, 0.7 * e, 0.7 * e * e], rel=1e-5)


def test_pattern_is_replayed_and_the_background_thinned_as_e2l_does():
    task = small(steps=10_000, snr_ms=10_000.0)
    ep = jax.tree_util.tree_map(lambda a: a[0], task.sample(jax.random.key(3), 1))
    S = np.asarray(jax.vmap(lambda t: task.spikes(ep, t))(jnp.arange(10_000)))
    in_pat = np.asarray(task.in_pattern(jnp.arange(10_000)))
    windows = S[in_pat].reshape(20, 100, 1000)
    assert np.all(windows == windows[0]) and windows[0].sum() > 0  # one frozen pattern, every cycle
    rate_pat = windows[0].mean() * 1e3
    rate_bg = S[~in_pat].mean() * 1e3
    assert task.background_rate == pytest.approx(0.5)  # E2L's alpha = 1 - 2 / 2.4 of 3 Hz
    assert rate_pat == pytest.approx(3.0, rel=0.1) and rate_bg == pytest.approx(0.5, rel=0.1)
    eq = small(steps=10_000, snr_ms=10_000.0, background="equal")
    assert eq.background_rate == 3.0


def test_free_potential_is_the_filtered_input_and_snr_is_e2ls():
    task = small(steps=5_000, snr_ms=5_000.0)
    ep = jax.tree_util.tree_map(lambda a: a[0], task.sample(jax.random.key(1), 1))
    S = np.asarray(jax.vmap(lambda t: task.spikes(ep, t))(jnp.arange(5_000)), np.float64)
    w = np.full(1000, 0.4)
    V = np.asarray(task.free_potential(jnp.asarray(w[None], jnp.float32), ep))[:, 0]
    e, v, ref = math.exp(-1.0 / 18.0), 0.0, []
    for t in range(5_000):  # an input spike of step t - 1 reaches v in step t
        v = v * e + (S[t - 1] @ w if t else 0.0)
        ref.append(v)
    np.testing.assert_allclose(V, ref, rtol=1e-4, atol=1e-4)
    # E2L's SNR (main.py, simulate): per window (max V - mean V between windows) / s.d. between
    stim = np.zeros(5_000, int)
    for k, t in enumerate(range(400, 5_000, 500)):
        stim[t:t + 100] = k + 1
    inter = np.asarray(ref)[stim == 0]
    vmax = np.array([np.max(np.asarray(ref)[stim == k]) for k in range(1, 11)])
    want = np.mean((vmax - inter.mean()) / inter.std())
    assert float(task.snr(jnp.asarray(w[None], jnp.float32), ep)) == pytest.approx(want, rel=1e-4)


def test_homeostatic_stdp_beats_no_plasticity_and_locals_are_sampled_from_a_few_inputs():
    task = small(steps=20_000)
    eps = task.sample(jax.random.key(0), 2)
    none, homeo = SymbolicRule.from_string("0*w", {}), canonical_rule("homeostatic_stdp")

    def snr(rule):
        p = rule.init(jax.random.key(0))
        return np.asarray(jax.jit(jax.vmap(lambda e: task.e2l_fitness(task.simulate(rule, p, e), e)))(eps))

    assert snr(homeo).min() > snr(none).max()
    locs = jax.jit(jax.vmap(lambda e: task.visited(homeo, homeo.init(jax.random.key(0)), e)))(eps)
    assert locs["tr_pre"].shape == (2, 20_000, 1, 16) and locs["s_post"].shape == (2, 20_000, 1, 16)


@pytest.mark.parametrize("task, msg", [
    ({"steps": 20_100, "record_every": 100}, "whole cycles"),
    ({"snr_ms": 11_250.0}, "whole cycles"),
    ({"inter_ms": 300.0, "snr_ms": 12_000.0}, "background = \"equal\""),
    ({"visited_pre": 2000}, "visited_pre"),
])
def test_bad_protocols_are_refused(task, msg):
    cfg = load_config("configs/correlation_detection.toml")
    raw = {"task": {"name": "correlation_detection", **task},
           "network": {k: getattr(cfg.network, k) for k in ("kind", "post_mode", "synapse", "tau_m", "v_rest",
                                                             "v_th", "v_reset")}}
    with pytest.raises(ConfigError, match=msg):
        build_task(config_from_dict(raw))


def test_the_task_needs_a_neuron_that_spikes_by_itself():
    with pytest.raises(ConfigError, match="post_mode"):
        build_task(config_from_dict({"task": {"name": "correlation_detection"},
                                     "network": {"kind": "lif", "post_mode": "given"}}))
