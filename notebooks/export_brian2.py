# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Take the rule home: export to Brian2 and check it there
#
# A discovered rule is only useful once it runs in the simulator a lab already uses.
# `plasticity export RULE --to brian2` writes a Python module that defines the rule as a
# Brian2 synapse model; `--to nestml` writes a NESTML synapse model for NEST. `RULE` is a
# run directory (its selected equation, with the trace time constants it was found with),
# a canonical name or an equation string.
#
# Here we export the triplet rule of Pfister & Gerstner 2006 and an equation the tool
# distilled, run Sjöström et al.'s pairing-frequency protocol in Brian2 with the exported
# models, and compare with the same protocol in plasticity-discovery's simulator.
# Run it as a script (`python notebooks/export_brian2.py`); it takes about half a minute.

# %%
import importlib.util
import os
import tempfile
from pathlib import Path

import brian2 as b2
import numpy as np
import pandas as pd

from analysis.protocols import _spike_steps, simulate_pairings
from discover.rules import make_symbolic_rule
from plasticity.cli import main

out = Path(os.environ.get("QUICKSTART_OUT") or tempfile.mkdtemp(prefix="export_"))

# %% [markdown]
# ## 1. Export
# The command line is the usual way; `--param` sets parameters, time constants and the
# weight bounds. Our protocols start at `w = 1` and do not clip, so the bounds are wide.

# %%
DISTILLED = "0.002989*s_post*tr_pre*w - 0.006896*s_pre*tr_post*tr_pre + 0.006*s_pre*tr_pre**2"
rules = {"stdp_triplet": "stdp_triplet", "distilled": DISTILLED}
for name, spec in rules.items():
    assert main(["export", spec, "--to", "brian2", "--param", "w_min=-10", "--param", "w_max=10",
                 "--out", str(out / f"{name}.py")]) == 0
print((out / "stdp_triplet.py").read_text().split('MODEL = """')[1].split("def namespace")[0])

# %% [markdown]
# ## 2. Run the protocol in Brian2
# Each (frequency, lag) variant is one synapse between two spike generators; the module's
# `make_synapses` returns the unconnected `Synapses`.

# %%
FREQS, LAGS, PAIRS, DT = (1.0, 10.0, 20.0, 40.0), (10.0, -10.0), 15, 0.1
combos = [(f, lag) for f in FREQS for lag in LAGS]
pre, post = _spike_steps([c[1] for c in combos], [c[0] for c in combos], PAIRS, DT)


def load(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def brian2_protocol(module):
    b2.prefs.codegen.target = "numpy"
    b2.start_scope()
    b2.defaultclock.dt = DT * b2.ms
    n = len(combos)

    def generator(steps):
        rows, cols = np.nonzero(steps >= 0)
        return b2.SpikeGeneratorGroup(n, rows, steps[rows, cols] * DT * b2.ms)

    g_pre, g_post = generator(pre), generator(post)
    S = module.make_synapses(g_pre, g_post)
    S.connect(j="i")
    S.w = 1.0
    b2.Network(g_pre, g_post, S).run((int(max(pre.max(), post.max())) + 2) * DT * b2.ms, namespace={})
    return np.asarray(S.w) - 1.0


# %% [markdown]
# ## 3. Compare with our simulator

# %%
rows = []
for name, spec in rules.items():
    rule = make_symbolic_rule(spec)
    ours = simulate_pairings(rule, None, pre, post, dt=DT)
    theirs = brian2_protocol(load(out / f"{name}.py"))
    for (f, lag), a, b in zip(combos, ours, theirs):
        rows.append({"rule": name, "freq_hz": f, "lag_ms": lag, "ours": a, "brian2": b})
table = pd.DataFrame(rows)
print(table.to_string(index=False, float_format=lambda v: f"{v:.6f}"))
worst = float(np.max(np.abs(table["ours"] - table["brian2"]) / np.abs(table["brian2"]).max()))
print(f"largest difference: {worst:.1e} of the largest change")
assert worst < 1e-3

# %% [markdown]
# The two agree to float32 rounding. For NEST, `plasticity export stdp_triplet --to nestml
# --out triplet.nestml` writes the same rule as a NESTML synapse; build it with pynestml's
# `generate_nest_target` next to a neuron model (NEST delivers spikes with a delay, so
# pre/post pairs closer than one delay follow NEST's order).
