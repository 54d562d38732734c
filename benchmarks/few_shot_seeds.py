"""Few-shot classification over meta-training seeds (issue 13): the classification table of
``configs/digits_few_shot.toml`` (or another ``few_shot`` config) with the rule meta-trained,
distilled and verified once per seed.

    .venv/bin/python benchmarks/few_shot_seeds.py configs/digits_few_shot.toml --seeds 5 --out /tmp/few_shot

Each seed sets ``[meta] seed`` (the rule's episodes and initial parameters) and runs the whole
pipeline into ``OUT/seed_<k>`` (a finished seed's directory is reused, so an interrupted run
resumes; delete a seed's ``classification.csv`` to distill and verify its rule again). The baselines do not depend on the meta-training seed: their rows are the run's
own (5 evaluation seeds, each ``eval_episodes`` held-out episodes). ``neural`` and
``equation``: the mean over meta-training seeds of each run's held-out accuracy, with a
95 % t-interval over those seeds, and each seed's selected equation. Writes
``benchmarks/results/few_shot_<config>.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats


def run_seed(config: Path, seed: int, out: Path) -> pd.DataFrame:
    import tomllib

    from discover import stage as dstage
    from discover.config import config_from_dict
    from distill import stage as sstage
    from distill import verify

    table = out / "classification.csv"
    if table.exists():
        return pd.read_csv(table)
    d = tomllib.loads(config.read_text())
    d["meta"]["seed"] = seed
    cfg = config_from_dict(d)
    t0 = time.perf_counter()
    if not (out / "rule" / "params.npz").exists():  # a seed meta-trained before: distilled and verified again
        dstage.run(cfg, out, progress=False)
    sstage.run(cfg, out, progress=False)
    verify.run(cfg, out, progress=False)
    print(f"seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)
    return pd.read_csv(table)


def summary(tables: dict[int, pd.DataFrame]) -> pd.DataFrame:
    rows = []
    first = next(iter(tables.values())).set_index("method")
    for method in first.index:
        accs = np.array([t.set_index("method").loc[method, "accuracy_mean"] for t in tables.values()])
        if method in ("neural", "equation") and len(accs) > 1:
            half = float(stats.t.ppf(0.975, len(accs) - 1) * accs.std(ddof=1) / np.sqrt(len(accs)))
            lo, hi, what = accs.mean() - half, accs.mean() + half, f"{len(accs)} meta-training seeds"
        else:
            lo, hi = first.loc[method, "ci_low"], first.loc[method, "ci_high"]
            what = f"{int(first.loc[method, 'seeds'])} evaluation seeds"
        rows.append({"method": method, "accuracy_mean": float(accs.mean()), "ci_low": float(lo), "ci_high": float(hi),
                     "over": what, "per_seed": [round(float(a), 4) for a in accs]})
    return pd.DataFrame(rows)


def markdown(df: pd.DataFrame, equations: dict[int, str], config: str) -> str:
    lines = [f"# Few-shot classification: `{config}` over meta-training seeds", "",
             "Query accuracy on held-out classes (mean and 95 % t-interval).", "",
             "| method | accuracy | 95 % interval | over |", "|---|---|---|---|"]
    for _, r in df.iterrows():
        lines.append(f"| {r['method']} | {100 * r['accuracy_mean']:.1f} % | [{100 * r['ci_low']:.1f}, "
                     f"{100 * r['ci_high']:.1f}] | {r['over']} |")
    lines += ["", "Selected equations:", ""]
    lines += [f"- seed {s}: `dw = {e}`" for s, e in equations.items()]
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--out", default="few_shot_seeds")
    ap.add_argument("--results", default="benchmarks/results")
    args = ap.parse_args(argv)
    config = Path(args.config)
    if not config.exists():
        print(f"error: no config {config}", file=sys.stderr)
        return 2
    out = Path(args.out)
    tables, equations = {}, {}
    for s in range(args.seeds):
        tables[s] = run_seed(config, s, out / f"seed_{s}")
        row = tables[s].set_index("method")
        equations[s] = str(row.loc["equation", "equation"]) if "equation" in row.index else ""
    df = summary(tables)
    res = Path(args.results)
    res.mkdir(parents=True, exist_ok=True)
    stem = res / f"few_shot_{config.stem}"
    stem.with_suffix(".md").write_text(markdown(df, equations, str(config)))
    stem.with_suffix(".json").write_text(json.dumps({"config": str(config), "summary": df.to_dict("records"),
                                                     "equations": equations}, indent=1))
    print(markdown(df, equations, str(config)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
