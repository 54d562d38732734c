"""The event-driven engine (:mod:`discover.eventsim`, ``[network] engine = "event"``) against
the dense one: the same spikes and weights (float rounding: the synaptic input's sum runs in
another order), the same gradients (its tangent is the dense update's), for pair STDP in a
closed loop, event-driven polynomial and MLP rules, the triplet rule; steps with more spikes
than the spike lists hold; the automatic choice and the errors of an impossible one.
``tests/test_fidelity.py`` runs the Brian2 comparisons on both engines.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discover import eventsim
from discover.config import ConfigError, config_from_dict
from discover.networks import EVENT_MAX_DT, EVENT_MIN_SYNAPSES, LIFNetwork
from discover.rollout import rollout
from discover.rules import MLPRule, PolynomialRule, canonical_rule
from discover.unroll import unroll


def song_network(n_pre, n_post, engine, **kw) -> LIFNetwork:
    """Song et al. 2000's neuron (Brian2's example, as benchmarks/simulator_throughput.py), dt = 0.1 ms."""
    return LIFNetwork(n_pre=n_pre, n_post=n_post, dt=0.1, tau_m=10.0, v_rest=-74.0, v_th=-54.0, v_reset=-60.0,
                      t_ref=0.0, synapse="conductance", tau_syn=5.0, E_e=0.0, w_scale=0.01, integration="euler",
                      w_min=0.0, w_max=1.0, post_mode="closed", v0=-74.0, engine=engine, **kw)


def poisson(key, t, n, rate_hz, dt):
    return (jax.random.uniform(jax.random.fold_in(key, t), (n,)) < rate_hz * dt * 1e-3).astype(jnp.float32)


def closed_loop(net, rule, params, keys, T, rate_hz=15.0, w0=(0.0, 1.0)):
    """Final weights and postsynaptic spikes ``[T, n_post]`` of Poisson-driven episodes (one per key)."""

    def episode(key):
        k_w, k_in = jax.random.split(key)
        W0 = jax.random.uniform(k_w, (net.n_post, net.n_pre), minval=w0[0], maxval=w0[1])

        def step(state, t):
            state, loc = net.step(rule, params, state, {"s_pre": poisson(k_in, t, net.n_pre, rate_hz, net.dt)})
            return state, loc["s_post"][:, 0]

        state, s_post = jax.lax.scan(step, net.init_state(W0), jnp.arange(T))
        return state["W"], s_post

    return jax.jit(jax.vmap(episode))(keys)


def open_loop(net, rule, params, W0, s_pre, s_post):
    """Weights after every step of imposed spike trains ``[T, n]``."""

    def step(state, x):
        state, _ = net.step(rule, params, state, {"s_pre": x[0], "s_post": x[1]})
        return state, state["W"]

    return jax.jit(lambda a, b: jax.lax.scan(step, net.init_state(W0), (a, b))[1])(s_pre, s_post)


def random_trains(seed, T, n, p):
    return jnp.asarray(np.random.default_rng(seed).random((T, n)) < p, jnp.float32)


def test_pair_stdp_closed_loop_event_equals_dense():
    """400 inputs at 40 Hz onto 50 neurons, 0.3 s: every spike and weight as the dense path's."""
    rule = canonical_rule("stdp_pair")
    params = rule.init(jax.random.key(0))
    keys = jax.random.split(jax.random.key(1), 2)
    out = {e: closed_loop(song_network(400, 50, e), rule, params, keys, 3000, rate_hz=40.0)
           for e in ("dense", "event")}
    (W_d, s_d), (W_e, s_e) = out["dense"], out["event"]
    assert float(s_d.sum()) > 1000  # the output neurons fire (~40 Hz) ...
    W0 = jax.vmap(lambda k: jax.random.uniform(jax.random.split(k)[0], (50, 400)))(keys)
    assert float(jnp.abs(W_d - W0).mean()) > 0.01  # ... and the weights moved
    np.testing.assert_array_equal(np.asarray(s_e), np.asarray(s_d))
    np.testing.assert_allclose(np.asarray(W_e), np.asarray(W_d), rtol=0, atol=1e-6)


RULES = {
    "polynomial": lambda: PolynomialRule(inputs=("s_pre", "s_post", "tr_pre", "tr_post", "w"), degree=2,
                                         event_driven=True, output_scale=0.05),
    "mlp": lambda: MLPRule(inputs=("s_pre", "s_post", "tr_pre", "tr_post", "w"), hidden=(8,), event_driven=True,
                           output_scale=0.05, init_gain=1.0),
    "stdp_triplet": lambda: canonical_rule("stdp_triplet", {"A3_plus": 0.05, "A2_minus": 0.05}),
}


@pytest.mark.parametrize("kind", list(RULES))
def test_event_driven_rules_open_loop_event_equals_dense(kind):
    """Imposed spikes at 5 % per step (many steps with a pre and a post spike at the same
    synapse) and weights driven into the bounds: every step's weights as the dense path's."""
    rule = RULES[kind]()
    params = rule.init(jax.random.key(2))
    if kind == "polynomial":
        coef = jax.random.normal(jax.random.key(3), params["core"]["coef"].shape)
        params = {**params, "core": {"coef": coef}}
    n_pre, n_post, T = 60, 20, 300
    W0 = jax.random.uniform(jax.random.key(4), (n_post, n_pre))
    s_pre, s_post = random_trains(5, T, n_pre, 0.05), random_trains(6, T, n_post, 0.05)
    Ws = {e: open_loop(LIFNetwork(n_pre=n_pre, n_post=n_post, dt=0.5, post_mode="given", engine=e), rule, params,
                       W0, s_pre, s_post) for e in ("dense", "event")}
    np.testing.assert_allclose(np.asarray(Ws["event"]), np.asarray(Ws["dense"]), rtol=0, atol=1e-6)
    W = np.asarray(Ws["dense"])
    assert np.abs(W[-1] - np.asarray(W0)).mean() > 0.02  # plastic ...
    assert np.mean((W[-1] == 0.0) | (W[-1] == 1.0)) > 0.01  # ... up to the bounds


@pytest.mark.parametrize("capacity", [1, 3])
def test_more_spikes_than_the_lists_hold_is_exact(capacity):
    """A spike-list capacity below the step's spike count: that step takes the dense update;
    the result equals the dense path's (and the large capacity's)."""
    rule = canonical_rule("stdp_pair", {"A_plus": 0.05, "A_minus": 0.05})
    params = rule.init(jax.random.key(0))
    n_pre, n_post, T = 40, 10, 200
    s_pre, s_post = random_trains(7, T, n_pre, 0.05), random_trains(8, T, n_post, 0.1)
    over = (s_pre.sum(1) > capacity) | (s_post.sum(1) > capacity)
    assert int(over.sum()) > 30 and int((~over & (s_pre.sum(1) + s_post.sum(1) > 1)).sum()) > 10  # both kinds
    W0 = jnp.full((n_post, n_pre), 0.5)
    net = LIFNetwork(n_pre=n_pre, n_post=n_post, post_mode="given", engine="event", event_capacity=capacity)
    W_small = open_loop(net, rule, params, W0, s_pre, s_post)
    W_large = open_loop(dataclasses.replace(net, event_capacity=0), rule, params, W0, s_pre, s_post)
    W_dense = open_loop(dataclasses.replace(net, engine="dense"), rule, params, W0, s_pre, s_post)
    np.testing.assert_allclose(np.asarray(W_small), np.asarray(W_dense), rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.asarray(W_large), np.asarray(W_dense), rtol=0, atol=1e-6)


def test_chunks_of_one_spike_and_vmap():
    """plastic_update with chunks of one spike (a step with many takes many chunks) under a
    nested vmap (2 x 3 networks, each its own spikes) equals the dense update."""
    rule = canonical_rule("stdp_triplet", {"A2_plus": 0.01, "A3_plus": 0.02, "A2_minus": 0.03, "A3_minus": 0.01})
    params = rule.init(jax.random.key(0))
    n_pre, n_post = 30, 12
    rng = np.random.default_rng(9)
    W = jnp.asarray(rng.random((2, 3, n_post, n_pre)), jnp.float32)
    vec = lambda n, p: jnp.asarray(rng.random((2, 3, n)) < p, jnp.float32)  # noqa: E731
    pre = {"s_pre": vec(n_pre, 0.2), "tr_pre": jnp.asarray(rng.random((2, 3, n_pre)), jnp.float32),
           "tr_pre_slow": jnp.asarray(rng.random((2, 3, n_pre)), jnp.float32)}
    post = {"s_post": vec(n_post, 0.3), "tr_post": jnp.asarray(rng.random((2, 3, n_post)), jnp.float32),
            "tr_post_slow": jnp.asarray(rng.random((2, 3, n_post)), jnp.float32)}

    def event(W, pre, post):
        return eventsim.plastic_update(rule, params, W, pre, post, {}, w_min=0.0, w_max=1.0, k_pre=n_pre,
                                       k_post=n_post, chunk=1)

    def dense(W, pre, post):
        return eventsim._dense_update(rule, 0.0, 1.0, None, params, W, pre, post, {})

    got = jax.jit(jax.vmap(jax.vmap(event)))(W, pre, post)
    want = jax.vmap(jax.vmap(dense))(W, pre, post)
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-6, atol=1e-6)
    assert float(jnp.abs(got[0] - W).max()) > 0.01


@pytest.mark.parametrize("post_mode", ["closed", "given"])
def test_gradients_wrt_rule_parameters_equal_the_dense_ones(post_mode):
    """d loss / d (A_plus, A_minus) through 200 steps (checkpointed every 20, vmapped over 3
    episodes, both orders of vmap and grad): the dense path's, including the surrogate
    gradient of the neurons that did not spike (closed loop)."""
    rule = canonical_rule("stdp_pair")
    params = rule.init(jax.random.key(0))
    keys = jax.random.split(jax.random.key(3), 3)

    def loss(net):
        def episode(p, key):
            k_w, k_in, k_out = jax.random.split(key, 3)
            W0 = jax.random.uniform(k_w, (net.n_post, net.n_pre), minval=0.1, maxval=0.9)

            def step(state, t):
                inp = {"s_pre": poisson(k_in, t, net.n_pre, 300.0, net.dt),
                       "s_post": poisson(k_out, t, net.n_post, 100.0, net.dt)}
                state, loc = net.step(rule, p, state, inp)
                return state, loc["s_post"][:, 0]

            state, s = unroll(step, net.init_state(W0), jnp.arange(200), 20)
            return jnp.mean(state["W"] ** 2) + 0.01 * jnp.mean(s)
        return episode

    grads = {}
    for engine in ("dense", "event"):
        ep = loss(dataclasses.replace(song_network(60, 20, engine), post_mode=post_mode, w_min=None, w_max=None))
        g_each = jax.jit(jax.vmap(jax.grad(ep), in_axes=(None, 0)))(params, keys)["core"]
        g_sum = jax.jit(jax.grad(lambda p, ep=ep: jax.vmap(ep, in_axes=(None, 0))(p, keys).sum()))(params)["core"]
        grads[engine] = {k: np.asarray(v) for k, v in g_each.items()}, {k: float(v) for k, v in g_sum.items()}
    for k in ("A_plus", "A_minus"):
        assert np.all(np.isfinite(grads["dense"][0][k])) and np.any(grads["dense"][0][k] != 0)
        np.testing.assert_allclose(grads["event"][0][k], grads["dense"][0][k], rtol=1e-5)
        assert grads["event"][1][k] == pytest.approx(grads["dense"][1][k], rel=1e-5)


def test_rollout_records_the_same_locals():
    rule = canonical_rule("stdp_pair")
    params = rule.init(jax.random.key(0))
    T, n_pre, n_post = 50, 8, 3
    inputs = {"s_pre": random_trains(1, T, n_pre, 0.2), "s_post": random_trains(2, T, n_post, 0.2)}
    outs = {}
    for e in ("dense", "event"):
        net = LIFNetwork(n_pre=n_pre, n_post=n_post, post_mode="given", engine=e)
        outs[e] = rollout(net, rule, params, net.init_state(jnp.full((n_post, n_pre), 0.5)), inputs,
                          record_locals=True)
    assert set(outs["event"].local) == set(outs["dense"].local)
    for k, v in outs["dense"].local.items():
        np.testing.assert_allclose(np.asarray(outs["event"].local[k]), np.asarray(v), rtol=0, atol=1e-6, err_msg=k)
    np.testing.assert_allclose(np.asarray(outs["event"].weights), np.asarray(outs["dense"].weights), atol=1e-6)


def test_auto_engine_choice():
    pair = canonical_rule("stdp_pair")
    large, small = (1000, 100), (100, 10)
    assert 100 * 10 < EVENT_MIN_SYNAPSES <= 1000 * 100 and 0.1 <= EVENT_MAX_DT < 1.0
    cpu = jax.default_backend() == "cpu"
    assert LIFNetwork(*large, dt=0.1).engine_for(pair) == ("event" if cpu else "dense")
    assert LIFNetwork(*large, dt=1.0).engine_for(pair) == "dense"  # ~10x the spikes per step
    assert LIFNetwork(*small).engine_for(pair) == "dense"  # small: the dense step's few fused ops win
    assert LIFNetwork(*large, engine="dense").engine_for(pair) == "dense"
    assert LIFNetwork(*small, engine="event").engine_for(pair) == "event"
    # rules that change weights without spikes, or read a per-synapse trace
    for rule in (canonical_rule("us_error"), canonical_rule("us_reward"),
                 PolynomialRule(inputs=("s_pre", "s_post", "tr_pre", "w"), event_driven=False)):
        assert LIFNetwork(*large).engine_for(rule) == "dense"
    for rule in (canonical_rule("stdp_triplet"), canonical_rule("homeostatic_stdp"), RULES["polynomial"](),
                 RULES["mlp"]()):
        assert eventsim.why_dense(rule) is None, rule
    # settings that change every synapse every step
    assert LIFNetwork(*large, dw_tau=100.0).engine_for(pair) == "dense"
    assert LIFNetwork(*large, escape_noise=True).engine_for(pair) == "dense"


def test_an_impossible_event_engine_is_a_clear_error():
    with pytest.raises(ValueError, match=r'network.engine = "event" cannot simulate this network: dw_tau = 100.0 ms'):
        LIFNetwork(n_pre=4, n_post=2, engine="event", dw_tau=100.0)
    with pytest.raises(ValueError, match=r"escape_noise = true keeps a per-synapse eligibility trace"):
        LIFNetwork(n_pre=4, n_post=2, engine="event", escape_noise=True)
    net = LIFNetwork(n_pre=4, n_post=2, engine="event")
    with pytest.raises(ValueError, match=r"cannot run rule 'us_error': its equation eta\*psp\*\(u_target - v_post\) "
                                         r"is not zero without a spike .* use engine = \"auto\""):
        net.engine_for(canonical_rule("us_error"))
    with pytest.raises(ValueError, match=r"PolynomialRule 'rule' has event_driven = false"):
        net.engine_for(PolynomialRule(inputs=("s_pre", "tr_post", "w")))
    with pytest.raises(ValueError, match=r"network.engine = 'sparse' unknown; use one of auto, dense, event"):
        LIFNetwork(n_pre=4, n_post=2, engine="sparse")
    lif = {"task": {"name": "imitate", "n_pre": 4, "n_post": 2, "teacher": {"rule": "stdp_pair"}},
           "network": {"kind": "lif", "engine": "event", "dw_tau": 10.0}}
    with pytest.raises(ConfigError, match=r'\[network\] engine = "event" cannot simulate this network: dw_tau'):
        config_from_dict(lif)
    with pytest.raises(ConfigError, match=r"\[network\] engine = 'fast' is not one of 'auto', 'dense', 'event'"):
        config_from_dict({**lif, "network": {"kind": "lif", "engine": "fast"}})
