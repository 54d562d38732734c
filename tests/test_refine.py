"""Refitting an equation's coefficients on the task: CMA-ES through a closed spiking loop,
and its intervals of indistinguishable values."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discover.build import build_task
from discover.config import ConfigError, config_from_dict
from discover.equations import parse_equation
from distill.refine import _indistinguishable, refine
from distill.simplify import terms
from distill.stage import refit_optimizer

# pair STDP from postsynaptic spikes only, closed loop: configs/stdp_pair.toml at 20 -> 2, 1 s
CLOSED = {"task": {"name": "imitate", "steps": 1000, "record_every": 10, "n_pre": 20, "n_post": 2,
                   "pre_rate_range": [20.0, 30.0], "pre_modulation_range": [0.5, 1.0],
                   "pre_frequency_range": [4.0, 40.0], "pre_phase_spread": 0.25, "w0_range": [0.3, 0.9],
                   "observe": "spikes", "obs_tau": 5.0,
                   "teacher": {"rule": "stdp_pair", "params": {"A_plus": 0.05, "A_minus": 0.0525}}},
          "network": {"kind": "lif", "post_mode": "closed", "w_scale": 6.0},
          "rule": {"kind": "polynomial", "degree": 1, "output_scale": 0.05},
          "meta": {"optimizer": "cma_es"}}


def test_cma_es_refit_through_a_closed_spiking_loop():
    cfg = config_from_dict(CLOSED)
    task = build_task(cfg)
    true = {"s_post*tr_pre": 0.05, "s_pre*tr_post": -0.0525}
    start = parse_equation("0.04*s_post*tr_pre - 0.063*s_pre*tr_post")  # A_plus -20 %, A_minus +20 %
    taus = {"tau_pre": 20.0, "tau_post": 20.0}
    out = refine(task, start, taus, steps=150, episodes=16, optimizer="cma_es")
    assert out is not None
    got, cis, loss, _ = out
    got_t = {str(k): v for k, v in terms(got).items()}
    assert set(got_t) == set(true)
    for k, v in true.items():
        assert abs(got_t[k] - v) < 0.1 * abs(v), f"{k}: {got_t[k]} (teacher {v}, start 20 % off)"
        value, low, high = cis[k]
        assert low < high and low <= value <= high
        assert low <= v <= high, f"{k}: the interval [{low}, {high}] misses the teacher's {v}"


def test_indistinguishable_interval_on_a_flat_bottom():
    # per-episode losses a_e * max(|u - 1| - 0.11, 0): every grid value in [0.9, 1.1] is as good as 1
    a = jnp.linspace(0.5, 1.5, 8)

    def flat(core):
        return a * jnp.maximum(jnp.abs(core["u0"] - 1.0) - 0.11, 0.0) + 0.0 * core["u1"]

    lo, hi = _indistinguishable(flat, {"u0": 1.0, "u1": 1.0}, ["u0", "u1"], level=0.95, span=0.5, points=25)
    np.testing.assert_allclose([lo[0], hi[0]], [0.9, 1.1], atol=1e-6)
    np.testing.assert_allclose([lo[1], hi[1]], [0.5, 1.5], atol=1e-6)  # u1 does not matter: the whole span

    # zero-mean per-episode slopes: no side is significantly worse than the optimum
    b = jnp.array([1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 0.1, -0.1])

    def noisy(core):
        return b * (core["u0"] - 1.0) + 0.01 * (core["u0"] - 1.0) ** 2

    lo, hi = _indistinguishable(noisy, {"u0": 1.0}, ["u0"], level=0.95, span=0.5, points=25)
    assert lo[0] == pytest.approx(0.5) and hi[0] == pytest.approx(1.5)


def test_refit_optimizer_follows_meta_training():
    assert refit_optimizer(config_from_dict(CLOSED)) == "cma_es"
    assert refit_optimizer(config_from_dict({**CLOSED, "meta": {"optimizer": "adam"}})) == "adam"
    assert refit_optimizer(config_from_dict({**CLOSED, "distill": {"refine_optimizer": "adam"}})) == "adam"
    with pytest.raises(ConfigError, match="refine_optimizer"):
        config_from_dict({**CLOSED, "distill": {"refine_optimizer": "lbfgs"}})
    with pytest.raises(ConfigError, match="refine_sigma"):
        config_from_dict({**CLOSED, "distill": {"refine_sigma": 0.0}})


def test_adam_refit_with_a_checkpoint_every_step_is_the_plain_refit():
    """``chunk`` (the run's ``[meta] checkpoint_every``) reaches the refit's rollouts: with a
    checkpoint around every step the refit lands on the same coefficients and intervals,
    and both move a 20 %-off start back to Oja's."""
    from distill.refine import Objective

    cfg = config_from_dict({"task": {"name": "imitate", "steps": 50, "n_pre": 5, "n_post": 2,
                                     "teacher": {"rule": "oja"}},
                            "rule": {"kind": "polynomial", "degree": 3}})
    task = build_task(cfg)
    start = parse_equation("0.012*x*y - 0.008*w*y**2")
    outs = {}
    for chunk in (None, 1):
        out = refine(task, start, {}, steps=60, episodes=4, chunk=chunk)
        assert out is not None
        outs[chunk] = out
    (_, ca, la, _), (b, cb, lb, _) = outs[None], outs[1]
    np.testing.assert_allclose(la, lb, rtol=1e-4)
    for k in ca:
        np.testing.assert_allclose(ca[k], cb[k], rtol=1e-4)
    got = {str(k): v for k, v in terms(b).items()}
    assert abs(got["x*y"] - 0.01) < abs(0.012 - 0.01) and abs(got["w*y**2"] + 0.01) < abs(-0.008 + 0.01)
    plain = Objective(task, list(terms(start)), {}, episodes=4, seed=0, traces="all_to_all", refit=())
    ckpt = Objective(task, list(terms(start)), {}, episodes=4, seed=0, traces="all_to_all", refit=(), chunk=1)
    assert "remat" in str(jax.make_jaxpr(ckpt.mean_loss)(ckpt.start(), jnp.ones(2)))
    assert "remat" not in str(jax.make_jaxpr(plain.mean_loss)(plain.start(), jnp.ones(2)))
