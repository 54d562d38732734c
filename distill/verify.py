"""Re-verification: every rule, run again in the same simulator on held-out episodes.

For the neural rule, every equation on the front, the canonical rules of the network
kind and (for ``imitate``) the teacher, the task's objective (higher is better,
``1 - meta-loss``) is measured per held-out episode; ``verification.csv`` holds its mean,
a 95 % bootstrap interval over episodes, and the ratio to the neural rule's mean.

Canonical rules are compared at their best overall scale: their published form is
multiplied by the factor that best matches the neural rule's ``dw`` where the network
visits (least squares), so that a canonical rule is not judged on an arbitrary learning
rate. Equations use the trace time constants of the neural rule, whose ``dw`` they fit.
"""

from __future__ import annotations

import time
from pathlib import Path

import jax
import numpy as np
import pandas as pd

from discover.build import build_task, load_rule
from discover.config import Config
from discover.io import update_manifest, write_csv
from discover.rules import CANONICAL, SymbolicRule, canonical_rule
from discover.vocabulary import names_for

from .stage import load_equations, load_run_config

COLUMNS = ["rule", "kind", "equation", "objective_mean", "objective_ci_low", "objective_ci_high",
           "relative_to_neural"]


def bootstrap_mean_ci(values, level=0.95, n_boot=2000, seed=0):
    v = np.asarray(values, np.float64)
    if not np.all(np.isfinite(v)):  # a rule that made the weights diverge in some episode
        return float(np.nan_to_num(v, nan=-np.inf).mean()), -np.inf, -np.inf
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), (n_boot, len(v)))].mean(axis=1)
    a = (1 - level) / 2
    return float(v.mean()), float(np.quantile(means, a)), float(np.quantile(means, 1 - a))


def episode_scores(task, rule, params, episodes) -> np.ndarray:
    fn = jax.jit(jax.vmap(lambda e: task.score(rule, params, e)))
    return np.asarray(fn(episodes), np.float64)


def canonical_scale(task, neural, nparams, candidate, cparams, episodes) -> float:
    """Least-squares factor ``c`` with ``c * candidate(locals) ~ neural(locals)``."""
    locs = jax.vmap(lambda e: task.visited(neural, nparams, e))(episodes)
    a = np.asarray(candidate(cparams, locs), np.float64).ravel()
    b = np.asarray(neural(nparams, locs), np.float64).ravel()
    denom = float(a @ a)
    return float(a @ b / denom) if denom > 0 else 0.0


def run(cfg: Config | None, run_dir: str | Path, progress: bool = True) -> pd.DataFrame:
    run_dir = Path(run_dir)
    cfg = cfg or load_run_config(run_dir)
    t0 = time.perf_counter()
    neural, nparams = load_rule(run_dir)
    task = build_task(cfg)
    episodes = task.sample(jax.random.key(20_000 + cfg.verify.seed), cfg.verify.episodes)
    timescales = {k: float(v) for k, v in neural.tau(nparams).items()}
    rows = []

    def add(name, kind, equation, rule, params):
        scores = episode_scores(task, rule, params, episodes)
        if not np.all(np.isfinite(scores)):
            scores = np.where(np.isfinite(scores), scores, -np.inf)
        mean, lo, hi = bootstrap_mean_ci(scores, seed=cfg.verify.seed)
        rows.append({"rule": name, "kind": kind, "equation": equation, "objective_mean": mean,
                     "objective_ci_low": lo, "objective_ci_high": hi})
        if progress:
            print(f"verify: {name:<16} objective {mean:.4f} [{lo:.4f}, {hi:.4f}]", flush=True)

    add("neural", "neural", "", neural, nparams)
    eqs = load_equations(run_dir)
    for _, row in eqs.iterrows():
        rule = SymbolicRule.from_string(str(row["sympy"]), {}, timescales=timescales, label=f"eq{row['id']}")
        add(f"eq{row['id']}", "equation", str(row["equation"]), rule, rule.init(jax.random.key(0)))
    probe = jax.tree_util.tree_map(lambda a: a[:4], episodes)
    kind = cfg.network.kind
    names = set(names_for(kind))
    wanted = cfg.verify.canonical if cfg.verify.canonical is not None else [
        n for n, c in CANONICAL.items() if c.network == kind]
    for name in wanted:
        base = canonical_rule(name)
        if not set(base.inputs) <= names:
            continue
        bparams = base.init(jax.random.key(0))
        c = canonical_scale(task, neural, nparams, base, bparams, probe)
        scaled = SymbolicRule.from_expr(c * base.bound_expr(), {}, timescales=dict(base.timescales), label=name)
        add(name, "canonical", _fmt(scaled.expr), scaled, scaled.init(jax.random.key(0)))
    teacher = getattr(task, "teacher", None)
    if teacher is not None:
        add("teacher", "teacher", _fmt(teacher.bound_expr()), teacher, teacher.init(jax.random.key(0)))
    df = pd.DataFrame(rows, columns=COLUMNS[:-1])
    neural_mean = df.loc[df["kind"] == "neural", "objective_mean"].iloc[0]
    df["relative_to_neural"] = df["objective_mean"] / neural_mean if neural_mean != 0 else np.nan
    write_csv(run_dir / "verification.csv", df)
    if cfg.distill.policy == "verified":
        select_verified(run_dir, eqs, df, cfg.distill.verified_tolerance)
    update_manifest(run_dir, timings_s={"verify": round(time.perf_counter() - t0, 2)})
    return df


def select_verified(run_dir: Path, eqs: pd.DataFrame, ver: pd.DataFrame, tol: float = 0.02) -> int:
    """The ``verified`` policy: the simplest equation whose objective in the simulator is
    within a relative ``tol`` of the best equation's (a parsimony tolerance, as PySR's
    ``best`` allows 1.5x the minimum loss); rewrites ``selected`` in ``equations.csv``."""
    scores = ver.set_index("rule")["objective_mean"]
    obj = np.array([scores.get(f"eq{i}", -np.inf) for i in eqs["id"]])
    top = np.max(obj)
    ok = np.flatnonzero(obj >= top - tol * abs(top))
    pick = ok[np.argmin(eqs["complexity"].to_numpy()[ok])]
    eqs = eqs.copy()
    eqs["selected"] = False
    eqs.loc[eqs.index[pick], "selected"] = True
    write_csv(run_dir / "equations.csv", eqs)
    return int(eqs["id"].iloc[pick])


def _fmt(expr) -> str:
    import sympy

    from .simplify import round_expr

    return str(round_expr(expr, 4))


__all__ = ["run", "COLUMNS"]
