"""Meta-training speed with the meta-batch / ES population sharded over N devices.

    .venv/bin/python benchmarks/sharding.py [--devices 1 2] [--configs oja stdp_pair] [--steps 30]

Each (config, device count) runs in its own process, the CPU host split into N devices with
``XLA_FLAGS=--xla_force_host_platform_device_count=N``. It meta-trains ``--steps`` steps of
the config and reports the seconds per step between the first (compiling) and the last
(validating) step, the speed-up over one device in the same run, and the largest parameter
difference from the one-device run. Sharding changes only how XLA compiles the float arithmetic; in a
smooth problem that stays at float tolerance, in a closed spiking loop a flipped spike can
reorder ES members and the runs part ways (as they would after any float change). Writes
``benchmarks/results/sharding.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np

from discover.io import write_json

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import dataclasses, json, sys
import jax, numpy as np
from discover.build import build_student, build_task
from discover.config import load_config
from discover.meta import meta_train
cfg = load_config(sys.argv[1])
cfg = dataclasses.replace(cfg, meta=dataclasses.replace(cfg.meta, steps=int(sys.argv[2]), eval_every=10**9))

task = build_task(cfg)
rule = build_student(cfg, task)
params, hist = meta_train(task, rule, cfg.meta, progress=False)
wall = hist["wall_s"].to_numpy()
flat = np.concatenate([np.ravel(a) for a in jax.tree_util.tree_leaves(params)])
print("RESULT" + json.dumps({"devices": jax.device_count(), "first_step_s": float(wall[0]),
      "s_per_step": float((wall[-2] - wall[0]) / (len(wall) - 2)), "params": flat.tolist(),
      "batch": cfg.meta.batch, "population": getattr(cfg.meta, "population", None), "optimizer": cfg.meta.optimizer}))
"""


def run(config: Path, devices: int, steps: int) -> dict:
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(config), str(steps)], env=env,
                          capture_output=True, text=True, check=False)
    if proc.returncode:
        raise SystemExit(f"{config.name} on {devices} devices failed:\n{proc.stderr[-3000:]}")
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT"))
    return json.loads(line[len("RESULT"):])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--configs", nargs="+", default=["oja", "stdp_pair"])
    ap.add_argument("--steps", type=int, default=30, help="at least 3")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "sharding.json")
    args = ap.parse_args()
    lines = ["| config | optimizer (sharded axis) | devices | s per meta-step | speed-up "
             "| max param diff vs 1 device |", "|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    results = []
    for name in args.configs:
        base = None
        for n in args.devices:
            r = run(ROOT / "configs" / f"{name}.toml", n, args.steps)
            base = base or r
            es = r["optimizer"] in ("cma_es", "open_es")
            axis = f"population {r['population']}" if es else f"batch {r['batch']}"
            diff = float(np.max(np.abs(np.subtract(r["params"], base["params"]))))
            lines.append(f"| {name} | {r['optimizer']} ({axis}) | {r['devices']} | {r['s_per_step']:.4f} "
                         f"| {base['s_per_step'] / r['s_per_step']:.2f} | {diff:.2g} |")
            print(lines[-1], flush=True)
            results.append({"config": name, **{k: v for k, v in r.items() if k != "params"}, "max_param_diff": diff})
    write_json(args.out, {"benchmark": "sharding", "argv": vars(args) | {"out": str(args.out)},
                          "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count()},
                          "results": results, "markdown": "\n".join(lines)})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
