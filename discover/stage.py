"""The discover stage: ``run(config, run_dir)`` meta-trains the rule and writes its files.

Writes ``config.toml`` (resolved), ``manifest.json``, ``checkpoint/``, ``rule/`` and
``meta_history.csv`` (DESIGN.md section 5). Rerunning on the same directory with the same
config resumes from the checkpoint.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import jax
import pandas as pd

from . import distributed
from .build import build_student, build_task
from .config import Config, config_to_dict, dumps_config, load_config
from .io import RunDirError, atomic_write_text, check_out_dir, save_pytree, update_manifest, write_csv, write_json
from .meta import check_task, config_digest, meta_train


def write_config(cfg: Config, run_dir: Path) -> None:
    """Write the resolved config; refuse to overwrite a different one (that would lose a run)."""
    path = run_dir / "config.toml"
    text = dumps_config(cfg)
    if path.exists() and path.read_text() != text:
        old = load_config(path)
        if config_to_dict(old) != config_to_dict(cfg):
            raise RunDirError(
                f"{run_dir} already holds a run made with a different config; pass a new --out directory "
                "(or delete the old one) so that nothing already written is lost"
            )
    atomic_write_text(path, text)


def run(cfg: Config, run_dir: str | Path, progress: bool = True):
    run_dir = Path(run_dir)
    t0 = time.perf_counter()
    task = build_task(cfg)  # everything that can reject the config, before anything is written
    rule = build_student(cfg, task)
    check_task(task, cfg.meta)
    writer = distributed.is_writer()  # one of several processes: only process 0 writes the run directory
    if writer:
        check_out_dir(run_dir)
        write_config(cfg, run_dir)
        update_manifest(run_dir, name=cfg.name, seeds={"meta": cfg.meta.seed, "distill": cfg.distill.seed,
                                                        "verify": cfg.verify.seed},
                        device_count=jax.device_count(), process_count=jax.process_count())
        write_json(run_dir / "rule" / "rule.json", rule.to_spec())
    params, history = meta_train(task, rule, cfg.meta, run_dir, config_hash=config_digest(config_to_dict(cfg)),
                                 progress=progress, check=False)
    if not writer:
        return rule, params, history
    save_pytree(run_dir / "rule" / "params.npz", params)
    write_csv(run_dir / "meta_history.csv", history)
    record = timescale_record(rule, params)
    if rule.learn_timescales:  # rule.json says what the rule runs with, as params.npz does
        write_json(run_dir / "rule" / "rule.json", dataclasses.replace(
            rule, timescales=tuple((k, float(v)) for k, v in rule.tau(params).items())).to_spec())
    update_manifest(run_dir, timings_s={"discover": round(time.perf_counter() - t0, 2)},
                    fit=fit_record(task, history), **({"timescales": record} if record else {}))
    return rule, params, history


def timescale_record(rule, params) -> dict | None:
    """``manifest.json`` ``timescales``: the trace time constants the rule reads, as
    configured and as learned (equal unless ``[rule] learn_timescales``); ``None`` when it
    reads no trace."""
    used = rule.used_timescales
    if not used:
        return None
    learned = {k: round(float(v), 4) for k, v in rule.tau(params).items() if k in used}
    return {"learned": bool(rule.learn_timescales), "initial": {k: v for k, v in rule.timescales if k in used},
            "final": learned}


def fit_record(task, history) -> dict | None:
    """How well the learned rule fits (``manifest.json`` ``fit``): the task's explained share
    at the best validation loss, the threshold, ``poor`` when below it, and how many
    validation episodes the student's weights diverged in there; ``None`` when the task
    has no explained share."""
    val = history.dropna(subset=["val_loss"])
    if val.empty:
        return None
    best = val.loc[val["val_loss"].idxmin()]
    explained = task.explained(float(best["val_loss"]))
    if explained is None:
        return None
    threshold = float(getattr(task.config, "fit_threshold", 0.0))
    div = best.get("val_diverged", 0)  # NaN in a history resumed from before the column existed
    return {"explained": round(explained, 4), "threshold": threshold, "poor": bool(explained < threshold),
            "val_diverged": 0 if pd.isna(div) else int(div), "step": int(best["step"])}


def fit_warning(fit: dict | None) -> str | None:
    """What a run's ``fit`` record warns of ("the learned rule explains ..."; the CLI prints
    it after "warning: poor fit: ", the report after a bold heading), or ``None`` when the
    fit is good."""
    if not fit or not fit.get("poor"):
        return None
    msg = (f"the learned rule explains {100 * fit['explained']:.1f} % of the target "
           f"(threshold {100 * fit['threshold']:.0f} %, [task] fit_threshold), so every equation distilled "
           "from it describes a rule that does not do the task")
    if fit.get("val_diverged"):
        msg += f"; its weights diverged in {fit['val_diverged']} validation episodes"
    return msg + (". Give the rule the inputs the target needs ([rule] inputs), more capacity or more "
                  "[meta] steps, or bound the weights ([network] w_min / w_max).")
