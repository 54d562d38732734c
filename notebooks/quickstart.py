# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Quickstart: from a teacher's weight trajectories to an equation
#
# A teacher rule (here an equation string that is *not* one of the canonical rules)
# drives a small rate network. A student rule with learnable parameters is meta-trained
# to reproduce the teacher's weight trajectories; the learned rule is then distilled into
# an equation, and every candidate equation is re-run in the simulator.
#
# Run it as a script (`python notebooks/quickstart.py`) or open it with jupytext.
# Sizes are small so that it runs in about a minute on 2 CPU cores.

# %%
import os
import tempfile
from pathlib import Path

import plasticity as pl
from discover import stage as discover_stage
from discover.config import config_from_dict
from distill import stage as distill_stage
from distill import verify

run_dir = Path(os.environ.get("QUICKSTART_OUT") or tempfile.mkdtemp(prefix="quickstart_"))

cfg = config_from_dict({
    "name": "quickstart",
    "task": {"name": "imitate", "steps": 100, "record_every": 5, "n_pre": 6, "n_post": 2,
             "teacher": {"rule": "a*x*y - b*w*y**2 - c*w", "params": {"a": 0.01, "b": 0.005, "c": 0.003}}},
    "network": {"kind": "rate", "activation": "linear"},
    "rule": {"kind": "polynomial", "degree": 3, "output_scale": 0.01},
    "meta": {"learning_rate": 0.01, "steps": 1500, "batch": 8, "eval_every": 100, "val_episodes": 16},
    "distill": {"policy": "verified", "samples": 2000, "episodes": 8, "bootstrap": 20},
    "verify": {"episodes": 16},
})

# %% [markdown]
# ## 1. Discover: meta-train the rule

# %%
rule, params, history = discover_stage.run(cfg, run_dir, progress=False)
print(history.dropna().tail(3))

# %% [markdown]
# ## 2. Distill: sparse regression over monomials of the local variables

# %%
front = distill_stage.run(cfg, run_dir, progress=False)
print(front[["id", "complexity", "loss", "equation", "selected"]].to_string(index=False))

# %% [markdown]
# ## 3. Verify: every equation, the canonical rules and the teacher, back in the simulator

# %%
ver = verify.run(cfg, run_dir, progress=False)
print(ver[["rule", "kind", "objective_mean", "relative_to_neural"]].to_string(index=False))

selected = pl.load_run(run_dir).selected  # the verified policy's pick
print(f"\nselected: dw = {selected['equation']}")
print(f"run directory: {run_dir}")
