"""The simulator: spikes with a surrogate gradient, unrolls, rate and LIF networks, task losses.

Numerics are checked against analytic solutions (Oja's fixed point, the membrane response
to one input spike, exponential traces) and gradients of short unrolls against central
finite differences (float32, relative tolerance ~1e-2).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discover.networks import LIFNetwork, RateNetwork
from discover.rules import PolynomialRule, canonical_rule
from discover.spikes import spike
from discover.tasks.imitate import Imitate
from discover.tasks.oja_pca import make_oja_pca
from discover.unroll import unroll


def scan_network(net, rule, params, W0, xs, **state_kw):
    """Run ``net`` over inputs ``xs`` (time-major dict); returns (final state, locals per step)."""

    def step(state, inp):
        return net.step(rule, params, state, inp)

    state = net.init_state(W0)
    state = {**state, **state_kw}
    return jax.lax.scan(step, state, xs)


def quiet_rule(name="stdp_triplet"):
    """A spiking rule that never changes the weights, with the rule's trace time constants."""
    c = {"stdp_pair": {"A_plus": 0.0, "A_minus": 0.0},
         "stdp_triplet": {"A2_plus": 0.0, "A3_plus": 0.0, "A2_minus": 0.0, "A3_minus": 0.0}}[name]
    rule = canonical_rule(name, c)
    return rule, rule.init(jax.random.key(0))


# ----------------------------------------------------------------------------- spike


def test_spike_forward_is_a_step():
    u = jnp.array([-5.0, -1e-3, 0.0, 1e-3, 7.0])
    np.testing.assert_array_equal(np.asarray(spike(u)), [0.0, 0.0, 1.0, 1.0, 1.0])
    np.testing.assert_array_equal(np.asarray(spike(u, 3.0)), [0.0, 0.0, 1.0, 1.0, 1.0])


@pytest.mark.parametrize("beta", [1.0, 0.5, 4.0])
def test_spike_gradient_is_the_superspike_surrogate(beta):
    points = [-3.0, -0.5, 0.0, 0.25, 2.0]
    g = jax.grad(lambda u: spike(u, beta))
    for u in points:
        assert float(g(jnp.float32(u))) == pytest.approx(1.0 / (beta * abs(u) + 1.0) ** 2, rel=1e-6)
    # elementwise on arrays, and through jit
    u = jnp.asarray(points)
    gv = jax.jit(jax.vmap(g))(u)
    np.testing.assert_allclose(np.asarray(gv), 1.0 / (beta * np.abs(points) + 1.0) ** 2, rtol=1e-6)
    # chain rule: d spike(2u - 1)/du = 2 * surrogate(2u - 1)
    assert float(jax.grad(lambda u: spike(2 * u - 1, beta))(jnp.float32(0.3))) == pytest.approx(
        2.0 / (beta * 0.4 + 1.0) ** 2, rel=1e-6)


# ----------------------------------------------------------------------------- unroll


def _toy_step(carry, x):
    h, W = carry
    h = jnp.tanh(W @ h + x)
    return (h, W), jnp.sum(h**2)


def test_unroll_chunked_equals_plain_values_and_gradients():
    T = 12
    xs = jnp.asarray(np.random.default_rng(0).normal(size=(T, 3)), jnp.float32)
    W = jnp.asarray(np.random.default_rng(1).normal(size=(3, 3)) * 0.7, jnp.float32)
    h0 = jnp.zeros(3)

    def loss(W, chunk):
        (h, _), ys = unroll(_toy_step, (h0, W), xs, chunk)
        return jnp.sum(ys) + jnp.sum(h)

    ref_carry, ref_ys = jax.lax.scan(_toy_step, (h0, W), xs)
    for chunk in (None, 3, 4, 12, 100):
        (h, _), ys = unroll(_toy_step, (h0, W), xs, chunk)
        assert ys.shape == (T,)
        np.testing.assert_allclose(np.asarray(ys), np.asarray(ref_ys), rtol=1e-6)
        np.testing.assert_allclose(np.asarray(h), np.asarray(ref_carry[0]), rtol=1e-6)
    g_plain = jax.grad(loss)(W, None)
    for chunk in (3, 4):
        np.testing.assert_allclose(np.asarray(jax.grad(loss)(W, chunk)), np.asarray(g_plain), rtol=1e-5, atol=1e-7)


def test_rollout_checkpointed_every_step_gives_the_same_gradient():
    """``chunk=1`` (``[meta] checkpoint_every = 1``) rematerializes every step inside the
    blocks of ``record_every`` steps: the gradient a degree-3 polynomial rule gets is the
    plain one, and the program really holds one checkpoint per step, not per block."""
    from discover.rollout import rollout

    net, rule = RateNetwork(n_pre=6, n_post=4), PolynomialRule(inputs=("x", "y", "w"), degree=3)
    rng = np.random.default_rng(3)
    params = rule.init(jax.random.key(0))
    params["core"]["coef"] = jnp.asarray(rng.normal(size=params["core"]["coef"].shape) * 0.3, jnp.float32)
    W0 = jnp.asarray(rng.normal(size=(4, 6)) * 0.3, jnp.float32)
    x = jnp.asarray(rng.normal(size=(20, 6)), jnp.float32)

    def loss(p, chunk):
        out = rollout(net, rule, p, net.init_state(W0), {"x": x}, record_every=5, chunk=chunk)
        return jnp.sum(out.activity ** 2) + jnp.sum(out.weights ** 2)

    plain = jax.grad(loss)(params, None)["core"]["coef"]
    for chunk in (1, 5):
        got = jax.grad(loss)(params, chunk)["core"]["coef"]
        np.testing.assert_allclose(np.asarray(got), np.asarray(plain), rtol=1e-5, atol=1e-8)
    assert float(jnp.abs(plain).max()) > 1e-3

    def remats(chunk):
        return str(jax.make_jaxpr(lambda p: loss(p, chunk))(params)).count("remat")

    assert remats(1) > remats(5) > remats(None) == 0


def test_unroll_chunk_must_divide_the_length():
    xs = jnp.zeros((10, 2))
    with pytest.raises(ValueError, match="not a multiple of the checkpoint chunk 4"):
        unroll(lambda c, x: (c, x), jnp.zeros(2), xs, 4)


# ----------------------------------------------------------------------------- rate network


def test_oja_rule_finds_the_first_principal_component():
    """Oja 1982: w converges to the unit-norm top eigenvector of the input covariance."""
    rng = np.random.default_rng(0)
    n, T = 4, 4000
    Q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    lam = np.array([3.0, 1.0, 0.5, 0.2])
    C = Q @ np.diag(lam) @ Q.T
    x = rng.multivariate_normal(np.zeros(n), C, size=T).astype(np.float32)
    w0 = rng.normal(size=(1, n)) * 0.3
    rule = canonical_rule("oja")
    net = RateNetwork(n_pre=n, n_post=1)
    final, _ = jax.jit(lambda xs: scan_network(net, rule, rule.init(jax.random.key(0)), w0, xs))({"x": jnp.asarray(x)})
    w = np.asarray(final["W"][0], np.float64)
    cos2 = (w @ Q[:, 0]) ** 2 / (w @ w)
    assert cos2 > 0.95
    assert np.linalg.norm(w) == pytest.approx(1.0, abs=0.1)
    # the start was not already aligned
    assert (w0[0] @ Q[:, 0]) ** 2 / (w0[0] @ w0[0]) < 0.9


def test_rate_step_local_variables_and_traces():
    """One step by hand: y = f(Wx), theta and the means low-pass y**2, x and y, BCM dw."""
    rng = np.random.default_rng(1)
    n_pre, n_post = 3, 2
    W = rng.uniform(-1, 1, (n_post, n_pre))
    x = rng.normal(size=n_pre)
    theta0 = np.array([0.3, 0.8])
    rule = canonical_rule("bcm", {"tau_theta": 4.0})
    params = rule.init(jax.random.key(0))
    net = RateNetwork(n_pre=n_pre, n_post=n_post, activation="tanh")
    state = net.init_state(W, theta0)
    new, local = net.step(rule, params, state, {"x": jnp.asarray(x, jnp.float32)})
    y = np.tanh(W @ x)
    theta = theta0 + (y**2 - theta0) / 4.0
    np.testing.assert_allclose(np.asarray(local["y"][:, 0]), y, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(local["theta"][:, 0]), theta, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(new["x_mean"]), x / 50.0, rtol=1e-5)  # tau_mean = 50 steps
    np.testing.assert_allclose(np.asarray(new["y_mean"]), y / 50.0, rtol=1e-5)
    dw = 0.01 * x[None, :] * y[:, None] * (y[:, None] - theta[:, None])
    np.testing.assert_allclose(np.asarray(new["W"]), W + dw, rtol=1e-5, atol=1e-7)


def test_rate_weight_bounds():
    rule = canonical_rule("hebb_decay", {"eta": 10.0, "lam": 0.0})
    net = RateNetwork(n_pre=2, n_post=1, w_min=-0.5, w_max=0.5)
    new, _ = net.step(rule, rule.init(jax.random.key(0)), net.init_state(jnp.array([[0.1, -0.1]])),
                      {"x": jnp.array([1.0, -1.0])})
    # y = 0.2: dw = 10 * x * y = [2, -2] -> clipped
    np.testing.assert_allclose(np.asarray(new["W"]), [[0.5, -0.5]])


# ----------------------------------------------------------------------------- LIF network


ENGINES = ("auto", "event")  # the LIF tests run on both engines (auto: dense at these sizes)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("dt,tau_syn", [(1.0, 5.0), (0.5, 20.0)])
def test_lif_membrane_response_to_one_input_spike(dt, tau_syn, engine):
    """tau_m dv/dt = v_rest - v + I, tau_syn dI/dt = -I, I(0+) = w_scale*w: a difference of
    exponentials (an alpha function when tau_syn = tau_m)."""
    tau_m, v_rest, w, w_scale = 20.0, -70.0, 0.8, 10.0
    net = LIFNetwork(n_pre=1, n_post=1, dt=dt, tau_m=tau_m, tau_syn=tau_syn, w_scale=w_scale, post_mode="closed",
                     engine=engine)
    rule, params = quiet_rule("stdp_pair")
    T, t0 = 120, 4
    s = np.zeros((T, 1), np.float32)
    s[t0] = 1.0
    _, loc = jax.jit(lambda xs: scan_network(net, rule, params, jnp.full((1, 1), w), xs))({"s_pre": jnp.asarray(s)})
    v = np.asarray(loc["v_post"][:, 0, 0], np.float64)
    t = (np.arange(T) - t0) * dt  # the spike of step t0 reaches the membrane from step t0 + 1
    I0 = w_scale * w
    if tau_syn == tau_m:
        psp = I0 * t / tau_m * np.exp(-t / tau_m)
    else:
        psp = I0 * tau_syn / (tau_syn - tau_m) * (np.exp(-t / tau_syn) - np.exp(-t / tau_m))
    ref = np.where(t > 0, v_rest + psp, v_rest)
    assert np.max(np.abs(v - ref)) < 1e-4
    assert v.max() > v_rest + 0.5  # a visible PSP, below threshold
    assert np.asarray(loc["s_post"]).sum() == 0


@pytest.mark.parametrize("engine", ENGINES)
def test_lif_fires_under_strong_drive_and_is_refractory(engine):
    t_ref, dt, v_reset = 3.0, 1.0, -60.0
    net = LIFNetwork(n_pre=5, n_post=1, dt=dt, t_ref=t_ref, v_reset=v_reset, w_scale=10.0, post_mode="closed",
                     engine=engine)
    rule, params = quiet_rule("stdp_pair")
    T = 60
    xs = {"s_pre": jnp.ones((T, 5))}
    final, loc = jax.jit(lambda xs: scan_network(net, rule, params, jnp.ones((1, 5)), xs))(xs)
    s = np.asarray(loc["s_post"][:, 0, 0])
    v = np.asarray(loc["v_post"][:, 0, 0])
    spikes = np.flatnonzero(s)
    assert len(spikes) >= 5
    assert spikes[0] >= 1  # input of step 0 arrives at step 1
    assert np.all(v[spikes] >= net.v_th)
    n_ref = round(t_ref / dt)
    for t in spikes:
        held = v[t + 1:t + n_ref]
        np.testing.assert_array_equal(held, v_reset)  # clamped at reset until t_ref has passed
        assert s[t + 1:t + n_ref].sum() == 0
    # with a drive this strong it fires as soon as the refractory period ends
    assert np.all(np.diff(spikes) == n_ref)  # Brian2: may fire again when t - t_spike >= t_ref
    # and without refractoriness it fires every step once driven
    net0 = dataclasses.replace(net, t_ref=0.0)
    _, loc0 = jax.jit(lambda xs: scan_network(net0, rule, params, jnp.ones((1, 5)), xs))(xs)
    s0 = np.asarray(loc0["s_post"][:, 0, 0])
    assert s0[spikes[0]:].sum() == T - spikes[0]


@pytest.mark.parametrize("engine", ENGINES)
def test_lif_traces_decay_exponentially_and_jump_by_one(engine):
    """dt = 0.5 ms and the triplet rule's four time constants (all different)."""
    dt, T, n_pre, n_post = 0.5, 60, 3, 2
    rng = np.random.default_rng(3)
    s_pre = (rng.random((T, n_pre)) < 0.15).astype(np.float32)
    s_post = (rng.random((T, n_post)) < 0.15).astype(np.float32)
    net = LIFNetwork(n_pre=n_pre, n_post=n_post, dt=dt, post_mode="given", v0=-40.0,  # v0 above threshold
                     engine=engine)
    rule, params = quiet_rule("stdp_triplet")
    tau = {"tau_pre": 16.8, "tau_post": 33.7, "tau_pre_slow": 101.0, "tau_post_slow": 114.0}
    _, loc = jax.jit(lambda xs: scan_network(net, rule, params, jnp.full((n_post, n_pre), 0.5), xs))(
        {"s_pre": jnp.asarray(s_pre), "s_post": jnp.asarray(s_post)})
    # "given" post mode: the postsynaptic spikes are exactly the given ones (not the membrane's)
    np.testing.assert_array_equal(np.asarray(loc["s_post"][:, :, 0]), s_post)
    np.testing.assert_array_equal(np.asarray(loc["s_pre"][:, 0, :]), s_pre)
    d = {k: np.exp(-dt / v) for k, v in tau.items()}
    ref = {k: [] for k in tau}
    tp, tq, tps, tqs = np.zeros(n_pre), np.zeros(n_post), np.zeros(n_pre), np.zeros(n_post)
    for t in range(T):
        tp = tp * d["tau_pre"] + s_pre[t]  # read after this step's pre spike
        tq = tq * d["tau_post"]  # read before this step's post spike
        tps, tqs = tps * d["tau_pre_slow"], tqs * d["tau_post_slow"]  # read before their own spike
        ref["tau_pre"].append(tp.copy())
        ref["tau_post"].append(tq.copy())
        ref["tau_pre_slow"].append(tps.copy())
        ref["tau_post_slow"].append(tqs.copy())
        tq, tps, tqs = tq + s_post[t], tps + s_pre[t], tqs + s_post[t]
    got = {"tau_pre": loc["tr_pre"][:, 0, :], "tau_post": loc["tr_post"][:, :, 0],
           "tau_pre_slow": loc["tr_pre_slow"][:, 0, :], "tau_post_slow": loc["tr_post_slow"][:, :, 0]}
    for k in tau:
        np.testing.assert_allclose(np.asarray(got[k]), np.asarray(ref[k]), rtol=1e-5, atol=1e-6, err_msg=k)


@pytest.mark.parametrize("engine", ENGINES)
def test_lif_given_mode_ignores_the_membrane(engine):
    net = LIFNetwork(n_pre=1, n_post=1, post_mode="given", v0=-40.0, engine=engine)  # v0 above threshold
    rule, params = quiet_rule("stdp_pair")
    xs = {"s_pre": jnp.zeros((5, 1)), "s_post": jnp.zeros((5, 1))}
    _, loc = scan_network(net, rule, params, jnp.full((1, 1), 0.5), xs)
    assert float(np.asarray(loc["s_post"]).sum()) == 0.0
    closed = dataclasses.replace(net, post_mode="closed")
    _, loc = scan_network(closed, rule, params, jnp.full((1, 1), 0.5), xs)
    assert float(np.asarray(loc["s_post"]).sum()) >= 1.0


@pytest.mark.parametrize("engine", ENGINES)
def test_pair_stdp_window_in_the_network(engine):
    """Pre 5 steps before post: +A_plus exp(-5/20); post 5 before pre: -A_minus exp(-5/20);
    pre and post in the same step: +A_plus (DESIGN.md: the presynaptic pathway runs first)."""
    rule = canonical_rule("stdp_pair")
    params = rule.init(jax.random.key(0))
    A_plus, A_minus = 0.01, 0.0105
    net = LIFNetwork(n_pre=1, n_post=1, post_mode="given", engine=engine)
    T = 30

    def dW(pre_t, post_t):
        s_pre, s_post = np.zeros((T, 1), np.float32), np.zeros((T, 1), np.float32)
        s_pre[pre_t], s_post[post_t] = 1.0, 1.0
        final, _ = scan_network(net, rule, params, jnp.full((1, 1), 0.5),
                                {"s_pre": jnp.asarray(s_pre), "s_post": jnp.asarray(s_post)})
        return float(final["W"][0, 0]) - 0.5

    assert dW(5, 10) == pytest.approx(A_plus * np.exp(-5 / 20), rel=1e-4)
    assert dW(10, 5) == pytest.approx(-A_minus * np.exp(-5 / 20), rel=1e-4)
    assert dW(7, 7) == pytest.approx(A_plus, rel=1e-4)


# ----------------------------------------------------------------------------- task gradients


def _random_poly(inputs, degree, seed, scale, output_scale):
    rule = PolynomialRule(inputs=inputs, degree=degree, output_scale=output_scale)
    params = rule.init(jax.random.key(0))
    coef = scale * jax.random.normal(jax.random.key(seed), params["core"]["coef"].shape)
    return rule, {**params, "core": {"coef": coef}}


def _fd_check(task, rule, params, episodes, h, rtol=1e-2):
    """The gradient w.r.t. every coefficient vs a central difference; returns (value, grad)."""
    def loss(p):
        return jnp.mean(jax.vmap(lambda e: task.episode_loss(rule, p, e)[0])(episodes))

    vg = jax.jit(jax.value_and_grad(loss))
    value, grad = vg(params)
    coef = np.asarray(params["core"]["coef"], np.float64)
    fd = np.zeros_like(coef)
    for i in range(len(coef)):
        def at(c):
            p = {**params, "core": {"coef": jnp.asarray(c, jnp.float32)}}
            return float(vg(p)[0])
        e = np.zeros_like(coef)
        e[i] = h
        fd[i] = (at(coef + e) - at(coef - e)) / (2 * h)
    g = np.asarray(grad["core"]["coef"], np.float64)
    assert np.all(np.isfinite(g))
    assert np.linalg.norm(g) > 1e-3, "degenerate test: the loss does not depend on the rule"
    assert np.linalg.norm(g - fd) / np.linalg.norm(fd) < rtol, (g, fd)
    return value, grad, loss


@pytest.fixture(scope="module")
def oja_case():
    task = make_oja_pca(n_inputs=3, steps=30)
    rule, params = _random_poly(("x", "y", "w"), 2, seed=1, scale=0.5, output_scale=0.05)
    episodes = task.sample(jax.random.key(3), 2)
    return task, rule, params, episodes


@pytest.fixture(scope="module")
def lif_case():
    net = LIFNetwork(n_pre=3, n_post=2, post_mode="given")
    teacher = canonical_rule("stdp_pair")
    task = Imitate.make(net, steps=30, teacher=teacher, pre_rate_range=(100.0, 200.0),
                   post_rate_range=(100.0, 200.0))
    rule, params = _random_poly(("s_pre", "s_post", "tr_pre", "tr_post", "w"), 2, seed=2, scale=0.05,
                                output_scale=0.01)
    episodes = task.sample(jax.random.key(4), 2)
    assert float(episodes["s_pre"].sum()) > 5 and float(episodes["s_post"].sum()) > 5
    return task, rule, params, episodes


@pytest.mark.parametrize("case", ["oja_case", "lif_case"])
def test_task_gradient_matches_finite_differences_and_checkpointing(case, request):
    task, rule, params, episodes = request.getfixturevalue(case)
    value, grad, _ = _fd_check(task, rule, params, episodes, h=1e-2)
    assert np.isfinite(float(value))
    # rematerialized unroll (three checkpointed segments of 10 steps): same loss, same gradient
    def loss_ck(p):
        return jnp.mean(jax.vmap(lambda e: task.episode_loss(rule, p, e, chunk=10)[0])(episodes))

    value_ck, grad_ck = jax.jit(jax.value_and_grad(loss_ck))(params)
    assert float(value_ck) == pytest.approx(float(value), rel=1e-6)
    np.testing.assert_allclose(np.asarray(grad_ck["core"]["coef"]), np.asarray(grad["core"]["coef"]),
                               rtol=1e-5, atol=1e-7)


def test_imitating_the_teacher_itself_has_zero_loss(lif_case):
    task, _, _, episodes = lif_case
    teacher = task.teacher
    loss = jax.vmap(lambda e: task.episode_loss(teacher, teacher.init(jax.random.key(0)), e)[0])(episodes)
    np.testing.assert_allclose(np.asarray(loss), 0.0, atol=1e-10)
    # and a rule that does nothing scores 0 (R^2 of the teacher's weight changes)
    rule, params = _random_poly(("s_pre", "w"), 1, seed=0, scale=0.0, output_scale=0.01)
    score = jax.vmap(lambda e: task.episode_score(rule, params, e))(episodes)
    np.testing.assert_allclose(np.asarray(score), 0.0, atol=1e-6)
