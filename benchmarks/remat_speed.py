"""Time of one meta-gradient with and without checkpointing every step (``[meta] checkpoint_every = 1``).

For each config (the shipped gradient configs by default; those meta-trained by an evolution
strategy never differentiate, and are left out) the task and student are built as
``plasticity run`` builds them, one meta-batch of ``[meta] batch`` training episodes is
drawn, and ``jax.value_and_grad`` of the meta-loss the gradient meta-optimizer builds (its
``loss``, penalties included) is compiled three ways: as the config has it (the reference),
with ``[meta] checkpoint_every = 1`` (a ``jax.checkpoint`` around every step,
:func:`discover.rollout.rollout`) and, for reference, the forward loss alone. Configs that
truncate backpropagation (``truncate_every``, whose segments ``checkpoint_every`` does not
set) are left out. Each is
called ``--repeats`` times after its compilation; the median is reported, and the ratio of
the checkpointed gradient to the config's. The gradients must agree (relative difference
printed): rematerialization recomputes, it does not approximate.

    .venv/bin/python benchmarks/remat_speed.py                      # the shipped gradient configs
    .venv/bin/python benchmarks/remat_speed.py --infer              # benchmarks/infer_recordings.py's student
    .venv/bin/python benchmarks/remat_speed.py configs/oja.toml --repeats 5

Writes ``benchmarks/results/remat_speed.json`` (``--json``) and prints a markdown table.
Run it on an otherwise idle machine; ``taskset -c 0`` gives one core's figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ["oja.toml", "imitate_oja.toml", "oja_subspace.toml", "infer_oja.toml", "digits_few_shot.toml",
           "error_driven.toml", "stdp_open.toml", "stdp_triplet.toml"]


def timed(fn, args, repeats: int) -> tuple[float, float, object]:
    """(compile + first call s, median s of ``repeats`` calls, last output)."""
    import jax

    t = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t)
    return first, statistics.median(times), out


def measure(name: str, cfg, repeats: int) -> dict:
    import jax
    import jax.numpy as jnp

    from discover.build import build_student, build_task
    from discover.registry import META_OPTIMIZERS

    task = build_task(cfg)
    rule = build_student(cfg, task)
    params = rule.init(jax.random.key(0))
    # off the start: a rule at 0 (or at a symmetric start) can hide terms from the gradient
    params = jax.tree_util.tree_map(lambda a: a + 0.01 * jax.random.normal(jax.random.key(1), a.shape, a.dtype)
                                    if jnp.issubdtype(a.dtype, jnp.floating) else a, params)
    episodes = task.training_sample(jax.random.key(2), cfg.meta.batch)
    row = {"config": name, "batch": cfg.meta.batch, "steps": task.config.steps,
           "config_chunk": cfg.meta.checkpoint_every}

    def loss(meta):  # what meta-training differentiates (discover.optimizers.GradientDescent)
        return META_OPTIMIZERS.get(meta.optimizer)(meta, task, rule).loss

    ref, one = loss(cfg.meta), loss(dataclasses.replace(cfg.meta, checkpoint_every=1))
    _, t_fwd, _ = timed(jax.jit(ref), (params, episodes), repeats)
    c_ref, t_ref, (_, g_ref) = timed(jax.jit(jax.value_and_grad(ref)), (params, episodes), repeats)
    c_one, t_one, (_, g_one) = timed(jax.jit(jax.value_and_grad(one)), (params, episodes), repeats)
    a = jnp.concatenate([jnp.ravel(x) for x in jax.tree_util.tree_leaves(g_ref)])
    b = jnp.concatenate([jnp.ravel(x) for x in jax.tree_util.tree_leaves(g_one)])
    row.update(forward_s=t_fwd, grad_config_s=t_ref, grad_step_checkpoint_s=t_one, compile_config_s=c_ref,
               compile_step_checkpoint_s=c_one, ratio=t_one / t_ref,
               grad_rel_diff=float(jnp.max(jnp.abs(a - b)) / jnp.maximum(jnp.max(jnp.abs(a)), 1e-30)))
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("configs", nargs="*", help="TOML configs (default: the shipped gradient configs)")
    ap.add_argument("--infer", action="store_true", help="also benchmarks/infer_recordings.py's 50 x 50 student")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", default=str(ROOT / "benchmarks/results/remat_speed.json"))
    a = ap.parse_args(argv)
    from discover.config import ConfigError, config_from_dict, load_config

    paths = [Path(p) for p in a.configs] or [ROOT / "configs" / n for n in DEFAULT]
    jobs = []
    for p in paths:
        try:
            cfg = load_config(p)
        except (ConfigError, OSError) as e:
            print(f"error: {p}: {e}", file=sys.stderr)
            return 2
        if cfg.meta.optimizer not in ("adam", "sgd"):
            print(f"{p.name}: meta-trained by {cfg.meta.optimizer}, no gradient; left out", file=sys.stderr)
            continue
        if cfg.meta.truncate_every:
            print(f"{p.name}: truncate_every sets its segments; left out", file=sys.stderr)
            continue
        jobs.append((p.name, cfg))
    if a.infer:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        import tempfile

        import infer_recordings as ir

        from discover.recordings import write_recording

        tmp = Path(tempfile.mkdtemp())
        path = write_recording(tmp / "recording.npz", ir.recording("oja", 50, 32, 100, 0.0, 1.0, 0))
        c = ir.config(path, 50, 100, 1000)
        c["meta"].pop("checkpoint_every", None)
        jobs.append(("infer_recordings (50 x 50, degree 3)", config_from_dict(c)))
    rows = []
    for name, cfg in jobs:
        print(f"{name} ...", file=sys.stderr, flush=True)
        rows.append(measure(name, cfg, a.repeats))
    Path(a.json).write_text(json.dumps({"benchmark": "remat_speed", "repeats": a.repeats, "results": rows}, indent=1))
    print("| config | batch x steps | forward | gradient (config) | gradient, checkpoint every step | ratio | "
          "gradient rel. diff |\n|---|---|---|---|---|---|---|")
    for r in rows:
        own = f" (checkpoint_every {r['config_chunk']})" if r["config_chunk"] else ""
        print(f"| {r['config']} | {r['batch']} x {r['steps']} | {r['forward_s'] * 1e3:.1f} ms | "
              f"{r['grad_config_s'] * 1e3:.1f} ms{own} | {r['grad_step_checkpoint_s'] * 1e3:.1f} ms | "
              f"{r['ratio']:.2f} | {r['grad_rel_diff']:.1e} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
