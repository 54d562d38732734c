# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Choosing a distillation backend and reading the front
#
# Distillation turns the learned rule into equations: it samples the local variables where
# held-out episodes visit them, asks the learned rule for `dw` there, and fits candidates.
# Two backends run everywhere:
#
# - `sparse` (default): thresholded least squares over monomials of the variables, aware
#   that `s**2 == s`; fast, and exact when the rule is a polynomial;
# - `operon`: genetic programming (pyoperon); slower, but it can find non-polynomial forms
#   (`exp`, `tanh`, ... with `allowed_symbols`).
#
# `pysr` works where Julia is installed. Each backend returns a Pareto front of complexity
# against loss; every candidate is then re-run in the simulator (verify), and the `verified`
# policy picks the simplest one that the held-out episodes cannot tell from the best.
# Run it as a script: `python notebooks/distill_backends.py` (about two minutes).

# %%
import dataclasses
import os
import shutil
import tempfile
from pathlib import Path

import plasticity as pl
from distill import stage as distill_stage
from distill import verify
from plasticity.cli import main

root = Path(os.environ.get("QUICKSTART_OUT") or tempfile.mkdtemp(prefix="backends_"))

# %% [markdown]
# ## 1. A learned rule to distill
# `configs/imitate_oja.toml` at a small size: a student polynomial imitates Oja's rule,
# `0.01*(x*y - y**2*w)`, in a rate network.

# %%
small = ["--set", "task.steps=100", "--set", "task.n_pre=6", "--set", "task.n_post=2",
         "--set", "meta.steps=800",
         "--set", "meta.val_episodes=8", "--set", "distill.samples=2000", "--set", "distill.episodes=8",
         "--set", "verify.episodes=8", "--set", "distill.refine_steps=40", "--set", "distill.bootstrap=20"]
sparse_dir = root / "sparse"
assert main(["discover", "imitate_oja", "--out", str(sparse_dir), "--quiet", *small]) == 0
operon_dir = root / "operon"
shutil.copytree(sparse_dir, operon_dir)  # the same learned rule, distilled twice

# %% [markdown]
# ## 2. Distill with each backend, then verify
# From the command line: `plasticity distill DIR --backend operon`, then `plasticity verify
# DIR`. Here through the Python API, to give operon a small budget (its own fields, as
# `[distill.backend_options]` in a config would).

# %%
cfg = pl.load_run(sparse_dir).config
budgets = {"sparse": {}, "operon": {"generations": 10, "population_size": 300, "max_samples": 1500}}
for d, backend in ((sparse_dir, "sparse"), (operon_dir, "operon")):
    c = dataclasses.replace(cfg, distill=dataclasses.replace(cfg.distill, backend=backend,
                                                             backend_options=budgets[backend]))
    distill_stage.run(c, d, progress=False)
    verify.run(c, d, progress=False)

# %% [markdown]
# ## 3. Read the front
# Columns of `equations.csv`: `complexity` (sympy node count, the same for every backend),
# `loss` (mean squared error against the learned rule on the samples), `score` (PySR's: the
# drop of log-loss per unit of complexity; a large score marks an elbow of the front),
# `coefficients` (each with a bootstrap 95 % interval over episodes) and `selected`.
# `verification.csv` adds what matters most: the meta-objective of each equation when it
# runs the network itself, relative to the learned rule.

# %%
for d in (sparse_dir, operon_dir):
    run = pl.load_run(d)
    ver = run.verification.set_index("rule")
    front = run.equations[["id", "backend", "complexity", "loss", "score", "equation"]].copy()
    front["verified_vs_neural"] = [ver.loc[f"eq{i}", "relative_to_neural"] if f"eq{i}" in ver.index else None
                                   for i in front["id"]]
    print(front.to_string(index=False))
    print(f"selected ({d.name}): dw = {run.selected['equation']}\n")
