"""Run the default demo (configs/oja.toml) with several seeds and tabulate the recovered
equation: Oja coefficient ratio, other terms, verification, wall time.

    .venv/bin/python benchmarks/oja_seeds.py --seeds 0 1 2 --out runs/oja_seeds

Prints a markdown table (the one in README.md).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
import sympy

from discover.vocabulary import SYMBOLS
from plasticity.cli import main


def summarize(run_dir: Path) -> dict:
    from discover.io import selected_equation

    sel = selected_equation(run_dir)
    coefs = {sympy.sympify(t, locals=SYMBOLS): v for t, v in json.loads(sel["coefficients"]).items()}
    x, y, w = SYMBOLS["x"], SYMBOLS["y"], SYMBOLS["w"]
    a, b = coefs.get(x * y, {"value": float("nan")}), coefs.get(w * y**2, {"value": float("nan")})
    big = max(abs(v["value"]) for v in coefs.values())
    others = sum(abs(v["value"]) for t, v in coefs.items() if t not in (x * y, w * y**2))
    ver = pd.read_csv(run_dir / "verification.csv").set_index("rule")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    return {
        "equation": sel["equation"],
        "ratio": -b["value"] / a["value"],
        "x*y CI": f"[{a.get('ci_low', float('nan')):.4g}, {a.get('ci_high', float('nan')):.4g}]",
        "others/largest": others / big,
        "verified vs neural": ver.loc[f"eq{sel['id']}", "relative_to_neural"],
        "neural objective": ver.loc["neural", "objective_mean"],
        "seconds (discover+distill+verify)": round(sum(manifest.get("timings_s", {}).values()), 1),
    }


def markdown(df: pd.DataFrame) -> str:
    def fmt(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def run(seeds, out: Path) -> pd.DataFrame:
    rows = []
    for seed in seeds:
        d = out / f"seed{seed}"
        if not (d / "verification.csv").exists():
            code = main(["run", "--out", str(d), "--set", f"meta.seed={seed}", "--quiet"])
            if code:
                raise SystemExit(code)
        rows.append({"seed": seed, **summarize(d)})
    return pd.DataFrame(rows)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", type=Path, default=Path("runs/oja_seeds"))
    args = ap.parse_args()
    print(markdown(run(args.seeds, args.out)))
