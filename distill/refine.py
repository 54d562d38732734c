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


class Objective:
    """The refit objective of one family of equations, compiled once: the task's mean and
    per-episode loss of ``sum_k scale_k u_k b_k`` over a fixed basis ``b`` (the union of the
    terms of a whole front), with ``scale`` an argument, zero for the terms an equation
    lacks. Every equation of a front then refits through the same compiled programs; one
    jitted objective per equation spent most of a distill stage compiling (a front of 10
    equations, ~60 compilations each)."""

    def __init__(self, task, basis, timescales: dict, *, episodes: int, seed: int, traces: str, refit,
                 chunk: int | None = None):
        from discover.rules.base import timescales_read

        self.basis = list(basis)
        self.cs = [sympy.Symbol(f"c{k}", real=True) for k in range(len(self.basis))]
        self.names = [c.name for c in self.cs]
        read = timescales_read({v.name for b in self.basis for v in b.free_symbols}, timescales)
        self.refit = tuple(k for k in refit if k in read)
        self.rule = SymbolicRule.from_expr(sympy.Add(*[c * b for c, b in zip(self.cs, self.basis)]),
                                           {n: 0.0 for n in self.names}, timescales=timescales, label="refine",
                                           traces=traces, learn_timescales=self.refit or False)
        self.params = self.rule.init(jax.random.key(0))
        pool = task.keep_valid(task.training_sample(jax.random.key(50_000 + seed), episodes))
        self.keys = self.names + [f"log_{k}" for k in self.refit]

        def per_episode(core, scale):
            p = {"core": {n: scale[i] * core[n] for i, n in enumerate(self.names)},
                 "log_tau": {**self.params["log_tau"], **{k: core[f"log_{k}"] for k in self.refit}}}
            return jax.vmap(lambda e: task.episode_loss(self.rule, p, e, chunk=chunk)[0])(pool)

        def mean_loss(core, scale):
            return jnp.mean(per_episode(core, scale))

        def flat(fn):
            return lambda vec, scale: fn(dict(zip(self.keys, vec)), scale)

        self.per_episode, self.mean_loss = jax.jit(per_episode), jax.jit(mean_loss)
        self.hessian = jax.jit(jax.hessian(flat(mean_loss)))
        self.jacobian = jax.jit(jax.jacobian(flat(per_episode)))
        self._adam = {}

    def start(self):
        return {**{n: jnp.float32(1.0) for n in self.names},
                **{f"log_{k}": self.params["log_tau"][k] for k in self.refit}}

    def adam_step(self, steps: int, learning_rate: float):
        """One jitted Adam step (cosine schedule over ``steps``), shared by the equations."""
        if (steps, learning_rate) not in self._adam:
            opt = optax.chain(optax.clip_by_global_norm(1.0),
                              optax.adam(optax.cosine_decay_schedule(learning_rate, steps, 0.05)))

            @jax.jit
            def step(core, state, scale):
                loss, g = jax.value_and_grad(self.mean_loss)(core, scale)
                upd, state = opt.update(g, state, core)
                return optax.apply_updates(core, upd), state, loss

            self._adam[steps, learning_rate] = (opt, step)
        return self._adam[steps, learning_rate]


def refine(task, expr: sympy.Expr, timescales: dict, *, steps: int = 300, learning_rate: float = 0.02,
           episodes: int = 16, seed: int = 0, level: float = 0.95, optimizer: str = "adam",
           sigma: float = 0.1, population: int = 16, span: float = 0.5, traces: str = "all_to_all",
           refit_timescales=(), objective: Objective | None = None, chunk: int | None = None):
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
      objective: an :class:`Objective` whose basis holds every term of ``expr``, built with
        the same task, timescales, episodes, seed, traces and refit_timescales (Adam only:
        :func:`distill.stage.refine_front` shares one over a front); ``None``: its own.
      chunk: steps per ``jax.checkpoint`` segment of the rollouts it differentiates
        (:func:`discover.rollout.rollout`; the run's ``[meta] checkpoint_every``): the same
        values and gradients, less memory, and for ``1`` often faster.

    Returns:
      ``(refined_expr, {str(term): (value, ci_low, ci_high)}, final_loss, timescales)``
      (``timescales``: the equation's, refitted where asked), or ``None`` when the refit
      diverged (the regression coefficients are then kept).
    """
    if optimizer not in REFINE_OPTIMIZERS:
        raise ValueError(f"unknown refit optimizer {optimizer!r}; choose one of {', '.join(REFINE_OPTIMIZERS)}")
    parts = terms(expr)
    if not parts:
        return None
    evolve = optimizer == "cma_es"
    from discover.rules.base import timescales_read

    read = timescales_read({v.name for v in expr.free_symbols}, timescales)
    if objective is None or evolve:  # CMA-ES searches the equation's own dimensions only
        objective = Objective(task, list(parts), timescales, episodes=episodes, seed=seed, traces=traces,
                              refit=refit_timescales, chunk=chunk)
    missing = [t for t in parts if t not in objective.basis]
    if missing:
        raise ValueError(f"the refit objective's basis lacks the terms {missing} of {expr}")
    scale_all = jnp.asarray([parts.get(b, 0.0) for b in objective.basis], jnp.float32)
    used = [objective.basis.index(t) for t in parts]
    own = [objective.names[i] for i in used]
    own_refit = tuple(k for k in objective.refit if k in read)
    if evolve:
        def mean_loss(core):
            return objective.mean_loss(core, scale_all)

        core = _evolve(mean_loss, objective.start(), steps, sigma, population, seed)
    else:
        core = _descend(objective, scale_all, steps, learning_rate)
    if core is None:
        return None
    final = float(objective.mean_loss(core, scale_all))
    scale = np.array([float(parts[t]) for t in parts], np.float64)
    u = np.array([float(core[n]) for n in own])
    value = scale * u
    if evolve:
        ulo, uhi = _indistinguishable(lambda c: objective.per_episode(c, scale_all), core, own, level, span)
    else:
        z = float(jax.scipy.stats.norm.ppf(0.5 + level / 2))
        keys = own + [f"log_{k}" for k in own_refit]
        se = _sandwich_se(objective, scale_all, core, keys)[:len(own)]
        ulo, uhi = u - z * se, u + z * se
    a, b = scale * ulo, scale * uhi
    basis = list(parts)
    refined = sympy.Add(*[sympy.Float(v) * t for v, t in zip(value, basis)])
    cis = {str(t): (float(v), float(min(x, y)), float(max(x, y))) for t, v, x, y in zip(basis, value, a, b)}
    taus = {k: float(v) for k, v in timescales.items() if k in read}
    taus.update({k: float(np.exp(float(core[f"log_{k}"]))) for k in own_refit})
    return refined, cis, final, taus


def _descend(objective, scale, steps, learning_rate):
    """Adam on the mean loss from ``u = 1``; ``None`` if it diverges or ends above its start."""
    opt, step = objective.adam_step(steps, learning_rate)
    core = objective.start()
    state = opt.init(core)
    start = float(objective.mean_loss(core, scale))
    for _ in range(steps):
        new, state, loss = step(core, state, scale)
        if not np.isfinite(float(loss)):
            return None
        core = new
    final = float(objective.mean_loss(core, scale))
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


def _sandwich_se(objective, scale, core, keys):
    """Sandwich standard errors of ``keys`` (the equation's own parameters): Hessian and
    per-episode gradients over the objective's whole vector, then the equation's block
    (a term the equation lacks has scale 0 and no gradient)."""
    vec = jnp.asarray([core[k] for k in objective.keys])
    idx = [objective.keys.index(k) for k in keys]
    H = np.asarray(objective.hessian(vec, scale), np.float64)[np.ix_(idx, idx)]
    G = np.asarray(objective.jacobian(vec, scale), np.float64)[:, idx]  # [episodes, params]
    return _sandwich(H, G)
