# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Bring your own task: a rate neuron that must reach a target rate
#
# A task is an episode sampler and a loss on what one episode of plasticity left behind
# (a `Rollout`: recorded weights, activity, final state). Write it in a module of your
# own, name it in a config by import path, and every stage — discover, distill, verify,
# report — runs it, each rebuilding it from the run directory.
#
# Here the output of one linear rate neuron must reach a target mean rate: the rule has
# to find a homeostatic equation from the objective alone (on 2 CPU cores, in about two
# minutes, it finds `dw = a*x - b*y`: weights grow while `y < a*mean(x)/b`).

# %%
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

work = Path(os.environ.get("QUICKSTART_OUT") or tempfile.mkdtemp(prefix="custom_task_"))

# %% [markdown]
# ## 1. The task: 25 lines in a module outside the package

# %%
TASK = '''
from dataclasses import dataclass

import jax
import jax.numpy as jnp

import plasticity as pl


class TargetRate(pl.Task):
    """The neuron's mean output rate must reach `target` by the end of an episode."""

    @dataclass(frozen=True)
    class Config(pl.TaskConfig):
        target: float = 2.0

    def sample(self, key, n):
        kx, kw = jax.random.split(key)
        shape = (n, self.network.n_post, self.network.n_pre)
        x = jax.random.uniform(kx, (n, self.steps, self.network.n_pre), maxval=2.0)
        return {"x": x, "W0": jax.random.uniform(kw, shape, maxval=0.5)}

    def loss(self, rollout, episode):
        y = rollout.activity[-5:] / self.record_every  # mean rate, last 5 recorded blocks
        return jnp.mean((y - self.config.target) ** 2)
'''
task_lines = [ln for ln in TASK.strip().splitlines() if ln.strip()]
assert len(task_lines) <= 25, len(task_lines)
(work / "target_rate.py").write_text(TASK.lstrip())

# %% [markdown]
# ## 2. A config that names it by import path (`module:Class`)
#
# `[task] name` picks the task's `Config`: only its keys (and the ones every task has)
# are valid under `[task]`.

# %%
CONFIG = textwrap.dedent('''
    name = "target_rate"

    [task]
    name = "target_rate:TargetRate"
    target = 2.0
    steps = 200
    record_every = 10
    n_pre = 5
    n_post = 1

    [network]
    kind = "rate"
    w_min = 0.0

    [rule]
    kind = "polynomial"
    inputs = ["x", "y", "w"]
    degree = 2
    output_scale = 0.01

    [meta]
    learning_rate = 0.01
    steps = 300
    batch = 16
    eval_every = 50
    dw_penalty = 0.1

    [distill]
    policy = "verified"
    samples = 2000
    episodes = 8
    bootstrap = 20

    [verify]
    episodes = 16
''')
(work / "target_rate.toml").write_text(CONFIG)

# %% [markdown]
# ## 3. `plasticity run`, then `plasticity report` — each in a fresh process
#
# The working directory is importable, so `target_rate:TargetRate` resolves there (or
# anywhere on `PYTHONPATH`); an installed package can register it under the entry-point
# group `plasticity.tasks` instead.

# %%
cli = [sys.executable, "-m", "plasticity.cli"]
subprocess.run([*cli, "run", "target_rate.toml", "--out", "runs/target_rate", "--quiet"], cwd=work, check=True)
subprocess.run([*cli, "report", "runs/target_rate"], cwd=work, check=True)

# %% [markdown]
# ## 4. The run, read back

# %%
sys.path.insert(0, str(work))  # the task's module, for rebuilding it here
import plasticity as pl  # noqa: E402

run = pl.load_run(work / "runs" / "target_rate")
print(run.verification[["rule", "kind", "objective_mean", "relative_to_neural"]].to_string(index=False))
print(f"\nselected: dw = {run.selected['equation']}")
print(f"report: {run.path / 'report.html'}")
