"""Excitatory and inhibitory inputs (``[network] n_inh``, ``plastic``), Vogels et al. 2011's
inhibitory STDP and the ``inhibitory_balance`` task."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discover.build import build_task
from discover.config import ConfigError, config_from_dict
from discover.networks import LIFNetwork
from discover.rules import canonical_rule


def ei_net(**kw):
    base = dict(n_pre=4, n_post=1, dt=0.1, tau_m=20.0, v_rest=-60.0, v_th=-50.0, v_reset=-60.0, t_ref=5.0,
                synapse="conductance", tau_syn=5.0, E_e=0.0, n_inh=2, E_i=-80.0, tau_syn_i=10.0, w_scale=0.5,
                w_scale_i=0.5, w_min=0.0, w_max=5.0, post_mode="closed", plastic="inh")
    return LIFNetwork(**{**base, **kw})


def test_inhibitory_conductance_pulls_towards_e_i_and_decays_with_its_own_time_constant():
    net = ei_net()
    rule = canonical_rule("vogels_istdp", {"eta": 0.0})
    p = rule.init(jax.random.key(0))
    state = net.init_state(jnp.ones((1, 4)))
    state, _ = net.step(rule, p, state, {"s_pre": jnp.array([1.0, 0.0, 0.0, 0.0])})  # one inhibitory spike
    assert float(state["gi"][0]) == pytest.approx(0.5) and float(state["g"][0]) == 0.0
    state, _ = net.step(rule, p, state, {"s_pre": jnp.zeros(4)})
    # exact exponential with the conductance frozen over the step: v_inf = (v_rest + gi*E_i)/(1 + gi)
    gi = 0.5
    v_inf = (-60.0 + gi * -80.0) / (1 + gi)
    expect = v_inf + (-60.0 - v_inf) * math.exp(-0.1 * (1 + gi) / 20.0)
    assert float(state["v"][0]) == pytest.approx(expect, abs=1e-4)
    assert float(state["gi"][0]) == pytest.approx(0.5 * math.exp(-0.1 / 10.0), rel=1e-5)
    exc, _ = net.step(rule, p, net.init_state(jnp.ones((1, 4))), {"s_pre": jnp.array([0.0, 0.0, 1.0, 0.0])})
    assert float(exc["g"][0]) == pytest.approx(0.5) and float(exc["gi"][0]) == 0.0  # the last inputs excite


def test_only_the_chosen_population_learns():
    net = ei_net()
    rule = canonical_rule("vogels_istdp", {"eta": 0.1})
    p = rule.init(jax.random.key(0))
    state = net.init_state(jnp.full((1, 4), 1.0))
    for t in range(50):
        state, _ = net.step(rule, p, state, {"s_pre": jnp.ones(4) * (t % 3 == 0)})
    W = np.asarray(state["W"])[0]
    assert np.all(W[2:] == 1.0) and np.all(W[:2] != 1.0)
    assert net.sample_mask.tolist() == [[1.0, 1.0, 0.0, 0.0]]


@pytest.mark.parametrize("net,msg", [
    ({"synapse": "delta", "n_inh": 10}, "need conductance synapses"),
    ({"synapse": "conductance", "plastic": "inh"}, "needs inhibitory inputs: set n_inh > 0"),
])
def test_bad_ei_networks_are_named(net, msg):
    d = {"task": {"name": "correlation_detection"}, "network": {"kind": "lif", "post_mode": "closed", **net}}
    with pytest.raises(ConfigError, match=msg):
        config_from_dict(d)


def balance_config(**task):
    import tomllib
    from pathlib import Path

    cfg = tomllib.loads((Path(__file__).resolve().parents[1] / "configs" / "inhibitory_balance.toml").read_text())
    cfg["task"].update(**task)
    return cfg


def test_vogels_rule_balances_a_tuned_neuron_at_the_target_rate():
    """Vogels et al. 2011's rule at eta = 0.01: from ~30 Hz to within 20 % of 5 Hz after 10 s
    (the learned weights frozen, on the same inputs), and the inhibitory tuning follows the
    excitatory one; without plasticity the neuron stays fast."""
    task = build_task(config_from_dict(balance_config()))
    eps = task.sample(jax.random.key(1), 4)
    refs = task.references()

    def run(rule):
        p = rule.init(jax.random.key(0))
        return jax.jit(jax.vmap(lambda e: (lambda o: (task.output_rate(o, e), task.tuning_correlation(o.final["W"])))(
            task.simulate(rule, p, e))))(eps)

    rate, corr = run(refs["vogels2011"])
    assert abs(float(rate.mean()) - 5.0) < 1.0 and float(corr.mean()) > 0.8
    rate0, corr0 = run(refs["none"])
    assert float(rate0.mean()) > 15.0 and abs(float(corr0.mean())) < 0.3


def test_inhibitory_balance_needs_the_ei_neuron():
    cfg = balance_config()
    cfg["network"]["plastic"] = "all"
    with pytest.raises(ConfigError, match="plastic = \"inh\""):
        config_from_dict(cfg)
    cfg = balance_config(channels=7)
    with pytest.raises(ConfigError, match="channels = 7 must divide"):
        config_from_dict(cfg)
