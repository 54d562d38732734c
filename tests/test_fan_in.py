"""Fixed fan-in (sparse) connectivity: ``[network] fan_in``, ``fan_in_seed``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_event_engine import closed_loop, song_network

from discover.config import ConfigError, config_from_dict
from discover.networks import LIFNetwork, RateNetwork, fan_in_mask, present
from discover.rollout import rollout
from discover.rules import canonical_rule


def test_mask_has_fan_in_partners_per_neuron_and_depends_on_the_seed_only():
    m = fan_in_mask(6, 20, 5, 3)
    assert m.shape == (6, 20) and np.all(m.sum(axis=1) == 5)
    assert np.array_equal(m, fan_in_mask(6, 20, 5, 3))
    assert not np.array_equal(m, fan_in_mask(6, 20, 5, 4))
    assert len({tuple(r) for r in m}) > 1  # neurons draw their own partners


def test_rate_network_absent_synapses_start_and_stay_zero():
    net = RateNetwork(n_pre=8, n_post=3, fan_in=3, fan_in_seed=1)
    rule = canonical_rule("hebb_decay", {"eta": 0.05, "lam": 0.1})
    x = jax.random.normal(jax.random.key(0), (200, 8))
    out = rollout(net, rule, rule.init(jax.random.key(0)), net.init_state(jnp.full((3, 8), 0.5)), {"x": x})
    W = np.asarray(out.final["W"])
    assert np.all(W[net.mask == 0] == 0)
    assert np.all(np.abs(W[net.mask == 1] - 0.5) > 1e-4)  # the present ones learned
    full = RateNetwork(n_pre=8, n_post=3)
    assert full.mask is None


def test_lif_event_engine_keeps_the_connectivity_as_the_dense_one():
    """400 inputs at 80 Hz onto 50 neurons with 200 partners each: event == dense, absent stay 0."""
    rule = canonical_rule("stdp_pair")
    params = rule.init(jax.random.key(0))
    keys = jax.random.split(jax.random.key(1), 2)
    out = {e: closed_loop(song_network(400, 50, e, fan_in=200, fan_in_seed=2), rule, params, keys, 2000,
                          rate_hz=80.0, w0=(0.5, 1.0)) for e in ("dense", "event")}
    (W_d, s_d), (W_e, s_e) = out["dense"], out["event"]
    mask = fan_in_mask(50, 400, 200, 2)
    assert float(s_d.sum()) > 100
    assert np.all(np.asarray(W_d)[:, mask == 0] == 0) and np.all(np.asarray(W_e)[:, mask == 0] == 0)
    np.testing.assert_array_equal(np.asarray(s_e), np.asarray(s_d))
    np.testing.assert_allclose(np.asarray(W_e), np.asarray(W_d), rtol=0, atol=1e-6)


def test_samples_come_from_present_synapses_only():
    net = LIFNetwork(n_pre=10, n_post=4, fan_in=3)
    vals = np.broadcast_to(np.arange(10.0), (7, 4, 10))
    kept = present(net, vals)
    assert kept.size == 7 * 4 * 3 and set(np.unique(kept)) <= set(np.flatnonzero(net.mask.any(axis=0)))
    assert present(net, vals[..., :5]).size == 7 * int(net.mask[:, :5].sum())  # the first k inputs' columns


def test_fan_in_above_the_inputs_is_refused():
    d = {"task": {"name": "oja_pca", "n_pre": 5}, "network": {"kind": "rate", "fan_in": 6}}
    with pytest.raises(ConfigError, match="fan_in = 6 is more than the n_pre = 5 inputs"):
        config_from_dict(d)
    with pytest.raises(ConfigError, match="fan_in must be >= 0"):
        config_from_dict({"network": {"kind": "rate", "fan_in": -1}})
