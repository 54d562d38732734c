"""Meta-training: the loop every meta-optimizer shares (:mod:`discover.optimizers`).

One jitted ``train_step`` samples a meta-batch of episodes (the key is ``fold_in(seed,
step)``, so a resumed run draws exactly the episodes an uninterrupted one would) and
hands it to the meta-optimizer's ``step``: a gradient step through the whole unroll
(``[meta] optimizer = "adam" | "sgd"``) or one generation of an evolution strategy
(``"cma_es" | "open_es"``), or a user's own (by import path). A fixed set of held-out
validation episodes is scored every ``eval_every`` steps; the parameters with the best
validation loss are the result.

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
import pandas as pd
from tqdm.auto import tqdm

from .config import MetaConfig
from .io import load_pytree, save_pytree, write_csv, write_json
from .optimizers import batch_loss
from .registry import META_OPTIMIZERS
from .sharding import batch_sharding, place
from .tasks.base import Task

CHECK_EPISODES = 128  # episodes a task's check_episodes sees before meta-training
HISTORY_COLUMNS = ["step", "meta_loss", "val_loss", "val_diverged", "wall_s"]


class MetaTrainingError(RuntimeError):
    """Meta-training cannot go on (e.g. a NaN); the message says what to change."""


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
    opt = META_OPTIMIZERS.get(meta.optimizer)(meta, task, rule)
    opt_state = opt.init(k_train, params)
    # DESIGN §4: ES members or gradient episodes are laid out over all devices
    val_episodes = place(task.sample(k_val, meta.val_episodes),
                         batch_sharding(meta.val_episodes, "[meta] val_episodes"))
    # raises where the episodes cannot train a rule (a runaway teacher); on episodes of its
    # own, enough of them that a teacher diverging in 1 % of episodes is not refused by chance
    note = None
    if type(task).check_episodes is not Task.check_episodes:  # only tasks that look (sampling costs)
        note = task.check_episodes(task.sample(jax.random.fold_in(k_val, 1), max(CHECK_EPISODES, meta.val_episodes)))
    if note:
        print(note, file=sys.stderr)
    if progress and opt.sharding is not None:
        print(f"meta-training: the {opt.what} is sharded over {jax.device_count()} devices", file=sys.stderr)

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
        return opt.step(params, opt_state, draw(step), step)

    val_fn = jax.jit(batch_loss(task, rule, stats=True))

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
        write_csv(run_dir / "meta_history.csv", pd.DataFrame(rows, columns=HISTORY_COLUMNS))
        last_saved = step

    def saved_where():
        if ck is None:
            return "Nothing was saved (no run directory)"
        if last_saved is None:
            return f"No checkpoint was written yet (one is written every {meta.save_every} steps)"
        return f"The last good checkpoint (step {last_saved}) is in {ck}"

    t0 = time.perf_counter() - (rows[-1]["wall_s"] if rows else 0.0)
    bar = tqdm(range(start, meta.steps), desc="meta-training", disable=not progress, file=sys.stderr, mininterval=2.0,
               initial=start, total=meta.steps, dynamic_ncols=True)
    for step in bar:
        new_params, new_opt_state, loss, gnorm = train_step(params, opt_state, step)
        loss, gnorm = float(loss), float(gnorm)
        if not (math.isfinite(loss) and math.isfinite(gnorm)):
            where = saved_where()
            knob = f"[meta] {opt.knob} (now {getattr(meta, opt.knob)})"
            norm = opt.norm_name
            raise MetaTrainingError(
                f"meta-loss or its gradient became {'NaN' if not math.isfinite(loss) else 'infinite'} at "
                f"meta-step {step} (loss={loss}, {norm} norm={gnorm}) although the student's weights stayed "
                f"within [task] max_weight in the forward pass: the student rule itself overflowed (e.g. a "
                f"large power or exp of its inputs). {where}. Lower {knob} or [rule] "
                "output_scale, or bound the weights with [network] w_min / w_max, then rerun the same "
                "command (it resumes from the checkpoint if the config is unchanged; use a new --out otherwise)."
            )
        params, opt_state = new_params, new_opt_state
        row = {"step": step + 1, "meta_loss": loss, "val_loss": float("nan"), "val_diverged": 0,
               "wall_s": round(time.perf_counter() - t0, 3)}
        if (step + 1) % meta.eval_every == 0 or step + 1 == meta.steps:
            val, n_div, n_valid = val_fn(params, val_episodes)
            val, n_div, n_valid = float(val), int(n_div), int(n_valid)
            row["val_loss"], row["val_diverged"] = val, n_div
            if n_valid and n_div == n_valid:
                raise MetaTrainingError(
                    f"the student's weights diverged (left +-{task.w_limit:g}, [task] max_weight) in all "
                    f"{n_valid} validation episodes at meta-step {step + 1}, so no gradient is left to learn "
                    f"from. {saved_where()}. Lower [meta] {opt.knob} (now {getattr(meta, opt.knob)}) or [rule] "
                    "output_scale (a smaller starting rule), or bound the weights with [network] w_min / w_max, "
                    "then rerun the same command (it resumes from the checkpoint if the config is unchanged; use "
                    "a new --out otherwise).")
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
    history = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
    return best_params, history


def config_digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


__all__ = ["meta_train", "MetaTrainingError", "config_digest"]
