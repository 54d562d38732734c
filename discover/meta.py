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
and what to change; nothing already written is lost. So does a validation in which the
student's weights leave ``[task] max_weight`` in every episode. With ``[meta] backoff = N``
(gradient optimizers) either goes back to the state of the last validation instead and
halves the step from there (each update scaled by 1/2 per back-off: the step of a learning
rate half as large, for SGD and Adam), up to N times; the back-offs are part of the
checkpoint, so a resumed run goes on exactly as an uninterrupted one.
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

from . import distributed
from .config import MetaConfig
from .io import damaged, load_pytree, read_csv, read_json, save_pytree, write_csv, write_json
from .optimizers import batch_loss
from .registry import META_OPTIMIZERS
from .sharding import batch_sharding, place
from .tasks.base import Task

CHECK_EPISODES = 128  # episodes a task's check_episodes sees before meta-training
HISTORY_COLUMNS = ["step", "meta_loss", "val_loss", "val_diverged", "wall_s"]


class MetaTrainingError(RuntimeError):
    """Meta-training cannot go on (e.g. a NaN); the message says what to change."""


def check_task(task, meta: MetaConfig) -> None:
    """Raise where the task's episodes cannot train a rule (a runaway teacher: the task's
    ``check_episodes``), printing its note otherwise; on episodes of its own, enough of
    them that a teacher diverging in 1 % of episodes is not refused by chance. Before any
    work or write (``discover.stage.run`` calls it first)."""
    if type(task).check_episodes is Task.check_episodes:  # only tasks that look (sampling costs)
        return
    k_val = jax.random.split(jax.random.key(meta.seed), 3)[1]
    note = task.check_episodes(task.sample(jax.random.fold_in(k_val, 1), max(CHECK_EPISODES, meta.val_episodes)))
    if note:
        print(note, file=sys.stderr)


def meta_train(task, rule, meta: MetaConfig, run_dir: str | Path | None = None, *, config_hash: str = "",
               progress: bool = True, params0=None, check: bool = True):
    """Meta-train ``rule`` on ``task``.

    Args:
      task: a :class:`~discover.tasks.base.Task`.
      rule: the learnable rule (MLP or polynomial, or a symbolic rule with free parameters).
      meta: optimizer settings.
      run_dir: where ``checkpoint/``, ``rule/params.npz`` and ``meta_history.csv`` go;
        ``None`` keeps everything in memory.
      config_hash: identifies the config; a checkpoint made with another config is not resumed.
      check: run :func:`check_task` first (``False`` when the caller already did).

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
    if check:
        check_task(task, meta)
    writer = distributed.is_writer()  # several processes: only process 0 writes (all read, to resume)
    if progress and opt.sharding is not None and writer:
        procs = f" of {jax.process_count()} processes" if distributed.started() else ""
        print(f"meta-training: the {opt.what} is sharded over {jax.device_count()} devices{procs}", file=sys.stderr)

    pool = task.training_sample(k_train, meta.train_episodes) if meta.train_episodes else None

    def draw(step):
        if pool is None:  # fresh episodes every step
            return task.training_sample(jax.random.fold_in(k_train, step), meta.batch)
        if meta.batch >= meta.train_episodes:  # full batch: a deterministic objective
            return pool
        idx = jax.random.choice(jax.random.fold_in(k_train, step), meta.train_episodes, (meta.batch,), replace=False)
        return jax.tree_util.tree_map(lambda a: a[idx], pool)

    @jax.jit
    def train_step(params, opt_state, step):
        return opt.step(params, opt_state, draw(step), step)

    @jax.jit
    def scaled_step(params, opt_state, step, scale):
        """A step of ``scale`` times the optimizer's (after a back-off): for SGD and Adam
        the step of a learning rate ``scale`` times as large."""
        new, state, loss, gnorm = opt.step(params, opt_state, draw(step), step)
        return jax.tree_util.tree_map(lambda a, b: a + scale * (b - a), params, new), state, loss, gnorm

    val_fn = jax.jit(batch_loss(task, rule, stats=True))

    run_dir = Path(run_dir) if run_dir is not None else None
    ck = Checkpoint(run_dir / "checkpoint") if run_dir else None
    start, rows, best = 0, [], {"val": math.inf, "step": -1}
    best_params = params
    # [meta] backoff (gradient optimizers): each back-off returns to the last validated state and
    # halves the step from there on; the list of back-offs is part of the checkpoint
    backoff = getattr(meta, "backoff", 0)
    backoffs = []

    def scale() -> float:
        return 0.5 ** len(backoffs)
    resumed = ck.load(config_hash, params, opt_state) if ck is not None else None
    if resumed is not None:
        start, best, rows, params, opt_state, best_params = resumed
        backoffs = list(ck.state.get("backoffs", []))
        if writer:
            print(f"resuming meta-training from step {start} ({ck.root})", file=sys.stderr)
    distributed.same_everywhere(start, "checkpoint step")
    pending = None  # a checkpoint written, not yet committed: its parameters are not yet evaluated

    def save(step):
        nonlocal pending
        if ck is None or not writer:
            return
        state = {"step": step, "best": best, "config_hash": config_hash}
        if backoffs:
            state.update(scale=scale(), backoffs=backoffs)
        ck.write(step, params, opt_state, best_params, state, pd.DataFrame(rows, columns=HISTORY_COLUMNS))
        pending = step

    def commit():
        """The pending checkpoint becomes the one a rerun resumes from: its parameters gave
        a finite meta-loss (the last good checkpoint is one whose parameters were evaluated)."""
        nonlocal pending
        if ck is not None and pending is not None:
            ck.commit(pending)
            write_csv(run_dir / "meta_history.csv", ck.history)
            pending = None

    def first_step(p) -> str:
        """", first at time step K of T": where the student's weights left the bound (the
        error path only: one more rollout of the validation episodes)."""
        try:
            at = jax.vmap(lambda e: task.simulate(rule, p, e).diverged_at)(val_episodes)
            at = [int(a) for a in jax.device_get(at) if int(a) >= 0]
        except Exception:  # a task whose rollout has no divergence record: the count says enough
            return ""
        return f", first at time step {min(at)} of {task.config.steps}" if at else ""

    def saved_where():
        if ck is None:
            return "Nothing was saved (no run directory)"
        if ck.committed is None:
            return f"No checkpoint was written yet (one is written every {meta.save_every} steps)"
        return f"The last good checkpoint (step {ck.committed}) is in {ck.root}"

    end = planned_end(meta, rows)  # a resumed run replays the extensions its history decided
    # the last validated state: its step, parameters, optimizer state, best validation loss and best
    # parameters (its history: the rows up to its step)
    good = (start, params, opt_state, best, best_params)

    def backed_off(what: str, at: int) -> bool:
        """Go back to the last validated state with half the step, if ``[meta] backoff``
        allows one more; its checkpoint is committed at once, so a rerun resumes exactly there."""
        nonlocal params, opt_state, rows, best, best_params, step, end, pending
        if len(backoffs) >= backoff:
            return False
        step, params, opt_state, best, best_params = good
        rows = [r for r in rows if r["step"] <= step]
        backoffs.append({"at": at, "back_to": step, "scale": 0.5 ** (len(backoffs) + 1)})
        end = planned_end(meta, rows)
        if writer:
            tqdm.write(f"meta-training: {what} at meta-step {at}; back to step {step} with the step halved "
                       f"([meta] {opt.knob} x {scale():g}), back-off {len(backoffs)} of [meta] backoff = {backoff}",
                       file=sys.stderr)  # on a line of its own, above the progress bar
        pending = None
        save(step)
        commit()
        bar.reset(total=end)
        bar.update(step)
        return True

    def backoff_hint() -> str:
        if backoff or not hasattr(meta, "backoff"):
            return ""
        return (" Or set [meta] backoff = 3: meta-training then goes back to its last validated parameters and "
                "halves the step by itself, up to three times.")

    def used() -> str:
        return (f" It already went back {len(backoffs)} time(s) and halved the step each time ([meta] backoff = "
                f"{backoff}; now {opt.knob} x {scale():g})." if backoffs else "")

    t0 = time.perf_counter() - (rows[-1]["wall_s"] if rows else 0.0)
    bar = tqdm(desc="meta-training", disable=not (progress and writer), file=sys.stderr, mininterval=2.0,
               initial=start, total=end, dynamic_ncols=True)
    step = start
    while step < end:
        if backoffs:
            new_params, new_opt_state, loss, gnorm = scaled_step(params, opt_state, step, scale())
        else:
            new_params, new_opt_state, loss, gnorm = train_step(params, opt_state, step)
        loss, gnorm = float(loss), float(gnorm)
        if not (math.isfinite(loss) and math.isfinite(gnorm)):
            if backed_off(f"the meta-loss became {'NaN' if not math.isfinite(loss) else 'infinite'}", step):
                continue
            where = saved_where()
            knob = f"[meta] {opt.knob} (now {getattr(meta, opt.knob)})"
            norm = opt.norm_name
            raise MetaTrainingError(
                f"meta-loss or its gradient became {'NaN' if not math.isfinite(loss) else 'infinite'} at "
                f"meta-step {step} (loss={loss}, {norm} norm={gnorm}) although the student's weights stayed "
                f"within [task] max_weight in the forward pass: the student rule itself overflowed (e.g. a "
                f"large power or exp of its inputs).{used()} {where}. Lower {knob} or [rule] "
                "output_scale, or bound the weights with [network] w_min / w_max, then rerun the same "
                "command (it resumes from the checkpoint if the config is unchanged; use a new --out otherwise)."
                + backoff_hint()
            )
        if pending == step:  # the parameters saved at this step gave a finite meta-loss
            commit()
        params, opt_state = new_params, new_opt_state
        row = {"step": step + 1, "meta_loss": loss, "val_loss": float("nan"), "val_diverged": 0,
               "wall_s": round(time.perf_counter() - t0, 3)}
        validated = False
        if (step + 1) % meta.eval_every == 0 or step + 1 == end:
            val, n_div, n_valid = val_fn(params, val_episodes)
            val, n_div, n_valid = float(val), int(n_div), int(n_valid)
            row["val_loss"], row["val_diverged"] = val, n_div
            if n_valid and n_div == n_valid:
                if backed_off(f"the student's weights diverged in all {n_valid} validation episodes", step + 1):
                    continue
                raise MetaTrainingError(
                    f"the student's weights diverged (left +-{task.w_limit:g}, [task] max_weight) in all "
                    f"{n_valid} validation episodes at meta-step {step + 1}{first_step(params)}, so no gradient "
                    f"is left to learn from.{used()} {saved_where()}. Lower [meta] {opt.knob} (now "
                    f"{getattr(meta, opt.knob)}) or [rule] "
                    "output_scale (a smaller starting rule), or bound the weights with [network] w_min / w_max, "
                    "then rerun the same command (it resumes from the checkpoint if the config is unchanged; use "
                    "a new --out otherwise)." + backoff_hint())
            if math.isfinite(val) and val < best["val"]:
                best = {"val": val, "step": step + 1}
                best_params = params
            validated = math.isfinite(val)
            bar.set_postfix(loss=f"{loss:.4g}", val=f"{val:.4g}", best=f"{best['val']:.4g}")
        rows.append(row)
        if validated:  # a state a back-off may return to
            good = (step + 1, params, opt_state, best, best_params)
        if step + 1 == end:
            end = planned_end(meta, rows)
            if end > step + 1:
                bar.total = end
                bar.refresh()
                print(f"meta-training: the validation loss still falls ({fall(rows, step + 1, meta.block)}); "
                      f"{end - step - 1} more steps (up to [meta] max_steps = {meta.max_steps})", file=sys.stderr)
        if (step + 1) % meta.save_every == 0 or step + 1 == end:
            save(step + 1)
        step += 1
        bar.update(1)
    commit()  # the last one: evaluated on the validation episodes at the final step
    bar.close()
    if best["step"] < 0:  # no validation ran (e.g. resumed at the end)
        best_params = params
    history = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
    return best_params, history


class Checkpoint:
    """Resumable meta-training state, written as one unit.

    Each checkpoint is a folder ``step-NNNNNNNN/`` of the parameters, the optimizer state,
    the best parameters and the history so far, each file written atomically; it becomes
    the checkpoint when ``state.json`` (itself atomic) names it with each file's SHA-256,
    and older folders are removed only after that. A crash at any point of writing leaves
    ``state.json`` naming a complete, earlier folder; on resume every file is checked
    against its digest, so a damaged checkpoint is an error, never a silent restart.
    """

    FILES = ("params.npz", "opt_state.npz", "best_params.npz", "history.csv")

    def __init__(self, root: Path):
        self.root = Path(root)
        self.committed: int | None = None
        self.state: dict = {}  # the committed checkpoint's state.json, once loaded

    def folder(self, step: int) -> Path:
        return self.root / f"step-{step:08d}"

    def write(self, step, params, opt_state, best_params, state: dict, history: pd.DataFrame) -> None:
        d = self.folder(step)
        save_pytree(d / "params.npz", params)
        save_pytree(d / "opt_state.npz", opt_state)
        save_pytree(d / "best_params.npz", best_params)
        write_csv(d / "history.csv", history)
        self._state, self.history = {**state, "folder": d.name}, history

    def commit(self, step: int) -> None:
        import shutil

        d = self.folder(step)
        digests = {f: hashlib.sha256((d / f).read_bytes()).hexdigest() for f in self.FILES}
        write_json(self.root / "state.json", {**self._state, "files": digests})
        self.committed = step
        for old in self.root.glob("step-*"):  # older checkpoints, and folders a crash left half-written
            if old.name != d.name and old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
        for name in ("params.npz", "opt_state.npz", "best_params.npz"):  # the layout before folders
            (self.root / name).unlink(missing_ok=True)

    def load(self, config_hash: str, params, opt_state):
        """``(step, best, history rows, params, opt_state, best_params)`` of the committed
        checkpoint, or ``None`` when there is none or it was made with another config."""
        state_path = self.root / "state.json"
        if not state_path.exists():
            return None
        st = read_json(state_path)
        if st.get("config_hash") != config_hash:
            print(f"checkpoint in {self.root} was made with another config; starting afresh", file=sys.stderr)
            return None
        try:
            step, best = int(st["step"]), dict(st["best"])
            d = self.root / st.get("folder", ".")
        except (KeyError, TypeError, ValueError):
            raise damaged(state_path, "it lacks the step, the best validation loss or the folder it names") from None
        for f, digest in st.get("files", {}).items():
            p = d / f
            if not p.is_file():
                raise damaged(state_path, f"it names {p}, which is missing")
            if hashlib.sha256(p.read_bytes()).hexdigest() != digest:
                raise damaged(p, f"its content does not match the SHA-256 that {state_path} records")
        params = load_pytree(d / "params.npz", params)
        opt_state = load_pytree(d / "opt_state.npz", opt_state)
        best_params = load_pytree(d / "best_params.npz", params)
        hist = d / "history.csv" if (d / "history.csv").exists() else self.root.parent / "meta_history.csv"
        rows = read_csv(hist).to_dict("records") if hist.exists() else []
        rows = [r for r in rows if r["step"] <= step]
        self.committed, self.state = step, st
        return step, best, rows, params, opt_state, best_params


def _bests(rows, at: int, block: int) -> tuple[float, float]:
    """The best finite validation loss up to step ``at - block``, and in the ``block``
    steps after it up to ``at`` (``inf`` where there is none)."""
    def best(lo, hi):
        return min((r["val_loss"] for r in rows if lo < r["step"] <= hi and math.isfinite(r["val_loss"])),
                   default=math.inf)
    return best(0, at - block), best(at - block, at)


def fall(rows, at: int, block: int) -> str:
    """How much the best validation loss fell over the ``block`` steps up to ``at``."""
    before, last = _bests(rows, at, block)
    return f"best {before:.4g} before step {at - block + 1}, {last:.4g} in the last {block} steps"


def still_falls(meta: MetaConfig, rows, at: int) -> bool:
    """Whether training that has reached step ``at`` goes on: the best validation loss of
    the last block is below the best before it by more than ``extend_min_gain`` of it, and
    (with ``extend_until``) not yet below that floor."""
    if not rows or rows[-1]["step"] < at:
        return False
    before, last = _bests(rows, at, meta.block)
    if not (math.isfinite(before) and math.isfinite(last)):
        return False
    if meta.extend_until and last < meta.extend_until:
        return False
    return before - last > meta.extend_min_gain * abs(before)


def planned_end(meta: MetaConfig, rows) -> int:
    """The step meta-training runs to: ``[meta] steps``, and one more block of
    ``[meta] extend_by`` steps each time the validation loss still fell over the last one
    (:func:`still_falls`), up to ``[meta] max_steps``. A function of the history alone, so a
    run resumed from a checkpoint extends exactly as an uninterrupted one."""
    end = meta.steps
    while end < meta.max_steps and still_falls(meta, rows, end):
        end = min(end + meta.block, meta.max_steps)
    return end


def config_digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


__all__ = ["meta_train", "MetaTrainingError", "config_digest", "planned_end", "still_falls"]
