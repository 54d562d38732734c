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

Through a closed spiking loop the meta-gradient explodes or misleads (README, "What is known
not to work yet"), so ``optimizer="cma_es"`` refits by CMA-ES instead (forward simulations
only, the evosax strategy of ``[meta] optimizer = "cma_es"``), keeping the best mean seen.
There the loss is rough, or flat where nearby coefficients give the very same spikes, so a
curvature says nothing; the interval of each coefficient is instead the range of values the
pool's episodes cannot tell from the optimum (a paired test of per-episode losses along that
coefficient, the others held at the optimum: a conditional interval, narrower than a
profile would be).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import sympy

from discover.rules import SymbolicRule

from .simplify import terms

REFINE_OPTIMIZERS = ("adam", "cma_es")


def refine(task, expr: sympy.Expr, timescales: dict, *, steps: int = 300, learning_rate: float = 0.02,
           episodes: int = 16, seed: int = 0, level: float = 0.95, optimizer: str = "adam",
           sigma: float = 0.1, population: int = 16, span: float = 0.5, traces: str = "all_to_all",
           refit_timescales=()):
    """Meta-train the coefficients of ``expr`` (term set fixed) on ``task``.

    Args:
      task: the run's task (its ``loss`` is the objective).
      expr: an equation that is a sum of coefficient * term.
      timescales: trace time constants the equation's traces use.
      steps: Adam steps, or CMA-ES generations, on the full pool.
      learning_rate: step size on the relative coefficients ``u``.
      episodes: size of the fixed pool of training episodes.
      seed: PRNG seed of the pool.
      level: confidence level of the reported intervals.
      optimizer: ``"adam"`` (gradients through the simulator) or ``"cma_es"`` (``steps``
        generations of ``population`` members, initial step ``sigma`` in relative units).
      span: the CMA-ES intervals search up to this relative change of each coefficient.
      traces: the trace mode the equation runs with (the neural rule's).
      refit_timescales: time constants refitted with the coefficients (in log space), those
        of them the equation's traces use (``[distill] refine_timescales``: the ones the
        neural rule learned); the others keep ``timescales``.

    Returns:
      ``(refined_expr, {str(term): (value, ci_low, ci_high)}, final_loss, timescales)``
      (``timescales``: the equation's, refitted where asked), or ``None`` when the refit
      diverged (the regression coefficients are then kept).
    """
    parts = terms(expr)
    if not parts:
        return None
    basis = list(parts)
    scale = np.array([parts[b] for b in basis], np.float64)
    us = [sympy.Symbol(f"u{k}", real=True) for k in range(len(basis))]
    template = sympy.Add(*[sympy.Float(s) * u * b for s, u, b in zip(scale, us, basis)])
    from discover.rules.base import timescales_read

    read = timescales_read({v.name for v in expr.free_symbols}, timescales)
    refit = tuple(k for k in refit_timescales if k in read)
    rule = SymbolicRule.from_expr(template, {u.name: 1.0 for u in us}, timescales=timescales, label="refine",
                                  traces=traces, learn_timescales=refit or False)
    params = rule.init(jax.random.key(0))
    pool = task.keep_valid(task.training_sample(jax.random.key(50_000 + seed), episodes))
    start = {**params["core"], **{f"log_{k}": params["log_tau"][k] for k in refit}}

    def full(core):
        return {"core": {u.name: core[u.name] for u in us},
                "log_tau": {**params["log_tau"], **{k: core[f"log_{k}"] for k in refit}}}

    def per_episode(core):
        p = full(core)
        return jax.vmap(lambda e: task.episode_loss(rule, p, e)[0])(pool)

    def mean_loss(core):
        return jnp.mean(per_episode(core))

    if optimizer not in REFINE_OPTIMIZERS:
        raise ValueError(f"unknown refit optimizer {optimizer!r}; choose one of {', '.join(REFINE_OPTIMIZERS)}")
    names = [x.name for x in us]
    evolve = optimizer == "cma_es"
    core = (_evolve(mean_loss, start, steps, sigma, population, seed) if evolve
            else _descend(mean_loss, start, steps, learning_rate))
    if core is None:
        return None
    final = float(mean_loss(core))
    u = np.array([float(core[n]) for n in names])
    value = scale * u
    if evolve:
        ulo, uhi = _indistinguishable(per_episode, core, names, level, span)
    else:
        z = float(jax.scipy.stats.norm.ppf(0.5 + level / 2))
        se = _sandwich_se(per_episode, mean_loss, core, names + [f"log_{k}" for k in refit])[:len(names)]
        ulo, uhi = u - z * se, u + z * se
    a, b = scale * ulo, scale * uhi
    refined = sympy.Add(*[sympy.Float(v) * t for v, t in zip(value, basis)])
    cis = {str(t): (float(v), float(min(x, y)), float(max(x, y))) for t, v, x, y in zip(basis, value, a, b)}
    taus = {k: float(v) for k, v in timescales.items() if k in read}
    taus.update({k: float(np.exp(float(core[f"log_{k}"]))) for k in refit})
    return refined, cis, final, taus


def _descend(mean_loss, core, steps, learning_rate):
    """Adam on the mean loss; ``None`` if it diverges or ends above its start."""
    opt = optax.chain(optax.clip_by_global_norm(1.0),
                      optax.adam(optax.cosine_decay_schedule(learning_rate, steps, 0.05)))

    @jax.jit
    def step(core, state):
        loss, g = jax.value_and_grad(mean_loss)(core)
        upd, state = opt.update(g, state, core)
        return optax.apply_updates(core, upd), state, loss

    state = opt.init(core)
    start = float(mean_loss(core))
    for _ in range(steps):
        new, state, loss = step(core, state)
        if not np.isfinite(float(loss)):
            return None
        core = new
    final = float(mean_loss(core))
    return None if not np.isfinite(final) or final > start else core


def _evolve(mean_loss, core, steps, sigma, population, seed):
    """CMA-ES on the mean loss (forward only); the best mean of any generation, the start
    included, or ``None`` if even the start is not finite."""
    from discover.optimizers import make_es

    es, es_params = make_es("cma_es", core, population, sigma)
    key = jax.random.key(70_000 + seed)
    state = es.init(key, core, es_params)

    @jax.jit
    def generation(state, g):
        k = jax.random.fold_in(key, g)
        pop, state = es.ask(k, state, es_params)
        fit = jax.vmap(mean_loss)(pop)
        state, _ = es.tell(k, pop, jnp.where(jnp.isfinite(fit), fit, jnp.finfo(fit.dtype).max), state, es_params)
        mean = es.get_mean(state)
        return state, mean, mean_loss(mean)

    best, best_loss = core, float(mean_loss(core))
    if not np.isfinite(best_loss):
        return None
    for g in range(steps):
        state, mean, loss = generation(state, g)
        if np.isfinite(float(loss)) and float(loss) < best_loss:
            best, best_loss = mean, float(loss)
    return best


def _indistinguishable(per_episode, core, names, level, span=0.5, points=25):
    """For each coefficient (the others held at the optimum), the range of relative values
    ``u`` whose loss the episodes cannot tell from the optimum's at ``level``.

    On a grid of ``+-span`` around ``u*``, a value is excluded when its per-episode loss
    excess over ``u*`` has a mean above ``z`` standard errors; the interval runs outwards
    from ``u*`` to the last value not excluded (at most ``span``). Forward evaluations only,
    so it holds where the loss is rough (spike-time chaos) or flat (the same spikes within a
    range of coefficients), where a curvature-based interval is meaningless.
    """
    k = len(names)
    u0 = np.array([float(core[n]) for n in names])
    deltas = np.linspace(-span, span, 2 * points + 1)
    pts = u0[None, None, :] + deltas[None, :, None] * np.eye(k)[:, None, :]  # [k, grid, k]
    L = np.asarray(jax.vmap(lambda v: per_episode({**core, **{n: v[i] for i, n in enumerate(names)}}))(
        jnp.asarray(pts.reshape(-1, k), jnp.float32)), np.float64).reshape(k, len(deltas), -1)
    excess = L - L[:, points][:, None, :]
    n = excess.shape[-1]
    z = float(jax.scipy.stats.norm.ppf(0.5 + level / 2))
    mean = excess.mean(-1)
    se = excess.std(-1, ddof=1) / np.sqrt(n)
    out = ~(mean <= z * se) | ~np.isfinite(mean)  # NaN counts as excluded
    lo, hi = np.empty(k), np.empty(k)
    for i in range(k):
        right = np.flatnonzero(out[i, points:])
        left = np.flatnonzero(out[i, :points + 1][::-1])
        hi[i] = deltas[points + right[0] - 1] if len(right) else span
        lo[i] = deltas[points - left[0] + 1] if len(left) else -span
    return u0 + lo, u0 + hi


def _sandwich(H, G):
    n = G.shape[0]
    Sg = np.cov(G, rowvar=False, bias=False).reshape(H.shape)
    try:
        Hinv = np.linalg.pinv(H)
    except np.linalg.LinAlgError:
        return np.full(len(H), np.nan)
    V = Hinv @ Sg @ Hinv / n
    return np.sqrt(np.clip(np.diag(V), 0.0, None))


def _sandwich_se(per_episode, mean_loss, core, names):
    def flat(fn):
        return lambda vec: fn({**core, **{n: vec[i] for i, n in enumerate(names)}})

    vec = jnp.asarray([core[n] for n in names])
    H = np.asarray(jax.hessian(flat(mean_loss))(vec), np.float64)
    G = np.asarray(jax.jacobian(flat(per_episode))(vec), np.float64)  # [episodes, params]
    return _sandwich(H, G)
