"""Rules no config was tuned for: random teacher rules, recovered or not (issue 18).

A seeded generator draws teacher rules of 1 to 4 terms, monomials of the network's
vocabulary up to degree 3, coefficients of random sign and magnitude log-uniform over a
decade; a teacher that diverges on the task's episodes gets weight bounds [-1, 1] (rate
networks, whose initial weights are drawn from [-1, 1]; LIF weights are always in [0, 1]), and a
teacher that still diverges, or that sits on its bounds or hardly moves its weights
(nothing to identify), is drawn again. Each teacher is imitated with one fixed config per
setting, where only the teacher changes (the student is ``[rule] kind = "auto"``), then
distilled and re-verified:

- ``rate_weights``: rate network (6 -> 2, linear), teacher weights observed;
- ``rate_activity``: the same network, only its output ``y`` observed;
- ``spiking_open``: LIF, postsynaptic spikes given (open loop), weights observed;
  event-gated monomials ``s_post*m(tr_pre, tr_post, w)``, ``s_pre*m(...)``;
- ``spiking_closed``: LIF closed loop, only smoothed postsynaptic spike counts observed.

Recovered = the selected equation has exactly the teacher's terms, every coefficient
within 10 %. Each run lives in ``OUT/SETTING/ruleK`` and is skipped when already done,
so an interrupted benchmark resumes; ``--json FILE`` keeps every finished rule's row and
reuses it on a later run (another machine, say) when the same teacher is drawn for that
index; ``--shard i/n`` runs every n-th rule (two shards on two cores run side by side,
sharing one ``--json``).

    .venv/bin/python benchmarks/random_rules.py --rules 30 --settings rate_weights \\
        --out runs/random_rules --json benchmarks/results/random_rules.json

Prints one markdown table per setting (README.md), with the failures and why.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import sympy
from shards import parse_shard, update_json

RATE_VARS = ("x", "y", "w")
TRACE_VARS = ("tr_pre", "tr_post", "w")
TOLERANCE = 0.10  # coefficients within 10 % (issue 18)
MAGNITUDE = (0.002, 0.02)  # |coefficient|, log-uniform over a decade

BASE_RATE = {
    # initial weights of both signs: over imitate's default [0.2, 0.8] w, w**2 and w**3 are
    # 0.99 correlated and the term set is not identifiable (7 of the first 11 rules recovered)
    "task": {"name": "imitate", "steps": 100, "record_every": 5, "n_pre": 6, "n_post": 2, "w0_range": [-1.0, 1.0]},
    "network": {"kind": "rate", "activation": "linear"},
    "rule": {"kind": "auto", "output_scale": 0.01},
    "meta": {"learning_rate": 0.01, "steps": 1500, "batch": 8, "eval_every": 100, "val_episodes": 16},
    "distill": {"policy": "verified", "samples": 3000, "episodes": 12, "bootstrap": 20, "refine_steps": 100},
    "verify": {"episodes": 16},
}
BASE_SPIKING = {  # configs/stdp_open.toml at benchmark size, auto student
    # initial weights over the whole bounded range: over imitate's default [0.2, 0.8], s_pre*w,
    # s_pre*w**2 and s_pre are as collinear as in the rate case (3 of the first 13 rules missed,
    # benchmarks/results/random_rules_spiking_open_v1.json)
    "task": {"name": "imitate", "steps": 1000, "record_every": 10, "n_pre": 20, "n_post": 4, "w0_range": [0.0, 1.0]},
    "network": {"kind": "lif", "post_mode": "given", "dt": 1.0},
    "rule": {"kind": "auto", "output_scale": 0.01},
    "meta": {"learning_rate": 0.01, "steps": 1000, "batch": 8, "eval_every": 100, "val_episodes": 16},
    "distill": {"policy": "verified", "samples": 4000, "episodes": 12, "bootstrap": 20, "refine_steps": 100},
    "verify": {"episodes": 16},
}
SETTINGS = {
    "rate_weights": (BASE_RATE, {}),
    "rate_activity": (BASE_RATE, {"task": {"observe": "activity", "obs_tau": 1.0}}),
    "spiking_open": (BASE_SPIKING, {}),
    # configs/stdp_pair.toml with the teacher's amplitudes 5x (2 s episodes): CMA-ES over a
    # degree-2 event-driven polynomial (20 coefficients), rhythmic inputs, spikes only
    "spiking_closed": (BASE_SPIKING, {
        "task": {"observe": "spikes", "steps": 2000, "n_pre": 50, "pre_rate_range": [20.0, 30.0],
                 "pre_modulation_range": [0.5, 1.0], "pre_frequency_range": [4.0, 40.0], "pre_phase_spread": 0.25,
                 "w0_range": [0.3, 0.9], "obs_tau": 5.0},
        "network": {"post_mode": "closed", "w_scale": 6.0},
        "rule": {"kind": "polynomial", "degree": 2, "output_scale": 0.05},
        "meta": {"optimizer": "cma_es", "population": 32, "es_sigma": 0.3, "steps": 1500, "batch": 16,
                 "eval_every": 50, "learning_rate": None},
        "distill": {"refine_steps": 0}}),
}


def config_dict(setting: str, teacher: str, bounds: bool) -> dict:
    base, extra = SETTINGS[setting]
    d = copy.deepcopy(base)
    for section, values in extra.items():
        if "kind" in values or "optimizer" in values:  # another rule or optimizer: its own keys only
            d[section] = {}
        d[section].update({k: v for k, v in values.items() if v is not None})
    d["task"]["teacher"] = {"rule": teacher, "params": {}}
    d["name"] = f"random_{setting}"
    if bounds and d["network"]["kind"] == "rate":
        d["network"].update(w_min=-1.0, w_max=1.0)
    return d


# -- the generator ------------------------------------------------------------------------------
SCALE = {"spiking_closed": 5.0}  # teachers' amplitudes, as configs/stdp_pair.toml scales pair STDP


def monomials(setting: str) -> list[str]:
    """The term pool: rate, monomials of x, y, w of degree 1-3; spiking, a spike times a
    monomial of the traces and w of degree 0-2 (event-driven, degree <= 3 in all)."""
    from itertools import combinations_with_replacement

    if setting.startswith("rate"):
        pool = [c for d in (1, 2, 3) for c in combinations_with_replacement(RATE_VARS, d)]
        return ["*".join(c) for c in pool]
    pool = [()] + [c for d in (1, 2) for c in combinations_with_replacement(TRACE_VARS, d)]
    return ["*".join((s,) + c) for s in ("s_post", "s_pre") for c in pool]


def draw_rule(rng: np.random.Generator, setting: str) -> dict[str, float]:
    pool = monomials(setting)
    k = int(rng.integers(1, 5))
    terms = rng.choice(len(pool), k, replace=False)
    mags = SCALE.get(setting, 1.0) * np.exp(rng.uniform(math.log(MAGNITUDE[0]), math.log(MAGNITUDE[1]), k))
    signs = rng.choice([-1.0, 1.0], k)
    return {pool[t]: float(round(float(m * s), 4)) for t, m, s in zip(terms, mags, signs)}


def equation(rule: dict[str, float]) -> str:
    return " + ".join(f"({c})*{t}" for t, c in rule.items())


def teacher_ok(setting: str, teacher: str, bounds: bool) -> tuple[bool, str]:
    """Whether the teacher is usable on this setting's episodes: bounded, off its bounds
    most of the time, and moving its weights."""
    import jax

    from discover.build import build_task
    from discover.config import config_from_dict

    cfg = config_from_dict(config_dict(setting, teacher, bounds))
    task = build_task(cfg)
    eps = task.sample(jax.random.key(123), 256)
    valid = np.asarray(eps["valid"])
    if valid.mean() < 0.99:  # stricter than discover's 5 %, so that no run is refused by chance
        return False, "diverges"
    W, W0 = np.asarray(eps["W_teacher"])[valid], np.asarray(eps["W0"])[valid]
    moved = float(np.sqrt(np.mean((W - W0[:, None]) ** 2)))
    if moved < 0.02:
        return False, f"hardly moves its weights (rms change {moved:.3g})"
    net = cfg.network
    lo = net.w_min if net.w_min is not None else -np.inf
    hi = net.w_max if net.w_max is not None else np.inf
    at_bound = float(np.mean((W <= lo + 1e-6) | (W >= hi - 1e-6)))
    if at_bound > 0.5:
        return False, f"sits on its bounds ({at_bound:.0%} of the recorded weights)"
    return True, ""


def draw_teachers(n: int, setting: str, seed: int, log=print) -> list[dict]:
    """``n`` usable teachers: ``{"rule": {term: coef}, "equation": str, "bounds": bool}``."""
    rng = np.random.default_rng([seed, sorted(SETTINGS).index(setting)])
    out, tries = [], 0
    while len(out) < n:
        tries += 1
        rule = draw_rule(rng, setting)
        eq = equation(rule)
        ok, why = teacher_ok(setting, eq, bounds=False)
        bounds = False
        if not ok and why == "diverges" and setting.startswith("rate"):
            ok, why = teacher_ok(setting, eq, bounds=True)
            bounds = True
        if ok:
            out.append({"rule": rule, "equation": eq, "bounds": bounds})
        else:
            log(f"  redraw: {eq} {'(bounded) ' if bounds else ''}{why}")
    log(f"{setting}: {n} teachers in {tries} draws")
    return out


# -- one run --------------------------------------------------------------------------------------
def judge(selected: dict, truth: dict[str, float]) -> tuple[bool, str]:
    """Exact term set and every coefficient within :data:`TOLERANCE`; else why not."""
    from discover.vocabulary import SYMBOLS

    want = {sympy.sympify(t, locals=SYMBOLS): c for t, c in truth.items()}
    got = {sympy.sympify(t, locals=SYMBOLS): v["value"] for t, v in selected.items()}
    missing = [str(t) for t in want if t not in got]
    extra = [str(t) for t in got if t not in want]
    if missing or extra:
        return False, "; ".join(filter(None, [missing and f"missing {', '.join(missing)}",
                                              extra and f"extra {', '.join(extra)}"]))
    off = [f"{t}: {got[t]:.4g} vs {c:.4g}" for t, c in want.items() if abs(got[t] - c) > TOLERANCE * abs(c)]
    return (not off), ("coefficient off: " + "; ".join(off)) if off else ""


def run_one(setting: str, teacher: dict, run_dir: Path) -> dict:
    """One rule in a fresh process (each run compiles its own functions; one process for
    30 runs runs out of memory in XLA's caches)."""
    import shutil
    import subprocess

    stamp = run_dir / "benchmark_teacher.json"
    if run_dir.exists() and (not stamp.exists() or json.loads(stamp.read_text()) != teacher):
        shutil.rmtree(run_dir)  # another teacher's run (the draw changed): not this rule's
    run_dir.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps(teacher))
    result = run_dir / "benchmark_result.json"
    if not result.exists():
        proc = subprocess.run([sys.executable, __file__, "--run-one", setting, json.dumps(teacher), str(run_dir)],
                              capture_output=True, text=True)
        if proc.returncode or not result.exists():
            tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            return {"recovered": False, "why": f"the run failed: {tail[:300]}", "selected": "",
                    "explained": float("nan"), "seconds": float("nan")}
    return json.loads(result.read_text())


def _run_one(setting: str, teacher: dict, run_dir: Path) -> dict:
    import pandas as pd

    from discover import stage as dstage
    from discover.config import ConfigError, config_from_dict
    from discover.io import read_manifest, selected_equation
    from discover.meta import MetaTrainingError
    from distill import stage as sstage
    from distill import verify

    cfg = config_from_dict(config_dict(setting, teacher["equation"], teacher["bounds"]))
    t0 = time.perf_counter()
    if not (run_dir / "verification.csv").exists():
        try:
            dstage.run(cfg, run_dir, progress=False)
            sstage.run(cfg, run_dir, progress=False)
            verify.run(cfg, run_dir, progress=False)
        except (MetaTrainingError, ConfigError) as e:
            return {"recovered": False, "why": f"discover stopped: {e}", "selected": "",
                    "explained": float("nan"), "seconds": round(time.perf_counter() - t0, 1)}
    sel = selected_equation(run_dir)
    ok, why = judge(json.loads(sel["coefficients"]), teacher["rule"])
    fit = read_manifest(run_dir).get("fit") or {}
    if not ok and fit.get("poor"):
        why = f"poor fit ({100 * fit['explained']:.1f} % explained); {why}"
    ver = pd.read_csv(run_dir / "verification.csv").set_index("rule")
    timings = read_manifest(run_dir).get("timings_s", {})
    return {"recovered": ok, "why": why, "selected": sel["equation"], "explained": fit.get("explained"),
            "verified": float(ver.loc[f"eq{sel['id']}", "relative_to_neural"]),
            "seconds": round(sum(timings.values()), 1)}


def markdown(setting: str, rows: list[dict]) -> str:
    n, ok = len(rows), sum(r["recovered"] for r in rows)
    lines = [f"**{setting}**: {ok} of {n} recovered ({ok / max(n, 1):.0%}); median "
             f"{np.median([r['seconds'] for r in rows]):.0f} s per rule", "",
             "| # | teacher | bounds | selected | explained | recovered | why not |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        ex = r.get("explained")
        lines.append(f"| {r['index']} | `{r['teacher']}` | {'[-1, 1]' if r['bounds'] else ''} | `{r['selected']}` | "
                     f"{'' if ex is None or ex != ex else f'{100 * ex:.1f} %'} | {'yes' if r['recovered'] else 'no'} "
                     f"| {r['why']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--run-one"]:  # a child of run_one
        setting, teacher, run_dir = argv[1], json.loads(argv[2]), Path(argv[3])
        r = _run_one(setting, teacher, run_dir)
        (run_dir / "benchmark_result.json").write_text(json.dumps(r, default=float))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rules", type=int, default=30, help="teachers per setting")
    ap.add_argument("--settings", default="rate_weights,rate_activity,spiking_open",
                    help=f"comma-separated, of {', '.join(SETTINGS)}")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shard", default="0/1", help="i/n: run rules i, i+n, ... (to run n processes side by side)")
    ap.add_argument("--out", default="runs/random_rules")
    ap.add_argument("--json", default=None, help="keep every result in this file, and reuse the rows it holds")
    ap.add_argument("--teachers-only", action="store_true", help="draw and print the teachers, run nothing")
    a = ap.parse_args(argv)
    settings = [s.strip() for s in a.settings.split(",") if s.strip()]
    bad = [s for s in settings if s not in SETTINGS]
    if bad or a.rules < 1:
        print(f"error: unknown setting {bad} (use {', '.join(SETTINGS)}) or --rules < 1", file=sys.stderr)
        return 2
    try:
        i, n = parse_shard(a.shard)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    store = Results(Path(a.json), a.seed) if a.json else None
    for setting in settings:
        teachers = draw_teachers(a.rules, setting, a.seed, log=lambda m: print(m, file=sys.stderr))
        rows = []
        for k, t in enumerate(teachers):
            if k % n != i:
                continue
            if a.teachers_only:
                print(f"{setting} {k}: {t['equation']}{' [-1, 1]' if t['bounds'] else ''}")
                continue
            key = {"index": k, "teacher": t["equation"], "bounds": t["bounds"]}
            row = store.get(setting, key) if store else None
            if row is None:
                row = {**key, **run_one(setting, t, Path(a.out) / setting / f"rule{k}")}
                if store and row["seconds"] == row["seconds"]:  # a failed process (nan s) is not kept
                    store.put(setting, row)
            rows.append(row)
            print(f"{setting} {k}: {'recovered' if row['recovered'] else 'NOT recovered'}  {t['equation']}  ->  "
                  f"{row['selected']}  {row['why']} ({row['seconds']} s)", file=sys.stderr, flush=True)
        if store:  # every shard's rows so far, in order
            rows = [r for r in (store.get(setting, {"index": k, "teacher": t["equation"], "bounds": t["bounds"]})
                                for k, t in enumerate(teachers)) if r is not None]
        if rows:
            print(markdown(setting, rows) + "\n")
    return 0


class Results:
    """The ``--json`` file as a cache shared by shards: a rule's row is written as soon as it
    is done (under a lock, so two shards can share one file) and reused by a later run when
    the teacher drawn for that index is the same, so a benchmark resumes across machines."""

    def __init__(self, path: Path, seed: int):
        self.path, self.seed = path, seed

    def _read(self) -> dict:
        return self._checked(json.loads(self.path.read_text()) if self.path.exists() and self.path.stat().st_size
                             else None)

    def _checked(self, d: dict | None) -> dict:
        if d is None:
            return {"seed": self.seed, "tolerance": TOLERANCE, "results": {}}
        if d.get("seed") != self.seed or d.get("tolerance") != TOLERANCE:
            raise SystemExit(f"error: {self.path} holds results for seed {d.get('seed')}, tolerance "
                             f"{d.get('tolerance')}; use another --json for seed {self.seed}")
        return d

    def get(self, setting: str, key: dict) -> dict | None:
        for r in self._read()["results"].get(setting, []):
            if all(r.get(k) == v for k, v in key.items()):
                return r
        return None

    def put(self, setting: str, row: dict) -> None:
        def add(held: dict | None) -> dict:
            d = self._checked(held)
            rows = [r for r in d["results"].get(setting, []) if r["index"] != row["index"]] + [row]
            d["results"][setting] = sorted(rows, key=lambda r: r["index"])
            d["rules"] = max(d.get("rules", 0), max(r["index"] for r in rows) + 1)
            return d

        update_json(self.path, add, default=float)


if __name__ == "__main__":
    raise SystemExit(main())
