# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Oja's rule from function alone
#
# No teacher here: the task only says what the neuron must end up doing. A linear neuron
# sees inputs with a random covariance; after an episode of plasticity its weight vector
# must point along the inputs' first principal component, with unit norm (Confavreux et
# al. 2020, task 1). The rule is a polynomial over `x`, `y`, `w` with learnable
# coefficients; meta-training finds coefficients, distillation writes them down, and the
# comparison says which published rule the result is closest to.
#
# This is the built-in default demo (`plasticity run`), here at a smaller size so that it
# runs in well under a minute. Run it as a script: `python notebooks/oja_from_function.py`.

# %%
import os
import tempfile
from pathlib import Path

import pandas as pd

import plasticity as pl
from plasticity.cli import main

out = Path(os.environ.get("QUICKSTART_OUT") or tempfile.mkdtemp(prefix="oja_")) / "oja"

# %% [markdown]
# ## 1. Run the pipeline
# `--set` overrides any key of the config; every key is checked before work starts.

# %%
small = ["--set", "meta.steps=600", "--set", "meta.val_episodes=32", "--set", "verify.episodes=32",
         "--set", "distill.samples=2000"]
assert main(["run", "oja", "--out", str(out), "--quiet", *small]) == 0
run = pl.load_run(out)

# %% [markdown]
# ## 2. The Pareto front and the selected equation
# `equations.csv` lists every candidate from simple to complex with its fit loss on the
# sampled local variables; `verification.csv` re-runs each one in the simulator on
# held-out episodes. The `verified` policy selects the simplest equation that the episodes
# cannot tell from the best.

# %%
print(run.equations[["id", "complexity", "loss", "equation"]].to_string(index=False))
print(run.verification[["rule", "kind", "objective_mean", "relative_to_neural"]].to_string(index=False))
print(f"\nselected: dw = {run.selected['equation']}")

# %% [markdown]
# ## 3. Which published rule is it?
# `comparison.csv` sets the selected equation beside each canonical rule: term overlap,
# distance of the normalized coefficients, and a behaviour check (for Oja: the angle to PC1
# and the norm the rule converges to).

# %%
comparison = pd.read_csv(out / "comparison.csv")
columns = ["canonical", "term_jaccard", "coef_distance", "behaviour_distance", "closest"]
print(comparison[columns].to_string(index=False))
print("closest published rule:", comparison.loc[comparison["closest"], "canonical"].iloc[0])
print("report:", out / "report.html")
