"""Inhibitory balance (Vogels, Sprekeler, Zenke, Clopath & Gerstner 2011, Science 334:1569):
the rate and the detailed balance that each rule leaves, on held-out tunings.

    .venv/bin/python benchmarks/inhibitory_balance.py RUN_DIR [--episodes 32] [--out FILE.md]

``RUN_DIR`` is a run of ``configs/inhibitory_balance.toml`` (``plasticity run``). On
``--episodes`` held-out episodes (a new preferred channel, tuning noise and input signals
each; verification's seed) every rule learns for the episode and is then scored as the task
scores it: the output rate of its final weights, frozen, on the episode's inputs
(``frozen_rate``), and the correlation over channels of the mean excitatory and mean
inhibitory weight (``tuning_correlation``: detailed balance). Rules: the neural rule, the
selected equation, Vogels et al.'s rule at ``alpha = 2*rho0*tau`` (``vogels2011``), the same
rule with the ``alpha`` of the selected equation, and no plasticity. The table gives means
with 95 % bootstrap intervals.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from oja_seeds import markdown  # noqa: E402

from discover.build import build_task, load_rule  # noqa: E402
from discover.config import load_config  # noqa: E402
from discover.equations import parse_equation  # noqa: E402
from discover.io import selected_equation  # noqa: E402
from discover.rules import canonical_rule  # noqa: E402
from distill.verify import bootstrap_mean_ci, row_rule  # noqa: E402


def vogels_terms(equation: str) -> dict:
    """``eta_post`` (coefficient of ``s_post*tr_pre``), ``eta_pre`` (of ``s_pre*tr_post``) and
    ``alpha = -(coefficient of s_pre) / eta_pre`` of an equation, NaN where a term is absent."""
    import sympy

    from discover.vocabulary import SYMBOLS as S

    expr = sympy.expand(parse_equation(equation))
    coef = {t: float(c) for t, c in expr.as_coefficients_dict().items()}
    eta_pre = coef.get(S["s_pre"] * S["tr_post"], float("nan"))
    return {"eta_post": coef.get(S["s_post"] * S["tr_pre"], float("nan")), "eta_pre": eta_pre,
            "alpha": -coef.get(S["s_pre"], 0.0) / eta_pre if eta_pre == eta_pre and eta_pre else float("nan"),
            "other_terms": sorted(str(t) for t in coef if t not in (S["s_post"] * S["tr_pre"],
                                                                    S["s_pre"] * S["tr_post"], S["s_pre"]))}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir")
    ap.add_argument("--episodes", type=int, default=32)
    ap.add_argument("--out", default="benchmarks/results/inhibitory_balance.md")
    args = ap.parse_args(argv)
    run = Path(args.run_dir)
    cfg = load_config(run / "config.toml")
    task = build_task(cfg)
    neural, nparams = load_rule(run)
    timescales = {k: float(v) for k, v in neural.tau(nparams).items()}
    sel = selected_equation(run)
    eq = row_rule(sel, timescales, neural)
    terms = vogels_terms(str(sel["sympy"]))
    rho0 = cfg.task.target_rate
    alpha0 = 2 * rho0 * 1e-3 * 20.0  # Vogels et al. 2011: alpha = 2 * rho0 * tau_STDP
    rules = {"neural": (neural, nparams), f"eq{sel['id']} (selected)": (eq, eq.init(jax.random.key(0)))}
    for name, ref in task.references().items():
        rules[name] = (ref, ref.init(jax.random.key(0)))
    if terms["alpha"] == terms["alpha"]:
        v = canonical_rule("vogels_istdp", {"alpha": terms["alpha"]}, label="vogels_alpha_of_eq")
        rules[f"vogels2011, alpha = {terms['alpha']:.3g}"] = (v, v.init(jax.random.key(0)))
    eps = task.keep_valid(task.sample(jax.random.key(20_000 + cfg.verify.seed), args.episodes))
    rows = []
    for name, (rule, params) in rules.items():
        def one(e, rule=rule, params=params):
            out = task.simulate(rule, params, e)
            return task.output_rate(out, e), task.tuning_correlation(out.final["W"])

        rate, corr = (np.asarray(a, np.float64) for a in jax.jit(jax.vmap(one))(eps))
        r, rlo, rhi = bootstrap_mean_ci(rate)
        c, clo, chi = bootstrap_mean_ci(corr)
        rows.append({"rule": name, "rate_hz": round(r, 2), "rate_ci": f"[{rlo:.2f}, {rhi:.2f}]",
                     "within_10pct": bool(abs(r - rho0) <= 0.1 * rho0), "tuning_corr": round(c, 3),
                     "corr_ci": f"[{clo:.3f}, {chi:.3f}]"})
        print(rows[-1], flush=True)
    head = (f"# Inhibitory balance, {len(rate)} held-out tunings (`{run}`)\n\n"
            f"Selected equation: `dw = {sel['equation']}`; its Vogels terms: eta_post = {terms['eta_post']:.4g}, "
            f"eta_pre = {terms['eta_pre']:.4g}, alpha = {terms['alpha']:.4g} (2*rho0*tau = {alpha0:g}: "
            f"{100 * (terms['alpha'] / alpha0 - 1):+.0f} %); other terms: {', '.join(terms['other_terms']) or 'none'}.\n"
            f"Target rate {rho0:g} Hz. Command: `.venv/bin/python benchmarks/inhibitory_balance.py {run} "
            f"--episodes {args.episodes}`.\n\n")
    import pandas as pd

    text = head + markdown(pd.DataFrame(rows)) + "\n"
    Path(args.out).write_text(text)
    Path(args.out).with_suffix(".json").write_text(json.dumps({"terms": terms, "rows": rows}, indent=1))
    print(text)


if __name__ == "__main__":
    main()
