"""Meta-loss landscape of spikes-only, closed-loop pair-STDP imitation around the teacher.

    .venv/bin/python benchmarks/stdp_landscape.py [--config configs/stdp_pair.toml] [--episodes 8]

The student is the teacher's own form, ``A_plus*tr_pre*s_post - A_minus*tr_post*s_pre``
with trace time constants ``tau_pre``, ``tau_post``; the table gives its meta-loss (the
normalized distance of smoothed postsynaptic spike counts, ``[task] observe = "spikes"``)
on held-out episodes when one direction of the teacher's parameters is changed:

- ``scale``: both amplitudes times ``c``;
- ``ratio``: ``A_minus`` times ``c`` (``A_minus/A_plus`` off by ``c``);
- ``tau asym``: ``tau_pre``, ``tau_post`` moved in opposite directions;
- ``tau common``: both time constants equal to ``tau`` (amplitudes unchanged), and the
  same with the amplitudes rescaled by ``tau_teacher/tau`` (the window's area kept).

What it shows: how sharply each parameter is identified from spikes (the ratio is; the
common time constant much less) and the floor that spike-time chaos puts under any
rule that is not exactly the teacher. Prints a markdown table; writes
``benchmarks/results/stdp_landscape.json``.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp

from discover.build import build_task
from discover.config import load_config
from discover.io import write_json
from discover.rules import make_symbolic_rule

ROOT = Path(__file__).resolve().parents[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "stdp_pair.toml"))
    ap.add_argument("--episodes", type=int, default=8)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "stdp_landscape.json"))
    args = ap.parse_args()

    cfg = load_config(args.config)
    task = build_task(cfg)
    teacher = task.teacher
    tp = {k: float(v) for k, v in cfg.task.teacher.params.items()}
    a_plus, a_minus = tp["A_plus"], tp["A_minus"]
    student = make_symbolic_rule("A_plus*tr_pre*s_post - A_minus*tr_post*s_pre", tp, label="student")
    base = student.init(jax.random.key(0))
    episodes = task.sample(jax.random.key(args.seed), args.episodes)

    @jax.jit
    def loss(ap_, am_, t_pre, t_post):
        p = {"core": {"A_plus": ap_, "A_minus": am_},
             "log_tau": {**base["log_tau"], "tau_pre": jnp.log(t_pre), "tau_post": jnp.log(t_post)}}
        return jnp.mean(jax.vmap(lambda e: task.episode_loss(student, p, e)[0])(episodes))

    taus = {k: float(v) for k, v in teacher.tau(teacher.init(jax.random.key(0))).items()}
    t_pre0, t_post0 = taus["tau_pre"], taus["tau_post"]

    def L(ap_, am_, t_pre=t_pre0, t_post=t_post0):
        return float(loss(jnp.float32(ap_), jnp.float32(am_), jnp.float32(t_pre), jnp.float32(t_post)))

    rows = []
    t0 = time.perf_counter()
    for c in (0.0, 0.5, 0.8, 0.9, 1.0, 1.1, 1.25, 2.0):
        rows.append(("scale", f"x{c:g}", L(a_plus * c, a_minus * c)))
    for c in (0.8, 0.9, 1.1, 1.2):
        rows.append(("ratio", f"x{c:g}", L(a_plus, a_minus * c)))
    for t_pre, t_post in ((30.0, 12.0), (25.0, 16.0), (22.0, 18.0), (18.0, 22.0), (15.0, 25.0)):
        rows.append(("tau asym", f"{t_pre:g} / {t_post:g} ms", L(a_plus, a_minus, t_pre, t_post)))
    for tau in (15.0, 18.0, 22.0, 25.0):
        rows.append(("tau common", f"{tau:g} ms", L(a_plus, a_minus, tau, tau)))
        k = t_pre0 / tau
        rows.append(("tau common, same area", f"{tau:g} ms", L(a_plus * k, a_minus * k, tau, tau)))
    seconds = time.perf_counter() - t0

    print(f"Meta-loss around the teacher ({Path(args.config).name}, {args.episodes} held-out episodes; "
          "teacher: 0)\n")
    print("| direction | value | meta-loss |\n|---|---|---|")
    for d, v, loss_ in rows:
        print(f"| {d} | {v} | {loss_:.4g} |")
    print(f"\n{len(rows)} evaluations in {seconds:.1f} s")
    write_json(args.out, {
        "config": str(args.config), "episodes": args.episodes, "seed": args.seed,
        "teacher": tp, "rows": [{"direction": d, "value": v, "meta_loss": x} for d, v, x in rows],
        "seconds": seconds, "machine": platform.platform(), "jax": jax.__version__,
    })


if __name__ == "__main__":
    main()
