"""Brian2 reference for the E/I neuron with inhibitory STDP (Vogels et al. 2011): writes
``tests/reference/brian2_vogels.json``, which ``tests/test_fidelity.py`` compares with.

    /tmp/bench-venv/bin/python benchmarks/brian2_vogels_reference.py   # Brian2 2.9.0, numpy < 2.4

One conductance-based LIF neuron (``tau_m dv/dt = (v_rest - v) + g_e (E_e - v) + g_i (E_i -
v)``, exponential Euler, 5 ms refractory, Vogels et al. 2011's constants) driven by imposed
Poisson trains (``numpy.random.default_rng(seed)``, regenerated bit for bit by
:func:`spike_trains`, which the test imports): ``N_INH`` inhibitory inputs (plastic, Vogels's
rule) and ``N_EXC`` excitatory ones (fixed weights). Recorded: the output spike times and the
final inhibitory weights, per learning rate.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

PARAMS = dict(dt=0.1, duration_ms=2000.0, n_inh=25, n_exc=100, rate_inh=20.0, rate_exc=20.0, tau_m=20.0,
              v_rest=-60.0, v_th=-50.0, v_reset=-60.0, t_ref=5.0, E_e=0.0, E_i=-80.0, tau_e=5.0, tau_i=10.0,
              w_scale=0.05, w_scale_i=0.2, w_exc=1.0, w_inh0=0.5, w_max=5.0, tau_stdp=20.0, alpha=0.2,
              seed=11)
ETAS = (0.0, 0.01, 0.05)


def spike_trains(p=PARAMS) -> np.ndarray:
    """``[T, n_inh + n_exc]`` 0/1: inhibitory inputs first (our network's convention)."""
    rng = np.random.default_rng(p["seed"])
    T = round(p["duration_ms"] / p["dt"])
    rates = np.r_[np.full(p["n_inh"], p["rate_inh"]), np.full(p["n_exc"], p["rate_exc"])]
    return (rng.random((T, len(rates))) < rates * p["dt"] * 1e-3).astype(np.float32)


def run_brian2(eta: float, p=PARAMS) -> dict:
    import brian2 as b

    b.prefs.codegen.target = "numpy"
    b.defaultclock.dt = p["dt"] * b.ms
    S = spike_trains(p)
    T, n = S.shape
    idx, steps = np.nonzero(S.T)
    times = steps * p["dt"] * b.ms
    inp = b.SpikeGeneratorGroup(n, idx, times)
    eqs = """
    dv/dt = ((v_rest - v) + ge*(E_e - v) + gi*(E_i - v))/tau_m : volt (unless refractory)
    dge/dt = -ge/tau_e : 1
    dgi/dt = -gi/tau_i : 1
    """
    ns = dict(v_rest=p["v_rest"] * b.mV, E_e=p["E_e"] * b.mV, E_i=p["E_i"] * b.mV, tau_m=p["tau_m"] * b.ms,
              tau_e=p["tau_e"] * b.ms, tau_i=p["tau_i"] * b.ms, tau=p["tau_stdp"] * b.ms, eta=eta,
              alpha=p["alpha"], wmax=p["w_max"], ws=p["w_scale"], wsi=p["w_scale_i"])
    G = b.NeuronGroup(1, eqs, threshold=f"v > {p['v_th']}*mV", reset=f"v = {p['v_reset']}*mV",
                      refractory=p["t_ref"] * b.ms, method="exponential_euler", namespace=ns)
    G.v = p["v_rest"] * b.mV
    ni = p["n_inh"]
    exc = b.Synapses(inp, G, "w : 1", on_pre="ge += ws*w", namespace=ns)
    exc.connect(i=np.arange(ni, n), j=0)
    exc.w = p["w_exc"]
    inh = b.Synapses(inp, G, """w : 1
                     dApre/dt = -Apre/tau : 1 (event-driven)
                     dApost/dt = -Apost/tau : 1 (event-driven)""",
                     on_pre="gi += wsi*w\nApre += 1\nw = clip(w + eta*(Apost - alpha), 0, wmax)",
                     on_post="w = clip(w + eta*Apre, 0, wmax)\nApost += 1", namespace=ns)
    inh.connect(i=np.arange(ni), j=0)
    inh.w = p["w_inh0"]
    mon = b.SpikeMonitor(G)
    b.run(p["duration_ms"] * b.ms)
    w = np.zeros(ni)
    w[np.asarray(inh.i[:])] = np.asarray(inh.w[:])
    return {"eta": eta, "spike_times_ms": [round(float(t / b.ms), 4) for t in mon.t], "w_inh": w.tolist()}


def main():
    import brian2

    out = {"brian2": brian2.__version__, "params": PARAMS, "runs": [run_brian2(eta) for eta in ETAS]}
    path = Path(__file__).resolve().parents[1] / "tests" / "reference" / "brian2_vogels.json"
    path.write_text(json.dumps(out, indent=1))
    for r in out["runs"]:
        print(f"eta {r['eta']}: {len(r['spike_times_ms'])} output spikes, mean w_inh {np.mean(r['w_inh']):.4f}",
              file=sys.stderr)
    print(path)


if __name__ == "__main__":
    main()
