"""The distill stage: ``run(config, run_dir)`` turns the neural rule into equations.

Reads ``config.toml`` and ``rule/`` from the run directory, samples the local variables
where held-out episodes visit them (:mod:`distill.sampling`), fits candidates with the
configured backend, keeps the Pareto front (:func:`distill.front.pareto_front`), adds
bootstrap confidence intervals (over episodes) to every coefficient, marks the selected
row, and writes ``samples.npz`` and ``equations.csv``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import jax
import numpy as np
import pandas as pd

from discover.build import build_task, load_rule
from discover.config import Config, load_config
from discover.equations import parse_equation
from discover.io import (
    RunDirError,
    atomic_write_bytes,
    damaged,
    read_csv,
    read_manifest,
    read_npz,
    update_manifest,
    write_csv,
)
from discover.optimizers import is_evolution
from discover.registry import PluginError

from .backends import BACKENDS, get_backend
from .bootstrap import coefficient_ci
from .sampling import visited_samples
from .select import select


class DistillError(ValueError):
    """Distillation cannot give an equation (e.g. no finite candidate); the message says what to try."""


def check_config(cfg: Config, backend: str | None = None) -> None:
    """What discover's config check cannot know: the distillation backend and its
    options, the canonical rules verification compares with. Run before any work."""
    from discover.config import ConfigError
    from discover.rules import CANONICAL
    from discover.suggest import did_you_mean

    name = backend or cfg.distill.backend
    try:
        cls = BACKENDS.get(name)
    except PluginError as e:
        raise ConfigError(str(e) if backend is None else f"--backend {name!r}: {e}") from None
    import dataclasses

    fields = [f.name for f in dataclasses.fields(cls)] if dataclasses.is_dataclass(cls) else []
    bad = [k for k in cfg.distill.backend_options if k not in fields]
    if bad:
        raise ConfigError(f"[distill.backend_options] {bad[0]!r} is not an option of the {name} backend; its "
                          f"options are: {', '.join(fields) or '(none)'}")
    if cfg.distill.policy == "aic":
        from discover.registry import TASKS
        from discover.tasks.base import Task

        if TASKS.get(cfg.task.name).chi_square is Task.chi_square:
            raise ConfigError(f"[distill] policy = \"aic\" needs a meta-loss in units of measurement errors, which "
                              f"task {cfg.task.name} does not have (fit_protocols has); use policy = \"verified\"")
    unknown = [c for c in cfg.verify.canonical or () if c not in CANONICAL]
    if unknown:
        raise ConfigError(f"[verify] canonical names {unknown[0]!r}, which is not a canonical rule; choose from "
                          f"{', '.join(CANONICAL)}." + did_you_mean(unknown[0], CANONICAL))


def load_run_config(run_dir: str | Path) -> Config:
    path = Path(run_dir) / "config.toml"
    if Path(run_dir).exists() and not Path(run_dir).is_dir():
        raise RunDirError(f"{run_dir} is a file, not a run directory; pass the folder that "
                          "`plasticity discover CONFIG --out DIR` wrote")
    if not Path(run_dir).is_dir():
        raise RunDirError(f"run directory {str(run_dir)!r} does not exist; create it with "
                          "`plasticity discover CONFIG --out DIR` (or `plasticity run`)")
    if not path.exists():
        raise RunDirError(f"{run_dir} is not a run directory (no config.toml); create one with "
                          "`plasticity discover CONFIG --out DIR`")
    return load_config(path)


def save_samples(run_dir: Path, names, X, dw, groups, name: str = "samples.npz") -> None:
    """``samples.npz`` (one synapse type of several: ``samples_<type>.npz`` beside the first's)."""
    import io

    buf = io.BytesIO()
    np.savez(buf, X=X, dw=dw, groups=groups, names=np.asarray(names))
    atomic_write_bytes(run_dir / name, buf.getvalue())


def load_samples(run_dir: str | Path):
    path = Path(run_dir) / "samples.npz"
    if not path.exists():
        raise RunDirError(f"{run_dir} has no samples.npz; run `plasticity distill {run_dir}` first")
    d = read_npz(path)
    lost = [k for k in ("names", "X", "dw", "groups") if k not in d]
    if lost:
        raise damaged(path, f"no array {', '.join(map(repr, lost))}")
    return tuple(str(n) for n in d["names"]), d["X"], d["dw"], d["groups"]


def add_intervals(front: pd.DataFrame, names, X, dw, groups, n_boot: int, seed: int) -> pd.DataFrame:
    """Replace each row's ``coefficients`` with ``{term: {value, ci_low, ci_high}}``."""
    out = []
    for _, row in front.iterrows():
        expr = parse_equation(row["sympy"], variables=names)
        try:
            ci = coefficient_ci(expr, X, dw, names, groups, n_boot=n_boot, seed=seed)
            coefs = {t: {"value": v, "ci_low": lo, "ci_high": hi} for t, (v, lo, hi) in ci.items()}
        except Exception:  # not linear in its coefficients (e.g. an Operon division)
            coefs = json.loads(row["coefficients"]) if isinstance(row["coefficients"], str) else {}
        out.append(json.dumps(coefs))
    front = front.copy()
    front["coefficients"] = out
    return front


def refit_optimizer(cfg: Config) -> str:
    """``[distill] refine_optimizer``, with ``auto`` resolved: CMA-ES when meta-training used an
    evolution strategy (a loss that needed evolution needs it for the refit too), else Adam."""
    if cfg.distill.refine_optimizer != "auto":
        return cfg.distill.refine_optimizer
    return "cma_es" if is_evolution(cfg.meta.optimizer) else "adam"


def refine_front(front: pd.DataFrame, task, names, timescales: dict, d, progress: bool,
                 optimizer: str = "adam", traces: str = "all_to_all", refit_timescales=(),
                 chunk: int | None = None) -> pd.DataFrame:
    """Refit every row's coefficients on the task (:mod:`distill.refine`).

    ``equation``, ``sympy`` and ``latex`` then show the refitted equation; each term in
    ``coefficients`` keeps the regression's value and bootstrap interval as ``fit_value``,
    ``fit_ci_low``, ``fit_ci_high`` beside the refitted ``value`` and its interval (sandwich
    for Adam; for CMA-ES, the values the episodes cannot tell from the optimum).
    ``refit_loss`` is the task's meta-loss of the refitted equation (training pool).
    ``optimizer``: ``"adam"`` or ``"cma_es"`` (:func:`distill.refine.refine`).
    ``refit_timescales``: time constants refitted with the coefficients where the row's
    equation reads them; the row's ``timescales`` then holds its own refitted values.
    ``chunk``: checkpoint segments of the refit's rollouts (the run's ``[meta] checkpoint_every``).
    """
    from .refine import Objective, refine
    from .simplify import format_equation, latex_equation, terms

    front = front.copy()
    front["refit_loss"] = np.nan
    exprs = {i: parse_equation(row["sympy"], variables=names) for i, row in front.iterrows()}
    objective = None
    if optimizer == "adam":  # one compiled objective over the union of the front's terms
        basis = list(dict.fromkeys(t for e in exprs.values() for t in terms(e)))
        objective = Objective(task, basis, timescales, episodes=d.refine_episodes, seed=d.seed, traces=traces,
                              refit=refit_timescales, chunk=chunk) if basis else None
    for i, row in front.iterrows():
        expr = exprs[i]
        out = refine(task, expr, timescales, steps=d.refine_steps, episodes=d.refine_episodes, seed=d.seed,
                     optimizer=optimizer, sigma=d.refine_sigma, population=d.refine_population, traces=traces,
                     refit_timescales=refit_timescales, objective=objective, chunk=chunk)
        if out is None:
            if progress:
                net = task.network
                loop = net.spiking and getattr(net, "post_mode", "") == "closed" and getattr(net, "reset", True)
                hint = ("; through a closed spiking loop, try [distill] refine_optimizer = \"cma_es\""
                        if optimizer == "adam" and loop else "")
                print(f"distill: eq{row['id']} could not be refitted (it diverges or is not a sum of terms); "
                      f"keeping the regression coefficients{hint}", flush=True)
            continue
        refined, cis, loss, taus = out
        old = json.loads(row["coefficients"]) if isinstance(row["coefficients"], str) else {}
        coefs = {}
        for term, (v, lo, hi) in cis.items():
            fit = old.get(term, {})
            fit = fit if isinstance(fit, dict) else {"value": fit}
            coefs[term] = {"value": v, "ci_low": lo, "ci_high": hi, "fit_value": fit.get("value"),
                           "fit_ci_low": fit.get("ci_low"), "fit_ci_high": fit.get("ci_high")}
        front.at[i, "equation"] = format_equation(refined)
        front.at[i, "sympy"] = str(refined)
        front.at[i, "latex"] = latex_equation(refined)
        front.at[i, "coefficients"] = json.dumps(coefs)
        front.at[i, "refit_loss"] = loss
        front.at[i, "timescales"] = json.dumps({k: round(v, 4) for k, v in taus.items()})
        if progress:
            refit = {k: round(taus[k], 2) for k in refit_timescales if k in taus}
            print(f"distill: eq{row['id']} refitted on the task: dw = {front.at[i, 'equation']}"
                  + (f" with {', '.join(f'{k} = {v:g} ms' for k, v in refit.items())}" if refit else "")
                  + f" (meta-loss {loss:.4g})", flush=True)
    return front


def run(cfg: Config | None, run_dir: str | Path, backend: str | None = None, progress: bool = True) -> pd.DataFrame:
    run_dir = Path(run_dir)
    cfg = cfg or load_run_config(run_dir)
    t0 = time.perf_counter()
    manifest = read_manifest(run_dir)  # every input read and checked before any work or write
    rule, params = load_rule(run_dir)
    task = build_task(cfg)
    d = cfg.distill
    check_config(cfg, backend)
    engine = get_backend(backend or d.backend, **d.backend_options)
    fit = manifest.get("fit")
    types = getattr(rule, "types", ())
    if not types:
        front, samples = distill_rule(task, rule, params, cfg, engine, progress)
        save_samples(run_dir, *samples)
        n_samples = len(samples[2])
    else:  # one rule per synapse type: each distilled on its own synapses, the others' neural rules beside it
        from discover.tasks.view import SynapseView

        fronts, n_samples = [], 0
        for i, t in enumerate(types):
            if progress:
                print(f"distill: synapse type {t}", flush=True)
            rt, pt = rule.part(params, t)
            ft, samples = distill_rule(SynapseView(task, t, rule, params), rt, pt, cfg, engine, progress,
                                       first_id=int(fronts[-1]["id"].max()) + 1 if fronts else 0)
            ft.insert(1, "synapse", t)
            fronts.append(ft)
            save_samples(run_dir, *samples, name="samples.npz" if i == 0 else f"samples_{t}.npz")
            n_samples += len(samples[2])
        front = pd.concat(fronts, ignore_index=True)
    front["poor_fit"] = bool(fit and fit.get("poor"))  # every equation of a poorly fitting rule
    write_csv(run_dir / "equations.csv", front)
    update_manifest(run_dir, timings_s={"distill": round(time.perf_counter() - t0, 2)},
                    distill={"backend": engine.name, "policy": d.policy, "samples": int(n_samples)})
    return front


def distill_rule(task, rule, params, cfg: Config, engine, progress: bool = True, first_id: int = 0):
    """Distill one rule (the network's, or one synapse type's through a
    :class:`~discover.tasks.view.SynapseView`): sample where held-out episodes visit, fit,
    keep the Pareto front, add intervals, refit and select. Returns the front (ids offset
    by ``first_id``, so that several types' fronts share one file) and the samples
    ``(names, X, dw, groups)``."""
    d = cfg.distill
    names, X, dw, groups = visited_samples(task, rule, params, jax.random.key(10_000 + d.seed), d.episodes,
                                           d.samples, d.event_fraction, seed=d.seed)
    if progress:
        print(f"distill: {len(dw)} samples of {', '.join(names)} from {d.episodes} held-out episodes; "
              f"fitting with the {engine.name} backend", flush=True)
    cands = engine.fit(X, dw, names, max_complexity=d.max_complexity, max_degree=d.max_degree, seed=d.seed)
    if not task.between_spikes:  # samples at spike events only: every term acts at a spike
        from .backends.events import at_spikes
        from .simplify import complexity

        for c in cands:
            c.expr = at_spikes(c.expr, names)
            c.complexity = complexity(c.expr)
    from .front import pareto_front

    front = pareto_front(cands, X, dw, names)
    if front.empty:
        raise DistillError(f"the {engine.name} backend found no finite equation for the neural rule; "
                           "try another backend (--backend operon) or more samples ([distill] samples)")
    front = front[front["complexity"] <= d.max_complexity].reset_index(drop=True)
    front["id"] = front["id"] + first_id
    extra = task.data_candidates(rule, params, names, d.max_degree)
    if extra:
        from .front import extra_rows

        front = extra_rows(front, extra, X, dw, names, backend="data")
        if progress:
            print(f"distill: {len(extra)} term sets fitted to the task's data directly join the front", flush=True)
    own = pruned_student(rule, params, names, X) if getattr(task, "prune_student", False) else []
    if own:
        from .front import extra_rows

        front = extra_rows(front, own, X, dw, names, backend="student")
        if progress:
            print(f"distill: the polynomial student and its prunings ({len(own)} equations, largest terms first) "
                  "join the front", flush=True)
    front = add_intervals(front, names, X, dw, groups, d.bootstrap, d.seed)
    timescales = {k: float(v) for k, v in rule.tau(params).items()}  # the learned ones, where learned
    front["timescales"] = [json.dumps(read_timescales(e, timescales)) for e in front["sympy"]]
    if d.refine_steps > 0:  # a refitted row's own time constants replace its timescales
        refit = rule.learned_timescales if d.refine_timescales else ()
        front = refine_front(front, task, names, timescales, d, progress, refit_optimizer(cfg), rule.traces, refit,
                             chunk=getattr(cfg.meta, "checkpoint_every", 0) or None)
    policy = "best" if d.policy in ("verified", "aic") else d.policy  # those pick in verification
    front["selected"] = False
    front.loc[select(front, policy), "selected"] = True
    return front, (names, X, dw, groups)


def pruned_student(rule, params, names, X) -> list:
    """A polynomial student is an equation already: itself, and its prunings that keep the
    ``k`` terms of largest root-mean-square value on the samples ``X`` (k = 1, 2, ...), as
    equations of their learned coefficients. Where a task's rule acts through many small
    terms whose sum matters (few_shot: a regression on the student's ``dw`` drops terms that
    its learning needs), verification can then pick the simplest pruning that still works.
    ``[]`` for other rules."""
    import sympy

    from discover.rules.polynomial import PolynomialRule

    from .simplify import evaluate

    if not isinstance(rule, PolynomialRule):
        return []
    parts = [t for t in sympy.Add.make_args(sympy.expand(rule.as_expr(params))) if t != 0]
    if not parts:
        return []
    Xf = np.asarray(X, np.float64)
    size = [float(np.sqrt(np.mean(np.asarray(evaluate(t, Xf, names), np.float64) ** 2))) for t in parts]
    order = np.argsort(size)[::-1]
    return [sympy.Add(*[parts[i] for i in order[:k]]) for k in range(1, len(parts) + 1)]


def read_timescales(equation: str, timescales: dict[str, float]) -> dict[str, float]:
    """The time constants (ms) of the traces ``equation`` reads, ``{"tau_pre": 20.0, ...}``:
    an equation of traces means nothing without them (``equations.csv`` ``timescales``)."""
    from discover.rules.base import timescales_read

    used = {str(v) for v in parse_equation(equation).free_symbols}
    return {k: round(timescales[k], 4) for k in timescales_read(used, timescales)}


def run_timescales(row, timescales: dict[str, float]) -> dict[str, float]:
    """The time constants an ``equations.csv`` row runs with: ``timescales`` (the neural
    rule's) with the row's own (refitted) values over them."""
    from discover.io import row_timescales

    return {**timescales, **row_timescales(row)}


def load_equations(run_dir: str | Path) -> pd.DataFrame:
    path = Path(run_dir) / "equations.csv"
    if not path.exists():
        raise RunDirError(f"{run_dir} has no equations.csv; run `plasticity distill {run_dir}` first")
    df = read_csv(path, ("id", "equation", "sympy", "complexity", "coefficients"))
    if df.empty:
        raise damaged(path, "it has no equations")
    return df


__all__ = ["run", "check_config", "DistillError", "load_run_config", "load_samples", "load_equations"]
