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

import io
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from discover.build import available_variables, build_task, load_rule
from discover.config import Config
from discover.io import atomic_write_bytes, read_manifest, selected_equation, update_manifest, write_csv
from discover.rules import CANONICAL, SymbolicRule, canonical_rule
from discover.tasks.base import Task
from discover.tasks.view import SynapseView

from .simplify import format_equation
from .stage import load_equations, load_run_config, run_timescales

COLUMNS = ["rule", "kind", "equation", "objective_mean", "objective_ci_low", "objective_ci_high",
           "relative_to_neural", "selected", "diverged"]


def bootstrap_mean_ci(values, level=0.95, n_boot=2000, seed=0):
    v = np.asarray(values, np.float64)
    if not np.all(np.isfinite(v)):  # a rule that made the weights diverge in some episode
        return float(np.nan_to_num(v, nan=-np.inf).mean()), -np.inf, -np.inf
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), (n_boot, len(v)))].mean(axis=1)
    a = (1 - level) / 2
    return float(v.mean()), float(np.quantile(means, a)), float(np.quantile(means, 1 - a))


def episode_scores(task, rule, params, episodes) -> tuple[np.ndarray, np.ndarray]:
    """Each episode's objective, and the time step at which the rule's weights left
    ``[task] max_weight`` there (-1: never; also for a task with its own ``episode_score``)."""
    # a task's own scoring is respected (a synapse view's: its task's)
    if type(getattr(task, "task", task)).episode_score is not Task.episode_score:
        fn = jax.jit(jax.vmap(lambda e: task.episode_score(rule, params, e)))
        scores = np.asarray(fn(episodes), np.float64)
        return scores, np.full(len(scores), -1)

    def one(e):
        r = task.simulate(rule, params, e)
        return task.score(r, e), (jnp.asarray(-1) if r.diverged_at is None else r.diverged_at)

    scores, at = jax.jit(jax.vmap(one))(episodes)
    return np.asarray(scores, np.float64), np.asarray(at)


def canonical_scale(task, neural, nparams, candidate, cparams, episodes) -> float:
    """Least-squares factor ``c`` with ``c * candidate(locals) ~ neural(locals)``."""
    locs = jax.vmap(lambda e: task.visited(neural, nparams, e))(episodes)
    a = np.asarray(candidate(cparams, locs), np.float64).ravel()
    b = np.asarray(neural(nparams, locs), np.float64).ravel()
    denom = float(a @ a)
    return float(a @ b / denom) if denom > 0 else 0.0


def row_rule(row, timescales: dict[str, float], neural) -> SymbolicRule:
    """The rule of an ``equations.csv`` row, as it is verified: its time constants (the
    neural rule's, with the row's refitted ones over them) and the neural rule's trace mode."""
    return SymbolicRule.from_string(str(row["sympy"]), {}, timescales=run_timescales(row, timescales),
                                    label=f"eq{row['id']}", traces=neural.traces)


def run(cfg: Config | None, run_dir: str | Path, progress: bool = True) -> pd.DataFrame:
    run_dir = Path(run_dir)
    cfg = cfg or load_run_config(run_dir)
    t0 = time.perf_counter()
    read_manifest(run_dir)  # every input read and checked before any work or write
    neural, nparams = load_rule(run_dir)
    eqs = load_equations(run_dir)
    task = build_task(cfg)
    episodes = task.keep_valid(task.evaluation_sample(jax.random.key(20_000 + cfg.verify.seed), cfg.verify.episodes))
    timescales = {k: float(v) for k, v in neural.tau(nparams).items()}
    rows = []

    types = getattr(neural, "types", ())  # one rule per synapse type: each equation runs on its own type's synapses
    views = {t: SynapseView(task, t, neural, nparams) for t in types}

    def add(name, kind, equation, rule, params, on=None):
        scores, at = episode_scores(on or task, rule, params, episodes)
        mean, lo, hi = bootstrap_mean_ci(scores, seed=cfg.verify.seed)
        n_div = int((at >= 0).sum())
        rows.append({"rule": name, "kind": kind, "equation": equation, "objective_mean": mean,
                     "objective_ci_low": lo, "objective_ci_high": hi, "diverged": n_div})
        if progress:
            print(f"verify: {name:<16} objective {mean:.4f} [{lo:.4f}, {hi:.4f}]", flush=True)
        if n_div:  # said even when quiet: the objective counts these episodes as failures
            print(f"note: verify: the weights under {name} ({equation or kind}) left +-{task.w_limit:g} ([task] "
                  f"max_weight) in {n_div} of {len(at)} episodes, first at time step {int(at[at >= 0].min())}; "
                  "those episodes score as a rule that does nothing", file=sys.stderr)

    add("neural", "neural", "", neural, nparams)
    for _, row in eqs.iterrows():
        t = row_synapse(row, types)
        rule = row_rule(row, *type_rule(neural, nparams, t))
        add(f"eq{row['id']}", "equation", str(row["equation"]), rule, rule.init(jax.random.key(0)), views.get(t))
    probe = jax.tree_util.tree_map(lambda a: a[:4], episodes)
    kind = task.network.kind
    names = set(available_variables(task))
    # a run of inhibitory synapses is compared with the rules for those (Vogels et al. 2011's)
    pop = "inh" if getattr(task.network, "plastic", "all") == "inh" else ""
    wanted = cfg.verify.canonical if cfg.verify.canonical is not None else [
        n for n, c in CANONICAL.items() if c.network == kind and c.population == pop]
    if types:  # a canonical rule is one type's: the task's references() pair them
        if cfg.verify.canonical:
            print(f"note: verify: [verify] canonical is not run on network {kind}, which has one rule per synapse "
                  f"type ({', '.join(types)}); its published rules are the task's references", file=sys.stderr)
        wanted = []
    for name in wanted:
        base = canonical_rule(name)
        if not set(base.inputs) <= names:
            continue
        bparams = base.init(jax.random.key(0))
        c = canonical_scale(task, neural, nparams, base, bparams, probe)
        scaled = SymbolicRule.from_expr(c * base.bound_expr(), {}, timescales=dict(base.timescales), label=name,
                                        traces=base.traces)
        add(name, "canonical", format_equation(scaled.expr), scaled, scaled.init(jax.random.key(0)))
    for name, ref in task.references().items():
        # kind "teacher": a rule the task itself supplies as the reference (imitate's teacher);
        # "published": a published fit to the task's data (fit_protocols); "baseline": a
        # hand-made rule to beat (error_driven's no plasticity)
        add(name, task.reference_kind(), rule_text(ref), ref, ref.init(jax.random.key(0)))
    df = pd.DataFrame(rows, columns=[c for c in COLUMNS if c not in ("relative_to_neural", "selected")])
    neural_mean = df.loc[df["kind"] == "neural", "objective_mean"].iloc[0]
    df["relative_to_neural"] = df["objective_mean"] / neural_mean if neural_mean != 0 else np.nan
    df["selected"] = False
    if cfg.distill.policy == "verified":
        for t in types or (None,):
            part = eqs if t is None else eqs[eqs["synapse"].astype(str) == t]
            df.loc[df["rule"] == f"eq{select_verified(part, df, cfg.distill.verified_tolerance)}", "selected"] = True
    if cfg.distill.policy == "aic":
        fit = information_table(task, neural, eqs, df)
        best = fit[fit["kind"] == "equation"]["aic"].idxmin()
        df.loc[df["rule"] == fit.at[best, "rule"], "selected"] = True
        write_csv(run_dir / "fit.csv", fit)
    all_eqs = None
    if types:  # every type's selected equation at once: the network run by equations alone
        picks = selected_rows(eqs, df, types)
        all_eqs = equation_set(picks, neural, nparams)
        add("equations", "equations", "; ".join(f"{t}: {r['equation']}" for t, r in picks.items()), *all_eqs)
        last = rows[-1]
        last["relative_to_neural"] = last["objective_mean"] / neural_mean if neural_mean != 0 else np.nan
        last["selected"] = False
        df = pd.concat([df, pd.DataFrame([last])], ignore_index=True)
    df = df[COLUMNS]
    write_csv(run_dir / "verification.csv", df)
    chosen = {"neural": (neural, nparams)}
    sel = selected_equation(run_dir)
    if sel is not None and not types:
        eq = row_rule(sel, timescales, neural)
        chosen["selected"] = (eq, eq.init(jax.random.key(0)))
    chosen.update({name: (ref, ref.init(jax.random.key(0))) for name, ref in task.references().items()})
    data = task.data_predictions(chosen)
    if data is not None:
        write_csv(run_dir / "data_fit.csv", data)
    if all_eqs is not None:  # every type's selected equation at once, second as for one type
        chosen = {"neural": chosen.pop("neural"), "selected": all_eqs, **chosen}
    behaviour = task.behaviour(chosen, episodes)
    if behaviour is not None:
        write_csv(run_dir / "behaviour.csv", behaviour_table(behaviour, cfg.verify.seed))
    table = task.classification(chosen)
    if table is not None:
        write_csv(run_dir / "classification.csv", table)
    write_trajectories(run_dir, task, neural, nparams, episodes, timescales)
    update_manifest(run_dir, timings_s={"verify": round(time.perf_counter() - t0, 2)})
    return df


def behaviour_table(rows, seed: int = 0) -> pd.DataFrame:
    """``behaviour.csv`` from a task's :meth:`~discover.tasks.base.Task.behaviour`: per
    ``(rule, metric, at)`` the mean over episodes and its 95 % bootstrap interval."""
    out = []
    for rule, metric, at, values in rows:
        mean, lo, hi = bootstrap_mean_ci(np.asarray(values, np.float64), seed=seed)
        out.append({"rule": rule, "metric": metric, "at": np.nan if at is None else float(at), "mean": mean,
                    "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(out, columns=["rule", "metric", "at", "mean", "ci_low", "ci_high"])


def rule_text(rule) -> str:
    """A reference rule's equation as ``verification.csv`` writes it: a symbolic rule's
    right-hand side, ``"ff: ...; lat: ..."`` for one per synapse type, else blank."""
    if isinstance(rule, SymbolicRule):
        return format_equation(rule.bound_expr())
    parts = [(t, rule_text(r)) for t, r in getattr(rule, "rules", ())]
    return "; ".join(f"{t}: {text}" for t, text in parts) if parts and all(text for _, text in parts) else ""


def row_synapse(row, types) -> str | None:
    """The synapse type of an ``equations.csv`` row (``None`` for a network with one type)."""
    if not types:
        return None
    t = str(row.get("synapse", ""))
    if t not in types:
        from discover.io import RunDirError

        raise RunDirError(f"equations.csv row {row['id']} names synapse type {t!r}, which the trained rule set does "
                          f"not have ({', '.join(types)}); rerun `plasticity distill DIR`")
    return t


def type_rule(neural, nparams, synapse):
    """``(time constants, rule)`` an equation of ``synapse``'s type is compiled with: that
    type's neural rule's (the network's neural rule for ``None``)."""
    rule, params = (neural, nparams) if synapse is None else neural.part(nparams, synapse)
    return {k: float(v) for k, v in rule.tau(params).items()}, rule


def selected_rows(eqs: pd.DataFrame, ver: pd.DataFrame | None, types) -> dict:
    """``{type: row}``: each synapse type's selected equation (verification's pick where it
    made one, else distillation's)."""
    picked = set() if ver is None else {str(r)[2:] for r in ver.loc[ver["selected"].astype(bool), "rule"]
                                        if str(r).startswith("eq")}
    out = {}
    for t in types:
        part = eqs[eqs["synapse"].astype(str) == t]
        hit = part[part["id"].astype(str).isin(picked)]
        if not len(hit):
            hit = part[part["selected"].astype(str).str.lower().isin(("true", "1"))] if "selected" in part else part[:0]
        if len(hit):
            out[t] = hit.iloc[0]
    return out


def equation_set(picks: dict, neural, nparams):
    """The network's rule with every type's neural rule replaced by its selected equation."""
    rule, params = neural, nparams
    for t, row in picks.items():
        eq = row_rule(row, *type_rule(neural, nparams, t))
        rule, params = rule.replace(params, t, eq, eq.init(jax.random.key(0)))
    return rule, params


def free_parameters(expr_text: str, learned: tuple[str, ...]) -> int:
    """Fitted numbers of an equation: its terms' coefficients and the learned time constants
    its traces read."""
    from discover.equations import parse_equation
    from discover.rules.base import timescales_read

    from .simplify import terms

    expr = parse_equation(expr_text)
    return len(terms(expr)) + len(timescales_read({v.name for v in expr.free_symbols}, learned))


def information_table(task, neural, eqs: pd.DataFrame, ver: pd.DataFrame) -> pd.DataFrame:
    """``fit.csv`` of the ``aic`` policy: for every equation and published reference, the
    mean meta-loss (fit_protocols: ``E``), the free parameters ``k``, the chi-square and
    Akaike's criterion ``AIC = chi2 + 2k`` (Akaike 1974, IEEE Trans. Autom. Control 19:716;
    for Gaussian errors of known s.d., chi-square is -2 log-likelihood up to a constant).
    The equation of least AIC is the selected one: the fit the data support with the fewest
    numbers."""
    from discover.rules import PFISTER_GERSTNER, pfister_gerstner_free

    rows = []
    learned = neural.learned_timescales
    for _, r in ver.iterrows():
        loss = -float(r["objective_mean"])
        if r["kind"] == "equation":
            row = eqs[eqs["id"].astype(str) == str(r["rule"])[2:]].iloc[0]
            k = free_parameters(str(row["sympy"]), learned)
        elif r["kind"] == "published" and str(r["rule"]).removeprefix("pg2006_") in PFISTER_GERSTNER:
            k = pfister_gerstner_free(str(r["rule"]).removeprefix("pg2006_"))
        else:
            continue
        chi2 = task.chi_square(loss)
        rows.append({"rule": r["rule"], "kind": r["kind"], "equation": r["equation"], "loss": loss,
                     "free_parameters": k, "chi_square": chi2, "aic": chi2 + 2 * k})
    return pd.DataFrame(rows)


def select_verified(eqs: pd.DataFrame, ver: pd.DataFrame, tol: float = 0.02):
    """The ``verified`` policy: the simplest equation whose objective in the simulator is
    within a relative ``tol`` of the best equation's (a parsimony tolerance, as PySR's
    ``best`` allows 1.5x the minimum loss) and not measurably worse than it: its
    confidence interval reaches the best one's (so a simpler equation that explains
    99.7 % where the best explains 100 %, on every held-out episode, is not taken for
    it). Returns its id; verification marks it in its own file (``verification.csv``,
    column ``selected``), distill's file is left alone."""
    v = ver.set_index("rule")
    def col(name, fill):
        return np.array([v[name].get(f"eq{i}", fill) if name in v else fill for i in eqs["id"]], np.float64)

    obj = col("objective_mean", -np.inf)
    hi = col("objective_ci_high", np.inf)
    best = int(np.argmax(obj))
    top, top_lo = obj[best], col("objective_ci_low", -np.inf)[best]
    ok = np.flatnonzero((obj >= top - tol * abs(top)) & (np.nan_to_num(hi, nan=np.inf) >= top_lo))
    pick = ok[np.argmin(eqs["complexity"].to_numpy()[ok])]
    return eqs["id"].iloc[pick]


#: Most synapses whose weights ``trajectories.npz`` keeps (oja_pca keeps its one neuron's
#: whole weight vector, which the alignment with the first principal component needs).
MAX_SYNAPSES = 8


def write_trajectories(run_dir: str | Path, task, neural, nparams, episodes, timescales: dict[str, float]) -> Path:
    """Write ``trajectories.npz``: weights of a few synapses over the first held-out episode.

    The neural rule and the selected equation of ``equations.csv`` (when a row is selected)
    are run from the episode's initial weights on its inputs; the teacher's trajectory
    (``imitate``) is the one the episode carries. Weights are those recorded every
    ``record_every`` steps, at times ``t_i = (i + 1) * record_every * dt`` (``dt`` of a
    spiking network in ms; for rate networks ``dt = 1`` and time is counted in steps).

    Arrays: ``t [R]``, ``time_unit`` (``"steps"`` or ``"ms"``), ``synapses [S, 2]``
    (``(post, pre)`` of each kept synapse: the first ``min(8, post * pre)`` in row-major
    order; for ``oja_pca`` all of its single neuron's), ``W0 [S]``, ``W_neural [R, S]``,
    and when available ``W_selected [R, S]`` with ``selected_id`` and
    ``selected_equation``, ``W_teacher [R, S]`` (``imitate``), ``pc1 [pre]`` (``oja_pca``).

    Args:
      run_dir: the run directory (``equations.csv`` is read from it, if present).
      task: the task verification ran.
      neural, nparams: the neural rule and its parameters.
      episodes: the held-out episodes verification sampled (batched); the first is used.
      timescales: trace time constants the equation is compiled with (the neural rule's).

    Returns:
      The path written.
    """
    run_dir = Path(run_dir)
    ep = jax.tree_util.tree_map(lambda a: a[0], episodes)
    W0 = np.asarray(ep["W0"])
    n_post, n_pre = W0.shape
    n_syn = n_pre * n_post if "pc1" in ep else min(MAX_SYNAPSES, n_post * n_pre)
    flat = np.arange(n_syn)
    post, pre = np.unravel_index(flat, (n_post, n_pre))

    def weights(rule, params):
        Ws = np.asarray(jax.jit(lambda e: task.simulate(rule, params, e).weights)(ep), np.float64)
        return Ws.reshape(Ws.shape[0], -1)[:, flat]

    out = {"W0": W0.reshape(-1)[flat].astype(np.float64), "synapses": np.stack([post, pre], axis=1),
           "W_neural": weights(neural, nparams)}
    n_rec = out["W_neural"].shape[0]
    dt, unit = (float(task.network.dt), "ms") if task.network.spiking else (1.0, "steps")
    out["t"] = np.arange(1, n_rec + 1) * task.record_every * dt
    out["time_unit"] = np.array(unit)
    row = selected_equation(run_dir)
    types = getattr(neural, "types", ())
    if row is not None and types:  # every type's selected equation at once
        from discover.io import read_csv

        ver = run_dir / "verification.csv"
        picks = selected_rows(load_equations(run_dir), read_csv(ver) if ver.is_file() else None, types)
        rule, params = equation_set(picks, neural, nparams)
        out["W_selected"] = weights(rule, params)
        out["selected_id"] = np.array(",".join(str(r["id"]) for r in picks.values()))
        out["selected_equation"] = np.array("; ".join(f"{t}: {r['equation']}" for t, r in picks.items()))
    elif row is not None:
        rule = row_rule(row, timescales, neural)
        out["W_selected"] = weights(rule, rule.init(jax.random.key(0)))
        out["selected_id"] = np.array(str(row["id"]))
        out["selected_equation"] = np.array(str(row["equation"]))
    if "W_teacher" in ep:
        Wt = np.asarray(ep["W_teacher"], np.float64)
        out["W_teacher"] = Wt.reshape(Wt.shape[0], -1)[:, flat]
    if "pc1" in ep:
        out["pc1"] = np.asarray(ep["pc1"], np.float64)
    buf = io.BytesIO()
    np.savez(buf, **out)
    return atomic_write_bytes(run_dir / "trajectories.npz", buf.getvalue())


__all__ = ["run", "COLUMNS", "write_trajectories"]
