"""Rules inferred from recordings (issue 14): how often ``infer`` gives back the rule a recording was made with.

A recording is simulated (:func:`discover.recordings.simulate_recording`): a rate network
of ``--n`` inputs and ``--n`` outputs (50 x 50, the size of Mehta, Tyulmankov et al. 2024,
NeurIPS, section 4) learns by a known rule on ``imitate``'s input statistics; only the
outputs' activity is kept, in bins of 5 steps, with Gaussian observation noise of ``noise``
times its s.d. and only a ``recorded`` share of the outputs (the others NaN). ``infer``
then meta-trains a degree-3 polynomial over ``x, y, w`` on it, distills and verifies.
Recovered = the selected equation has exactly the rule's terms, each coefficient within
10 %. Cells of the grid: ``--noise`` x ``--recorded``, ``--seeds`` recordings each (a seed
draws inputs, initial weights and noise), for Oja's rule and a rule of our choice that is
not canonical (``0.01*x*y - 0.01*w*y**2 - 0.05*w*x``: Oja plus a presynaptically gated
decay, of the size of Oja's own decay at these rates).

    .venv/bin/python benchmarks/infer_recordings.py --seeds 20 --json benchmarks/results/infer_recordings.json
    .venv/bin/python benchmarks/infer_recordings.py --example configs/recordings/oja_10x10.npz  # configs/infer_oja.toml
    .venv/bin/python benchmarks/infer_recordings.py --spiking --seeds 1 --json benchmarks/results/infer_spiking.json

Every finished run's row is kept in ``--json`` and reused, so an interrupted grid resumes;
``--shard i/n`` splits the cells over n processes sharing one ``--json``. A run whose
meta-training fails (the student's weights diverge) is run once more at half the meta-learning
rate, as the error advises (``retried``); failing again, it is a miss with the reason in ``why``.
Prints one markdown table per rule (README.md).

Each run compiles its own programs; JAX's persistent compilation cache serves the ones
that repeat from run to run (verification's: 9 s -> 2 s per run, measured), e.g.
``JAX_COMPILATION_CACHE_DIR=runs/jax_cache JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0``
before the command.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from shards import parse_shard, update_json

RULES = {
    "oja": "0.01*x*y - 0.01*w*y**2",  # Oja 1982, Eq. (3), at this project's eta = 0.01
    "oja_decay": "0.01*x*y - 0.01*w*y**2 - 0.05*w*x",  # not canonical: our choice
}
TOLERANCE = 0.10
# zero-mean inputs at 50 x 50: with imitate's default means in [0, 1], Oja drives |w| to 1 and y
# to a s.d. of ~3.5, where a degree-3 student diverges in its first 100 meta-steps (measured);
# here y has a s.d. of ~1.2
INPUT_MEAN = [-0.5, 0.5]
# the example of configs/infer_oja.toml: small enough to ship
EXAMPLE = {"n": 10, "episodes": 24, "steps": 100, "noise": 0.5, "recorded": 0.5, "seed": 0}


def recording(rule: str, n: int, episodes: int, steps: int, noise: float, recorded: float, seed: int,
              keep_weights: bool = True):
    from discover.networks import RateNetwork
    from discover.recordings import simulate_recording
    from discover.rules import SymbolicRule

    return simulate_recording(RateNetwork(n_pre=n, n_post=n), SymbolicRule.from_string(RULES[rule], label=rule),
                              episodes=episodes, steps=steps, record_every=5, noise=noise, recorded=recorded,
                              seed=seed, keep_weights=keep_weights, w0_range=[-1.0 / n**0.5, 1.0 / n**0.5],
                              input_mean_range=INPUT_MEAN if n > 10 else [0.0, 1.0])


def config(path: Path, n: int, steps: int, meta_steps: int) -> dict:
    return {"name": "infer",
            "task": {"name": "infer", "n_pre": n, "n_post": n, "steps": steps, "record_every": 5,
                     "data": {"path": str(path)}, "holdout": 0.25},
            "network": {"kind": "rate"},
            "rule": {"kind": "polynomial", "inputs": ["x", "y", "w"], "degree": 3, "output_scale": 0.01},
            # checkpoint_every = 1: the same gradients as without, 3-4x faster (discover.rollout)
            "meta": {"learning_rate": 0.01, "steps": meta_steps, "batch": 8, "val_episodes": 8, "eval_every": 100,
                     "checkpoint_every": 1},
            "distill": {"episodes": 8, "policy": "verified", "refine_steps": 100, "refine_episodes": 8,
                        "samples": 3000},
            "verify": {"episodes": 8}}


# pair STDP from spikes (issue 14): configs/stdp_pair.toml's network and rhythmic inputs, 50 -> 5,
# 1-s episodes, one postsynaptic neuron in five (20 %) not recorded, spike counts in 10-ms bins
SPIKING = {"rule": "0.05*s_post*tr_pre - 0.0525*s_pre*tr_post",  # stdp_pair at configs/stdp_pair.toml's A
           "n_pre": 50, "n_post": 5, "steps": 1000, "episodes": 32, "recorded": 0.8,
           "inputs": {"pre_rate_range": [20.0, 30.0], "pre_modulation_range": [0.5, 1.0],
                      "pre_frequency_range": [4.0, 40.0], "pre_phase_spread": 0.25, "w0_range": [0.3, 0.9]}}


def run_spiking(seed: int, out: Path, generations: int = 300) -> dict:
    """Pair STDP inferred from the spikes of a recording with 20 % of the neurons unrecorded:
    the student is stdp_pair.toml's (event-driven, degree 1 over tr_pre, tr_post, w; CMA-ES),
    its trace time constants at the recording's 20 / 20 ms."""
    from discover.config import config_from_dict
    from discover.networks import LIFNetwork
    from discover.recordings import simulate_recording, write_recording
    from discover.rules import SymbolicRule

    c = SPIKING
    run = out / f"stdp_pair_spikes_rec{c['recorded']:g}_s{seed}"
    run.mkdir(parents=True, exist_ok=True)
    net = LIFNetwork(n_pre=c["n_pre"], n_post=c["n_post"], dt=1.0, post_mode="closed", w_scale=6.0)
    rec = simulate_recording(net, SymbolicRule.from_string(c["rule"], label="stdp_pair"), episodes=c["episodes"],
                             steps=c["steps"], record_every=10, recorded=c["recorded"], seed=seed, **c["inputs"])
    path = write_recording(run / "recording.npz", rec)
    cfg = config_from_dict({
        "task": {"name": "infer", "n_pre": c["n_pre"], "n_post": c["n_post"], "steps": c["steps"],
                 "record_every": 10, "obs_tau": 5.0, "data": {"path": str(path)}, "holdout": 0.25},
        "network": {"kind": "lif", "post_mode": "closed", "w_scale": 6.0},
        "rule": {"kind": "polynomial", "degree": 1, "output_scale": 0.05},
        "meta": {"optimizer": "cma_es", "population": 32, "es_sigma": 0.3, "steps": generations, "batch": 8,
                 "val_episodes": 8, "eval_every": 50},
        "distill": {"episodes": 8, "policy": "verified"}, "verify": {"episodes": 8}})
    return {"rule": "stdp_pair (spikes)", "recorded": c["recorded"], "seed": seed,
            **infer_and_score(cfg, run / "run", c["rule"])}


def recovered(selected: dict, truth: str) -> tuple[bool, str]:
    import sympy

    from discover.vocabulary import SYMBOLS

    want = {t: float(c) for t, c in (sympy.expand(sympy.sympify(truth, locals=SYMBOLS)).as_coefficients_dict()).items()}
    got = {sympy.sympify(t, locals=SYMBOLS): v for t, v in selected.items()}
    if set(got) != set(want):
        return False, f"terms {sorted(map(str, got))}"
    bad = [f"{t}: {got[t]:.4g} vs {v:.4g}" for t, v in want.items() if abs(got[t] - v) > TOLERANCE * abs(v)]
    return not bad, "; ".join(bad)


def infer_and_score(cfg, run_dir: Path, truth: str) -> dict:
    """discover, distill and verify ``cfg`` into ``run_dir``; whether the selected equation is ``truth``."""
    from discover import stage as dstage
    from discover.io import selected_equation
    from discover.meta import MetaTrainingError
    from distill import stage as sstage
    from distill import verify

    t0 = time.perf_counter()
    retried = False
    try:
        dstage.run(cfg, run_dir, progress=False)
    except MetaTrainingError as e:
        # what the error tells a user to do: once, at half the meta-learning rate, in a new run directory;
        # a second failure is a miss, not the grid's end
        retried = True
        cfg = dataclasses.replace(cfg, meta=dataclasses.replace(cfg.meta, learning_rate=cfg.meta.learning_rate / 2))
        run_dir = run_dir.with_name(run_dir.name + "_lr_half")
        try:
            dstage.run(cfg, run_dir, progress=False)
        except MetaTrainingError as e2:
            return {"recovered": False, "retried": True, "selected": "",
                    "why": f"meta-training failed twice: {str(e).split('. ')[0]}; {str(e2).split('. ')[0]}",
                    "seconds": round(time.perf_counter() - t0, 1)}
    sstage.run(cfg, run_dir, progress=False)
    verify.run(cfg, run_dir, progress=False)
    sel = selected_equation(run_dir)
    ok, why = recovered({t: v["value"] for t, v in json.loads(sel["coefficients"]).items()}, truth)
    return {"recovered": ok, "retried": retried, "why": why, "selected": str(sel["equation"]),
            "seconds": round(time.perf_counter() - t0, 1)}


def run_cell(rule, noise, recorded, seed, a, out: Path) -> dict:
    from discover.config import config_from_dict
    from discover.recordings import write_recording

    run = out / f"{rule}_n{a.n}_noise{noise:g}_rec{recorded:g}_s{seed}"
    run.mkdir(parents=True, exist_ok=True)
    path = write_recording(run / "recording.npz", recording(rule, a.n, a.episodes, a.steps, noise, recorded, seed))
    cfg = config_from_dict(config(path, a.n, a.steps, a.meta_steps))
    return {"rule": rule, "noise": noise, "recorded": recorded, "seed": seed, "n": a.n,
            **infer_and_score(cfg, run / "run", RULES[rule])}


def key(row: dict) -> tuple:
    return row["rule"], row["noise"], row["recorded"], row["seed"], row["n"]


def merge(store: Path, row: dict) -> list[dict]:
    """The rows in ``store`` with ``row`` in place of any stored one of its cell and seed,
    written back (shards share the file)."""
    def add(held: dict | None) -> dict:
        rows = [r for r in (held or {}).get("results", []) if key(r) != key(row)] + [row]
        return {"benchmark": "infer_recordings", "tolerance": TOLERANCE, "results": rows}

    return update_json(store, add)["results"]


def table(rows, rule, noises, recordeds) -> str:
    lines = [f"**{rule}** `{RULES[rule]}`: recovered / seeds", "",
             "| noise (s.d.) | " + " | ".join(f"recorded {r:g}" for r in recordeds) + " |",
             "|---|" + "---|" * len(recordeds)]
    for nz in noises:
        cells = []
        for r in recordeds:
            got = [x for x in rows if x["rule"] == rule and x["noise"] == nz and x["recorded"] == r]
            cells.append(f"{sum(x['recovered'] for x in got)}/{len(got)}" if got else "–")
        lines.append(f"| {nz:g} | " + " | ".join(cells) + " |")
    retried = [x for x in rows if x["rule"] == rule and x.get("retried")]
    if retried:
        lines += ["", f"{len(retried)} run(s) diverged at the first meta-learning rate and were rerun at half of it "
                      f"({sum(x['recovered'] for x in retried)} recovered)."]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rules", default="oja,oja_decay")
    ap.add_argument("--noise", default="0,0.5,1.0", help="observation noise, in s.d. of the activity")
    ap.add_argument("--recorded", default="1.0,0.75,0.5", help="shares of the outputs recorded")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--n", type=int, default=50, help="inputs = outputs")
    ap.add_argument("--episodes", type=int, default=32)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--meta-steps", type=int, default=1000)
    ap.add_argument("--out", default="runs/infer_recordings")
    ap.add_argument("--json", default=None, help="keep every row here and reuse it")
    ap.add_argument("--shard", default="0/1", help="i/n: run every n-th cell from the i-th, so n processes can "
                    "share one --json (rows are merged under a lock)")
    ap.add_argument("--example", default=None, help="only write the example recording of configs/infer_oja.toml")
    ap.add_argument("--spiking", action="store_true", help="only pair STDP from spikes, 20 %% unrecorded (--seeds)")
    a = ap.parse_args(argv)
    if a.spiking:
        rows = []
        for seed in range(a.seeds):
            row = run_spiking(seed, Path(a.out))
            rows.append(row)
            print(f"{row['rule']} recorded {row['recorded']:g} seed {seed}: "
                  f"{'recovered' if row['recovered'] else 'not recovered (' + row['why'] + ')'}  {row['selected']}  "
                  f"({row['seconds']} s)", flush=True)
            if a.json:
                Path(a.json).write_text(json.dumps({"benchmark": "infer_recordings --spiking",
                                                    "tolerance": TOLERANCE, "results": rows}, indent=1))
        return 0
    if a.example:
        from discover.recordings import write_recording

        e = EXAMPLE
        path = write_recording(a.example, recording("oja", e["n"], e["episodes"], e["steps"], e["noise"],
                                                    e["recorded"], e["seed"], keep_weights=False))
        print(f"wrote {path}")
        return 0
    rules = a.rules.split(",")
    unknown = [r for r in rules if r not in RULES]
    if unknown:
        print(f"error: --rules {unknown[0]!r}: choose from {', '.join(RULES)}", file=sys.stderr)
        return 2
    noises = [float(v) for v in a.noise.split(",")]
    recordeds = [float(v) for v in a.recorded.split(",")]
    try:
        shard, shards = parse_shard(a.shard)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    store = Path(a.json) if a.json else None
    rows = json.loads(store.read_text())["results"] if store and store.exists() else []
    done = {key(r) for r in rows}
    # seeds outermost: an interrupted grid has (nearly) as many seeds in every cell
    cells = [(seed, rule, nz, rec) for seed in range(a.seeds) for rule in rules for nz in noises for rec in recordeds]
    for seed, rule, nz, rec in cells[shard::shards]:
        if (rule, nz, rec, seed, a.n) in done:
            continue
        row = run_cell(rule, nz, rec, seed, a, Path(a.out))
        print(f"{rule} noise {nz:g} recorded {rec:g} seed {seed}: "
              f"{'recovered' if row['recovered'] else 'not recovered (' + row['why'] + ')'}  "
              f"{row['selected']}  ({row['seconds']} s)", flush=True)
        rows = merge(store, row) if store else [*rows, row]
    for rule in rules:
        print("\n" + table([r for r in rows if r["n"] == a.n], rule, noises, recordeds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
