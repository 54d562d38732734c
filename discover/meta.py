"""Meta-training: backprop through unrolled episodes (optax), or evolution strategies (evosax).

One jitted ``train_step`` samples a meta-batch of episodes (the key is ``fold_in(seed,
step)``, so a resumed run draws exactly the episodes an uninterrupted one would), takes
the mean episode meta-loss, its gradient with respect to the rule's parameters through
the whole unroll (``jax.checkpoint`` segments bound the memory, see
:mod:`discover.unroll`), clips the global gradient norm and applies Adam. A fixed set of
held-out validation episodes is scored every ``eval_every`` steps; the parameters with
the best validation loss are the result.

With ``optimizer = "cma_es" | "open_es"`` a step is one generation of an evolution
strategy instead (:func:`make_es`): ``population`` members, each scored on the same
meta-batch by forward simulation only, no gradient. It needs no surrogate gradient and
no truncation, and it is not misled by the rough, chaotic landscape of closed spiking
loops (a small change in a weight moves spike times, which moves the next weight
changes); the mean of the search distribution is the current rule. Time constants are
searched only where the rule reads their traces.

The state is checkpointed atomically every ``save_every`` steps; rerunning the same
command resumes from it. A non-finite meta-loss or gradient stops training with
:class:`MetaTrainingError`, which says at which step, where the last good checkpoint is,
and what to change; nothing already written is lost.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import optax
import pandas as pd
from tqdm.auto import tqdm

from .config import MetaConfig
from .io import load_pytree, save_pytree, write_csv, write_json
from .sharding import batch_sharding, constrain, place


class MetaTrainingError(RuntimeError):
    """Meta-training cannot go on (e.g. a NaN); the message says what to change."""


def make_optimizer(meta: MetaConfig) -> optax.GradientTransformation:
    """Adam or SGD with global-norm clipping; ``tau_learning_rate`` gives the log time
    constants their own rate (same schedule shape)."""
    def schedule(peak):
        if meta.lr_schedule != "cosine":
            return peak
        return optax.warmup_cosine_decay_schedule(0.0, peak, min(100, meta.steps // 10 + 1), meta.steps,
                                                  end_value=peak * 0.02)

    def base(peak):
        return optax.adam(schedule(peak)) if meta.optimizer == "adam" else optax.sgd(schedule(peak))

    if not meta.tau_learning_rate or meta.tau_learning_rate == meta.learning_rate:
        inner = base(meta.learning_rate)
    else:
        inner = optax.multi_transform({"core": base(meta.learning_rate), "log_tau": base(meta.tau_learning_rate)},
                                      lambda params: {k: k for k in params})
    return optax.chain(optax.clip_by_global_norm(meta.grad_clip), inner)


ES_OPTIMIZERS = ("cma_es", "open_es")


def _searched(params, rule):
    """The part of ``params`` an evolution strategy searches: the core, plus, when the rule
    learns them, the log time constants of the traces it reads; :func:`_merge` puts a
    member back together (the other time constants keep their values)."""
    out = {"core": params["core"]}
    if rule.learn_timescales and rule.used_timescales:
        out["log_tau"] = {k: params["log_tau"][k] for k in rule.used_timescales}
    return out


def _merge(params, searched):
    out = {**params, "core": searched["core"]}
    if "log_tau" in searched:
        out["log_tau"] = {**params["log_tau"], **searched["log_tau"]}
    return out


def make_es(meta: MetaConfig, solution):
    """An evosax strategy and its parameters for ``[meta] optimizer = "cma_es" | "open_es"``.

    - ``cma_es``: CMA-ES (Hansen 2016, "The CMA Evolution Strategy: A Tutorial", arXiv:1604.00772;
      evosax's ``CMA_ES``), initial step size ``es_sigma`` in parameter units. Its cost grows
      as the square of the number of parameters: for polynomial and symbolic rules and
      small MLPs.
    - ``open_es``: OpenAI-ES (Salimans et al. 2017, arXiv:1703.03864; antithetic sampling,
      centered ranks) with Adam at ``learning_rate`` and a fixed ``es_sigma``: for large MLPs.
    """
    from evosax.algorithms import CMA_ES, Open_ES

    if meta.optimizer == "cma_es":
        es = CMA_ES(population_size=meta.population, solution=solution)
        # a floor on the step size: on a deterministic objective (a fixed episode pool) CMA-ES
        # otherwise shrinks it to 0 and its covariance update turns NaN
        return es, es.default_params.replace(std_init=meta.es_sigma, std_min=meta.es_sigma * 1e-3)
    es = Open_ES(population_size=meta.population, solution=solution, optimizer=optax.adam(meta.learning_rate),
                 std_schedule=optax.constant_schedule(meta.es_sigma))
    return es, es.default_params


def batch_loss(task, rule, dw_penalty: float = 0.0, dw_scale: float = 1.0):
    """Mean meta-loss over a batch, plus ``dw_penalty * mean(dw**2) / dw_scale**2``.

    The penalty is a parsimony prior: rule components that do not help the objective
    (e.g. zero-mean terms that only add noise to the weights) cost energy and are driven
    out, which makes the learned rule identifiable. It does not change which terms are
    needed, nor their ratios, only their overall scale.
    """
    def f(params, episodes):
        loss, energy = jax.vmap(lambda e: task.loss_and_energy(rule, params, e))(episodes)
        out = jnp.mean(loss)
        if dw_penalty:
            out = out + dw_penalty * jnp.mean(energy) / dw_scale**2
        return out
    return f


def meta_train(task, rule, meta: MetaConfig, run_dir: str | Path | None = None, *, config_hash: str = "",
               progress: bool = True, params0=None):
    """Meta-train ``rule`` on ``task``.

    Args:
      task: a :class:`~discover.tasks.base.Task`.
      rule: the learnable rule (MLP or polynomial, or a symbolic rule with free parameters).
      meta: optimizer settings.
      run_dir: where ``checkpoint/``, ``rule/params.npz`` and ``meta_history.csv`` go;
        ``None`` keeps everything in memory.
      config_hash: identifies the config; a checkpoint made with another config is not resumed.

    Returns:
      ``(best_params, history DataFrame)``.
    """
    key = jax.random.key(meta.seed)
    k_init, k_val, k_train = jax.random.split(key, 3)
    params = rule.init(k_init) if params0 is None else params0
    loss_fn = batch_loss(task, rule, meta.dw_penalty, getattr(rule, "output_scale", 1.0))
    evolve = meta.optimizer in ES_OPTIMIZERS
    if evolve:
        searched = _searched(params, rule)
        es, es_params = make_es(meta, searched)
        k_es = jax.random.fold_in(k_train, 10**9)
        opt_state = es.init(k_es, searched, es_params)
    else:
        opt = make_optimizer(meta)
        opt_state = opt.init(params)
    # DESIGN §4: ES members or gradient episodes are laid out over all devices
    split = batch_sharding(meta.population, "[meta] population") if evolve else \
        batch_sharding(meta.batch, "[meta] batch")
    val_episodes = place(task.sample(k_val, meta.val_episodes),
                         batch_sharding(meta.val_episodes, "[meta] val_episodes"))
    if progress and split is not None:
        what = f"population of {meta.population}" if evolve else f"meta-batch of {meta.batch} episodes"
        print(f"meta-training: the {what} is sharded over {jax.device_count()} devices", file=sys.stderr)

    pool = task.sample(k_train, meta.train_episodes) if meta.train_episodes else None

    def draw(step):
        if pool is None:  # fresh episodes every step
            return task.sample(jax.random.fold_in(k_train, step), meta.batch)
        if meta.batch >= meta.train_episodes:  # full batch: a deterministic objective
            return pool
        idx = jax.random.choice(jax.random.fold_in(k_train, step), meta.train_episodes, (meta.batch,), replace=False)
        return jax.tree_util.tree_map(lambda a: a[idx], pool)

    @jax.jit
    def train_step(params, opt_state, step):
        episodes = draw(step)
        if evolve:  # one generation; every member sees the same episodes (common random numbers)
            k = jax.random.fold_in(k_es, step)
            pop, opt_state = es.ask(k, opt_state, es_params)
            pop = constrain(pop, split)
            fit = jax.vmap(lambda member: loss_fn(_merge(params, member), episodes))(pop)
            ok = jnp.isfinite(fit)
            # members that blow up rank last instead of stopping the search
            opt_state, _ = es.tell(k, pop, jnp.where(ok, fit, jnp.finfo(fit.dtype).max), opt_state, es_params)
            new = _merge(params, es.get_mean(opt_state))
            loss = jnp.where(jnp.any(ok), jnp.sum(jnp.where(ok, fit, 0.0)) / jnp.maximum(jnp.sum(ok), 1), jnp.nan)
            return new, opt_state, loss, optax.tree.norm(new)
        loss, grads = jax.value_and_grad(loss_fn)(params, constrain(episodes, split))
        gnorm = optax.tree.norm(grads)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, gnorm

    val_fn = jax.jit(batch_loss(task, rule))

    run_dir = Path(run_dir) if run_dir is not None else None
    ck = run_dir / "checkpoint" if run_dir else None
    start, rows, best = 0, [], {"val": math.inf, "step": -1}
    last_saved = None
    best_params = params
    if ck is not None and (ck / "state.json").exists():
        st = json.loads((ck / "state.json").read_text())
        if st.get("config_hash") == config_hash:
            params = load_pytree(ck / "params.npz", params)
            opt_state = load_pytree(ck / "opt_state.npz", opt_state)
            best_params = load_pytree(ck / "best_params.npz", params)
            start, best = st["step"], st["best"]
            hist = run_dir / "meta_history.csv"
            rows = pd.read_csv(hist).to_dict("records") if hist.exists() else []
            last_saved = start
            print(f"resuming meta-training from step {start} ({ck})", file=sys.stderr)
        else:
            print(f"checkpoint in {ck} was made with another config; starting afresh", file=sys.stderr)

    def save(step):
        nonlocal last_saved
        if ck is None:
            return
        save_pytree(ck / "params.npz", params)
        save_pytree(ck / "opt_state.npz", opt_state)
        save_pytree(ck / "best_params.npz", best_params)
        write_json(ck / "state.json", {"step": step, "best": best, "config_hash": config_hash})
        write_csv(run_dir / "meta_history.csv", pd.DataFrame(rows, columns=["step", "meta_loss", "val_loss", "wall_s"]))
        last_saved = step

    t0 = time.perf_counter() - (rows[-1]["wall_s"] if rows else 0.0)
    bar = tqdm(range(start, meta.steps), desc="meta-training", disable=not progress, file=sys.stderr, mininterval=2.0,
               initial=start, total=meta.steps, dynamic_ncols=True)
    for step in bar:
        new_params, new_opt_state, loss, gnorm = train_step(params, opt_state, step)
        loss, gnorm = float(loss), float(gnorm)
        if not (math.isfinite(loss) and math.isfinite(gnorm)):
            if ck is None:
                where = "nothing was saved (no run directory)"
            elif last_saved is None:
                where = f"no checkpoint was written yet (one is written every {meta.save_every} steps)"
            else:
                where = f"the last good checkpoint (step {last_saved}) is in {ck}"
            knob = (f"[meta] es_sigma (now {meta.es_sigma})" if evolve
                    else f"[meta] learning_rate (now {meta.learning_rate})")
            norm = "parameter" if evolve else "grad"
            raise MetaTrainingError(
                f"meta-loss or its gradient became {'NaN' if not math.isfinite(loss) else 'infinite'} at "
                f"meta-step {step} (loss={loss}, {norm} norm={gnorm}): the plasticity rule made the weights "
                f"diverge. {where}. Lower {knob} or [rule] "
                "output_scale, or bound the weights with [network] w_min / w_max, then rerun the same "
                "command (it resumes from the checkpoint if the config is unchanged; use a new --out otherwise)."
            )
        params, opt_state = new_params, new_opt_state
        row = {"step": step + 1, "meta_loss": loss, "val_loss": float("nan"),
               "wall_s": round(time.perf_counter() - t0, 3)}
        if (step + 1) % meta.eval_every == 0 or step + 1 == meta.steps:
            val = float(val_fn(params, val_episodes))
            row["val_loss"] = val
            if math.isfinite(val) and val < best["val"]:
                best = {"val": val, "step": step + 1}
                best_params = params
            bar.set_postfix(loss=f"{loss:.4g}", val=f"{val:.4g}", best=f"{best['val']:.4g}")
        rows.append(row)
        if (step + 1) % meta.save_every == 0 or step + 1 == meta.steps:
            save(step + 1)
    bar.close()
    if best["step"] < 0:  # no validation ran (e.g. resumed at the end)
        best_params = params
    history = pd.DataFrame(rows, columns=["step", "meta_loss", "val_loss", "wall_s"])
    return best_params, history


def config_digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


__all__ = ["meta_train", "MetaTrainingError", "make_optimizer", "make_es", "ES_OPTIMIZERS", "batch_loss",
           "config_digest"]
