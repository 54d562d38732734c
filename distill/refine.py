r"""Refit an equation's coefficients on the task itself, in the simulator.

Sparse regression picks the *terms* of an equation from the neural rule's ``dw``; its
coefficients, though, inherit every systematic error of the neural rule (an MLP that
saturates where ``|y|`` is large shrinks the coefficients of ``x*y`` and ``y**2*w``
alike, and still fits the weight trajectories well: the classic "good fit, wrong
coefficients" failure). So, with the term set fixed, the coefficients are meta-trained
again on the task's own objective, through the same simulator, on a fixed pool of
training episodes (a deterministic objective in a handful of parameters, which converges
reliably, unlike the MLP's).

Each coefficient is parameterized as ``c_k = s_k u_k`` with ``s_k`` the regression value
and ``u_k`` learned from 1, so one learning rate suits coefficients of any size. The
uncertainty of the refitted coefficients is the M-estimator sandwich over training
episodes (Huber 1967; e.g. Stefanski & Boos 2002, Am. Stat. 56:29, Eq. 2),

.. math:: \widehat{\mathrm{Var}}(\hat u) = \frac{1}{n} H^{-1} \hat\Sigma_g H^{-1},

with ``H`` the Hessian of the mean episode loss and :math:`\hat\Sigma_g` the covariance of
the per-episode gradients at the optimum.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import sympy

from discover.rules import SymbolicRule

from .simplify import terms


def refine(task, expr: sympy.Expr, timescales: dict, *, steps: int = 300, learning_rate: float = 0.02,
           episodes: int = 16, seed: int = 0, level: float = 0.95):
    """Meta-train the coefficients of ``expr`` (term set fixed) on ``task``.

    Args:
      task: the run's task (its ``loss`` is the objective).
      expr: an equation that is a sum of coefficient * term.
      timescales: trace time constants the equation's traces use.
      steps: Adam steps on the full pool.
      learning_rate: step size on the relative coefficients ``u``.
      episodes: size of the fixed pool of training episodes.
      seed: PRNG seed of the pool.
      level: confidence level of the reported intervals.

    Returns:
      ``(refined_expr, {str(term): (value, ci_low, ci_high)}, final_loss)``, or ``None``
      when the refit diverged (the regression coefficients are then kept).
    """
    parts = terms(expr)
    if not parts:
        return None
    basis = list(parts)
    scale = np.array([parts[b] for b in basis], np.float64)
    us = [sympy.Symbol(f"u{k}", real=True) for k in range(len(basis))]
    template = sympy.Add(*[sympy.Float(s) * u * b for s, u, b in zip(scale, us, basis)])
    rule = SymbolicRule.from_expr(template, {u.name: 1.0 for u in us}, timescales=timescales, label="refine")
    params = rule.init(jax.random.key(0))
    pool = task.sample(jax.random.key(50_000 + seed), episodes)

    def per_episode(core):
        p = {**params, "core": core}
        return jax.vmap(lambda e: task.loss(rule, p, e))(pool)

    def mean_loss(core):
        return jnp.mean(per_episode(core))

    opt = optax.chain(optax.clip_by_global_norm(1.0),
                      optax.adam(optax.cosine_decay_schedule(learning_rate, steps, 0.05)))

    @jax.jit
    def step(core, state):
        loss, g = jax.value_and_grad(mean_loss)(core)
        upd, state = opt.update(g, state, core)
        return optax.apply_updates(core, upd), state, loss

    core = params["core"]
    state = opt.init(core)
    start = float(mean_loss(core))
    for _ in range(steps):
        new, state, loss = step(core, state)
        if not np.isfinite(float(loss)):
            return None
        core = new
    final = float(mean_loss(core))
    if not np.isfinite(final) or final > start:
        return None
    u = np.array([float(core[x.name]) for x in us])
    se = _sandwich_se(per_episode, mean_loss, core, [x.name for x in us])
    z = float(jax.scipy.stats.norm.ppf(0.5 + level / 2))
    value = scale * u
    half = np.abs(scale) * z * se
    refined = sympy.Add(*[sympy.Float(v) * b for v, b in zip(value, basis)])
    cis = {str(b): (float(v), float(v - h), float(v + h)) for b, v, h in zip(basis, value, half)}
    return refined, cis, final


def _sandwich_se(per_episode, mean_loss, core, names):
    def flat(fn):
        return lambda vec: fn({n: vec[i] for i, n in enumerate(names)})

    vec = jnp.asarray([core[n] for n in names])
    H = np.asarray(jax.hessian(flat(mean_loss))(vec), np.float64)
    G = np.asarray(jax.jacobian(flat(per_episode))(vec), np.float64)  # [episodes, params]
    n = G.shape[0]
    Sg = np.cov(G, rowvar=False, bias=False).reshape(len(names), len(names))
    try:
        Hinv = np.linalg.pinv(H)
    except np.linalg.LinAlgError:
        return np.full(len(names), np.nan)
    V = Hinv @ Sg @ Hinv / n
    return np.sqrt(np.clip(np.diag(V), 0.0, None))
