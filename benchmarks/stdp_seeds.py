"""Run configs/stdp_pair.toml and configs/stdp_triplet.toml with several seeds and tabulate
what they recover: the selected equation, its error against the teacher's coefficients,
the learned trace time constants, verification, wall time.

    .venv/bin/python benchmarks/stdp_seeds.py --seeds 0 1 2 --out runs/stdp_seeds [--configs stdp_pair]

Prints a markdown table per config (the ones in the issue notes and README.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd
import sympy

sys.path.insert(0, str(Path(__file__).resolve().parent))
from oja_seeds import markdown  # noqa: E402

from discover.vocabulary import SYMBOLS  # noqa: E402
from plasticity.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
S = SYMBOLS
# the teachers of the configs: pair STDP with A_plus = 0.05, A_minus = 0.0525 (configs/stdp_pair.toml);
# Pfister & Gerstner 2006, Table 4, visual cortex minimal all-to-all (A3_plus 6.5e-3, A2_minus 7.1e-3)
TRUTH = {
    "stdp_pair": {S["s_post"] * S["tr_pre"]: 0.05, S["s_pre"] * S["tr_post"]: -0.0525},
    "stdp_triplet": {S["s_post"] * S["tr_pre"] * S["tr_post_slow"]: 6.5e-3, S["s_pre"] * S["tr_post"]: -7.1e-3},
}
TEACHER_TAUS = {"stdp_pair": {"tau_pre": 20.0, "tau_post": 20.0}}


def summarize(run_dir: Path, name: str) -> dict:
    from discover.build import load_rule
    from discover.io import selected_equation

    sel = selected_equation(run_dir)
    coefs = {sympy.sympify(t, locals=S): v["value"] for t, v in json.loads(sel["coefficients"]).items()}
    truth = TRUTH[name]
    errors = [abs(coefs[t] / v - 1) if t in coefs else float("nan") for t, v in truth.items()]
    ver = pd.read_csv(run_dir / "verification.csv").set_index("rule")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    out = {
        "equation": sel["equation"],
        "exact terms": set(coefs) == set(truth),
        "max coefficient error": max(errors),
    }
    if name in TEACHER_TAUS:
        rule, params = load_rule(run_dir)
        tau = {k: float(v) for k, v in rule.tau(params).items()}
        out["tau_pre / tau_post (ms)"] = f"{tau['tau_pre']:.2f} / {tau['tau_post']:.2f}"
    out["verified vs neural"] = ver.loc[f"eq{sel['id']}", "relative_to_neural"]
    out["seconds (discover+distill+verify)"] = round(sum(manifest.get("timings_s", {}).values()), 1)
    return out


def run(config: str, seeds, out: Path) -> pd.DataFrame:
    rows = []
    for seed in seeds:
        d = out / config / f"seed{seed}"
        if not (d / "verification.csv").exists():
            code = main(["run", str(ROOT / "configs" / f"{config}.toml"), "--out", str(d), "--set",
                         f"meta.seed={seed}", "--quiet"])
            if code:
                raise SystemExit(code)
        rows.append({"seed": seed, **summarize(d, config)})
    return pd.DataFrame(rows)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--configs", nargs="+", default=list(TRUTH), choices=list(TRUTH))
    ap.add_argument("--out", type=Path, default=Path("runs/stdp_seeds"))
    args = ap.parse_args()
    for config in args.configs:
        print(f"\n{config}\n")
        print(markdown(run(config, args.seeds, args.out)))
