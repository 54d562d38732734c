"""Refit pair-STDP coefficients on a closed spiking loop: Adam (surrogate gradients) vs CMA-ES.

    .venv/bin/python benchmarks/refit_closed_loop.py [--steps 150]

The task is ``tests/test_refine.py``'s (configs/stdp_pair.toml at 20 inputs -> 2 outputs,
1 s episodes, postsynaptic spikes only); the equation starts with A_plus 20 % low and A_minus
20 % high and is refitted on 16 episodes by each optimizer (``distill.refine.refine``).
Prints the refitted coefficients, their intervals (Adam: sandwich; CMA-ES: values the
episodes cannot tell from the optimum), the refit loss and CPU seconds; writes
``benchmarks/results/refit_closed_loop.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

from discover.build import build_task
from discover.config import config_from_dict
from discover.equations import parse_equation
from discover.io import write_json
from distill.refine import refine

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("_refine_tests", ROOT / "tests" / "test_refine.py")
tests = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tests)
TRUE = {"s_post*tr_pre": 0.05, "s_pre*tr_post": -0.0525}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "refit_closed_loop.json")
    args = ap.parse_args()
    cfg = config_from_dict(tests.CLOSED)
    task = build_task(cfg)
    start = parse_equation("0.04*s_post*tr_pre - 0.063*s_pre*tr_post")
    lines = ["| optimizer | A_plus [interval] | A_minus [interval] | refit loss | CPU s |", "|---|---|---|---|---|"]
    rows = []
    for opt in ("adam", "cma_es"):
        t0 = time.process_time()
        out = refine(task, start, {"tau_pre": 20.0, "tau_post": 20.0}, steps=args.steps, episodes=16, optimizer=opt)
        sec = time.process_time() - t0
        if out is None:
            lines.append(f"| {opt} | not refitted | | | {sec:.0f} |")
            rows.append({"optimizer": opt, "refitted": False, "cpu_s": sec})
        else:
            _, cis, loss, _ = out
            cells = [f"{v:.4g} [{lo:.4g}, {hi:.4g}]" for v, lo, hi in (cis[k] for k in TRUE)]
            lines.append(f"| {opt} | {cells[0]} | {cells[1]} | {loss:.3g} | {sec:.0f} |")
            rows.append({"optimizer": opt, "refitted": True, "cpu_s": sec, "loss": loss, "intervals": cis})
        print(lines[-1] if len(rows) > 1 else "\n".join(lines), flush=True)
    write_json(args.out, {"benchmark": "refit_closed_loop", "argv": vars(args) | {"out": str(args.out)},
                          "teacher": TRUE, "start": str(start), "results": rows, "markdown": "\n".join(lines)})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
