"""Simulator throughput on one GPU against its memory-bandwidth bound (issue 15).

Sized to finish in under 5 minutes on one GPU; nothing in the project needs a GPU, and on
a CPU the script runs too (``--quick`` there: small sizes, a check that it works).

The network is ``simulator_throughput.py``'s (Brian2's STDP example after Song et al. 2000,
widened; all-to-all pair STDP onto conductance-based LIF neurons, 15 Hz Poisson inputs,
dt = 0.1 ms), forward, on both engines (``dense``: every synapse every step, XLA fuses the
update ``W = clip(W + dw)`` with the synaptic input ``W @ s_pre``; ``event``:
:mod:`discover.eventsim`), at batch 1 to 256.

The bound: a fused dense step reads and writes each float32 weight once, 8 bytes per
synapse-step, so it can reach at most ``bandwidth / 8`` synapse-steps per second.
``bandwidth`` is measured here (the median of ``y = a * x + b`` over a 1 GiB array: one
read and one write per element), beside the vendor's figure for known devices. The
``dense`` rows report their fraction of the measured bound; the event engine does less
than a full read and write per synapse-step, so its rate may pass it. (On a CPU the small
``--quick`` networks sit in cache, and dense rows pass the DRAM bound too.)

    .venv/bin/python benchmarks/gpu.py --out benchmarks/results/gpu.json   # one GPU, < 5 min
    .venv/bin/python benchmarks/gpu.py --quick                             # anywhere, ~20 s

Prints a markdown table and writes ``--out`` (default ``benchmarks/results/gpu.json``):
one record per measurement under ``results`` (``engine`` ``ours``, ``target``, ``n_pre``,
``n_post``, ``batch``, ``mode`` ``forward``, ``synapse_steps_per_s``, ``fraction_of_bound``),
and the device, the measured and the nominal bandwidth.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

#: vendors' peak memory bandwidth, bytes/s, by ``device_kind`` prefix (NVIDIA H100 SXM5 and
#: H200 SXM product briefs: 3.35 and 4.8 TB/s; A100 80GB SXM: 2.039 TB/s)
NOMINAL = {"NVIDIA H100": 3.35e12, "NVIDIA H200": 4.8e12, "NVIDIA A100": 2.039e12}

FULL = {"sizes": [(1000, 1000), (10000, 1000)], "batches": [1, 4, 16, 64, 256], "steps": 2000, "repeats": 3}
QUICK = {"sizes": [(100, 10), (1000, 100)], "batches": [1, 4], "steps": 200, "repeats": 2}
#: most weights held at once (float32, all networks of a batch): 2^31 is 8 GiB
MAX_WEIGHTS = 2**31


def bandwidth(n_bytes: int = 2**30, repeats: int = 5) -> float:
    """Bytes per second of ``y = a * x + b`` over a float32 array of ``n_bytes`` (read x,
    write y), median of ``repeats``."""
    import jax
    import jax.numpy as jnp

    x = jnp.ones((n_bytes // 4,), jnp.float32)
    f = jax.jit(lambda x: x * 1.0001 + 1e-7)
    jax.block_until_ready(f(x))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(f(x))
        times.append(time.perf_counter() - t0)
    return 2 * n_bytes / statistics.median(times)


def measure(n_pre, n_post, batch, engine, steps, repeats, bound) -> dict:
    """``simulator_throughput.time_ours``'s forward record, with its fraction of ``bound``."""
    from simulator_throughput import SONG, time_ours

    r = time_ours(n_pre, n_post, steps * SONG["dt_ms"] * 1e-3, batch, "forward", engine, repeats, "hash")
    assert r["steps"] == steps
    r["fraction_of_bound"] = r["synapse_steps_per_s"] / bound if engine == "dense" else None
    return r


def table(rows) -> str:
    head = "| N_pre x N_post | target | batch | synapse-steps/s | us/step | fraction of 8 B/syn-step bound |"
    lines = [head, "|" + "---|" * 6]
    for r in rows:
        frac = "-" if r["fraction_of_bound"] is None else f"{r['fraction_of_bound']:.2f}"
        lines.append(f"| {r['n_pre']} x {r['n_post']} | {r['target']} | {r['batch']} | "
                     f"{r['synapse_steps_per_s']:.3g} | {r['us_per_step']:.3g} | {frac} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, 200 steps: checks that it runs (any device)")
    ap.add_argument("--targets", default="dense,event")
    ap.add_argument("--out", default=str(HERE / "results" / "gpu.json"))
    args = ap.parse_args(argv)
    import jax

    plan = QUICK if args.quick else FULL
    targets = [t.strip() for t in args.targets.split(",")]
    if any(t not in ("dense", "event") for t in targets):
        print(f"error: --targets {args.targets!r}: use dense, event or both", file=sys.stderr)
        return 2
    dev = jax.devices()[0]
    if dev.platform != "gpu" and not args.quick:
        print(f"error: no GPU here ({dev.device_kind}); the full plan is sized for one GPU. Use --quick to check "
              "that the script runs.", file=sys.stderr)
        return 2
    t_start = time.perf_counter()
    bw = bandwidth(2**30 if dev.platform == "gpu" else 2**26)
    nominal = next((v for k, v in NOMINAL.items() if dev.device_kind.startswith(k)), None)
    bound = bw / 8
    print(f"{dev.device_kind}: measured bandwidth {bw / 1e9:.0f} GB/s"
          + (f" (nominal {nominal / 1e9:.0f} GB/s)" if nominal else "")
          + f"; dense bound {bound:.3g} synapse-steps/s", flush=True)
    rows = []
    for n_pre, n_post in plan["sizes"]:
        for batch in plan["batches"]:
            if batch * n_pre * n_post > MAX_WEIGHTS:
                continue
            for engine in targets:
                r = measure(n_pre, n_post, batch, engine, plan["steps"], plan["repeats"], bound)
                rows.append(r)
                print(f"  {n_pre} x {n_post}, batch {batch}, {engine}: {r['synapse_steps_per_s']:.3g} synapse-steps/s"
                      + (f" ({r['fraction_of_bound']:.2f} of the bound)" if r["fraction_of_bound"] else ""),
                      flush=True)
    md = table(rows)
    print("\n" + md)
    out = {"benchmark": "gpu", "quick": args.quick, "device": str(dev), "device_kind": dev.device_kind,
           "jax": jax.__version__, "bandwidth_measured_bytes_per_s": bw, "bandwidth_nominal_bytes_per_s": nominal,
           "bound_synapse_steps_per_s": bound, "results": rows, "markdown": md,
           "wall_s": time.perf_counter() - t_start, "command": " ".join(["gpu.py", *(argv or sys.argv[1:])])}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out} ({out['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
