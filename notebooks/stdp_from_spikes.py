# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Pair STDP from spikes
#
# A teacher rule, pair STDP with Song, Miller & Abbott's parameters, drives the synapses of
# leaky integrate-and-fire neurons; pre- and postsynaptic Poisson spike trains are given
# (open loop). The student is an event-driven polynomial, `s_post*P(tr_pre, tr_post, w) +
# s_pre*Q(tr_pre, tr_post, w)`, meta-trained to reproduce the teacher's weight
# trajectories. Then: distill, read the STDP window of the result, and export it to Brian2.
#
# `configs/stdp_open.toml` is the full-size version. Run this one as a script:
# `python notebooks/stdp_from_spikes.py` (about a minute).

# %%
import os
import tempfile
from pathlib import Path

import plasticity as pl
from analysis.protocols import pairing_protocol
from discover.rules import canonical_rule, make_symbolic_rule
from plasticity.cli import main

out = Path(os.environ.get("QUICKSTART_OUT") or tempfile.mkdtemp(prefix="stdp_")) / "stdp"

# %% [markdown]
# ## 1. Imitate the teacher
# The config names the teacher and the network; the student here is a degree-1 polynomial
# per spike type (a small vocabulary: the tool would pick a polynomial by itself with
# `kind = "auto"`).

# %%
small = ["--set", "task.n_pre=10", "--set", "task.steps=500", "--set", "rule.kind=polynomial",
         "--set", "rule.degree=1", "--set", "meta.steps=300",
         "--set", "meta.learning_rate=0.01", "--set", "meta.val_episodes=8", "--set", "distill.samples=2000",
         "--set", "distill.episodes=8", "--set", "verify.episodes=8"]
assert main(["run", "stdp_open", "--out", str(out), "--quiet", *small]) == 0
run = pl.load_run(out)
print(run.equations[["id", "complexity", "loss", "equation"]].to_string(index=False))
print(f"\nselected: dw = {run.selected['equation']}")
print("teacher:  dw = 0.01*s_post*tr_pre - 0.0105*s_pre*tr_post")

# %% [markdown]
# ## 2. The STDP window of the distilled equation
# `plasticity protocol pairing --rule DIR` runs the same protocol from the command line.

# %%
found = make_symbolic_rule(str(run.selected["sympy"]))
window = pairing_protocol(found, dt_ms_list=[-40, -20, -10, 10, 20, 40]).rename(columns={"dw": "found"})
window["teacher"] = pairing_protocol(canonical_rule("stdp_pair"), dt_ms_list=window["dt_ms"])["dw"]
print(window.to_string(index=False))

# %% [markdown]
# ## 3. Take it home
# The selected equation, with the trace time constants it was found with, as a Brian2 synapse
# model (see the tutorial "Export to Brian2").

# %%
assert main(["export", str(out), "--to", "brian2", "--out", str(out / "rule_brian2.py")]) == 0
print((out / "rule_brian2.py").read_text().split('MODEL = """')[1].split("def namespace")[0])
