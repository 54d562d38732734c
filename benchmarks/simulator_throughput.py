"""Simulator throughput, in synapse-steps per second, against Brian2 measured in the same run.

The network is Brian2's STDP example after Song, Miller & Abbott 2000 (the model of
``shared/reference/brian2_song2000.json`` and ``tests/test_fidelity.py``), widened to
``N_post`` neurons: ``N_pre`` Poisson inputs at 15 Hz, all-to-all onto ``N_post``
conductance-based LIF neurons (Euler, ``tau_m = 10 ms``, ``E_l = -74 mV``, ``v_t = -54 mV``,
``v_r = -60 mV``, ``E_e = 0``, ``tau_e = 5 ms``, ``v(0) = E_l``, no refractory period),
weights ``U(0, g_max)``, additive all-to-all pair STDP (``A_plus = 0.01 g_max``,
``A_minus = 1.05 A_plus``, ``tau_pre = tau_post = 20 ms``), clipped to ``[0, g_max]``,
``dt = 0.1 ms``. Ours: :class:`discover.networks.LIFNetwork` (``post_mode = "closed"``)
with ``canonical_rule("stdp_pair")``; Poisson inputs are drawn inside the ``lax.scan``, as
in ``tests/test_fidelity.py`` (and as Brian2's ``PoissonGroup`` draws them every step).

Measured, per ``(N_pre, N_post)`` in ``{(100, 10), (1000, 100), (1000, 1000)}``:

- ours, batch 1 and 16 (``vmap`` over independent networks: own initial weights and
  inputs), forward only and forward + backward (``jax.grad`` of the mean final weight
  w.r.t. the rule's parameters ``A_plus``, ``A_minus``; the unroll is checkpointed every
  ~sqrt(T) steps with :func:`discover.unroll.unroll`, as meta-training does). Each shape
  is compiled once ahead of time (compile time reported), called once to warm up, then
  timed ``--repeats`` times with ``block_until_ready``; the median is reported.
- Brian2, numpy and cython code-generation targets, batch 1, forward, same network and
  same biological time, in a subprocess (Brian2 may live in another virtual environment:
  2.9.0, the newest release, does not import with numpy >= 2.4). Time is Brian2's own
  main-loop time (``device._last_run_time``: code generation and compilation excluded;
  the first, short run that triggers them is reported as warm-up), median of repeats.

synapse-steps/s = batch * N_pre * N_post * steps / seconds. Brian2 is event-driven
(work per pre or post spike), ours is clock-driven and dense (work per synapse and step),
so the ratio depends on rates and dt: at 15 Hz and dt = 0.1 ms a synapse sees a
presynaptic spike every ~670 steps.

    .venv/bin/python benchmarks/simulator_throughput.py            # ~3 min on 2 cores
    .venv/bin/python benchmarks/simulator_throughput.py --quick    # ~1 min (+ ~30 s the first time
                                                                     # Brian2's cython code is compiled)
    .venv/bin/python benchmarks/simulator_throughput.py --brian2-python /tmp/bench-venv/bin/python

Prints markdown tables and writes ``benchmarks/results/simulator_throughput[_quick].json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

# Song, Miller & Abbott 2000 as in Brian2's example (units: ms, mV; weights in units of g_max)
SONG = dict(dt_ms=0.1, tau_m=10.0, E_l=-74.0, v_t=-54.0, v_r=-60.0, E_e=0.0, tau_e=5.0, rate_hz=15.0,
            g_max=0.01, A_plus=0.01, A_minus=0.0105, tau_pre=20.0, tau_post=20.0)

# biological seconds per (size, batch, pass); forward at batch 1 is also Brian2's duration
FULL = {
    (100, 10): {(1, "forward"): 1.0, (16, "forward"): 1.0, (1, "forward+backward"): 1.0, (16, "forward+backward"): 0.2},
    (1000, 100): {(1, "forward"): 1.0, (16, "forward"): 0.2, (1, "forward+backward"): 0.1, (16, "forward+backward"): 0.05},
    (1000, 1000): {(1, "forward"): 1.0, (16, "forward"): 0.05, (1, "forward+backward"): 0.05,
                   (16, "forward+backward"): 0.02},
}
QUICK = {
    (100, 10): {(1, "forward"): 0.2, (16, "forward"): 0.1, (1, "forward+backward"): 0.1, (16, "forward+backward"): 0.02},
    (1000, 100): {(1, "forward"): 0.2, (16, "forward"): 0.02, (1, "forward+backward"): 0.02, (16, "forward+backward"): 0.005},
    (1000, 1000): {(1, "forward"): 0.1},
}


def n_steps(seconds: float) -> int:
    return int(round(seconds * 1e3 / SONG["dt_ms"]))


def checkpoint_chunk(T: int) -> int:
    """The divisor of ``T`` closest to sqrt(T): memory ~ T/chunk carries + chunk steps."""
    divisors = [d for d in range(1, T + 1) if T % d == 0]
    return min(divisors, key=lambda d: abs(math.log(d) - 0.5 * math.log(T)))


# ============================================================================= ours (JAX)

def build_ours(n_pre: int, n_post: int, T: int, batch: int, backward: bool):
    """A jitted function ``(params, keys) -> (mean final w, output rate Hz[, grads])``."""
    import jax
    import jax.numpy as jnp

    from discover.networks import LIFNetwork
    from discover.rules import canonical_rule
    from discover.unroll import unroll

    P = SONG
    net = LIFNetwork(n_pre=n_pre, n_post=n_post, dt=P["dt_ms"], tau_m=P["tau_m"], v_rest=P["E_l"], v_th=P["v_t"],
                     v_reset=P["v_r"], t_ref=0.0, synapse="conductance", tau_syn=P["tau_e"], E_e=P["E_e"],
                     w_scale=P["g_max"], integration="euler", w_min=0.0, w_max=1.0, post_mode="closed",
                     v0=P["E_l"])
    rule = canonical_rule("stdp_pair", {"A_plus": P["A_plus"], "A_minus": P["A_minus"],
                                        "tau_pre": P["tau_pre"], "tau_post": P["tau_post"]})
    params = rule.init(jax.random.key(0))
    threshold = jnp.uint32(round(P["rate_hz"] * P["dt_ms"] * 1e-3 * 2**32))  # P(bits < threshold) = r dt
    chunk = checkpoint_chunk(T) if backward else None

    def episode(params, key):
        k_w, k_in = jax.random.split(key)
        W0 = jax.random.uniform(k_w, (n_post, n_pre))  # U(0, g_max) in units of g_max

        def step(carry, t):
            state, count = carry
            s = (jax.random.bits(jax.random.fold_in(k_in, t), (n_pre,)) < threshold).astype(jnp.float32)
            state, loc = net.step(rule, params, state, {"s_pre": s})
            return (state, count + jnp.sum(jax.lax.stop_gradient(loc["s_post"]))), None

        (state, count), _ = unroll(step, (net.init_state(W0), jnp.zeros(())), jnp.arange(T), chunk)
        return jnp.mean(state["W"]), count / (n_post * T * P["dt_ms"] * 1e-3)

    if backward:
        grad = jax.value_and_grad(episode, has_aux=True)

        def one(params, key):
            (w, rate), g = grad(params, key)
            return w, rate, g["core"]
    else:
        one = episode
    fn = jax.jit(jax.vmap(one, in_axes=(None, 0)))
    keys = jax.random.split(jax.random.key(1), batch)
    return fn, params, keys, chunk


def time_ours(n_pre, n_post, seconds, batch, pass_, repeats):
    import jax
    import numpy as np

    T = n_steps(seconds)
    backward = pass_ == "forward+backward"
    fn, params, keys, chunk = build_ours(n_pre, n_post, T, batch, backward)
    t0 = time.perf_counter()
    compiled = fn.lower(params, keys).compile()
    compile_s = time.perf_counter() - t0
    try:
        temp_mb = compiled.memory_analysis().temp_size_in_bytes / 2**20
    except Exception:  # memory_analysis is not implemented on every backend
        temp_mb = float("nan")
    out = jax.block_until_ready(compiled(params, keys))  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = jax.block_until_ready(compiled(params, keys))
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    row = {
        "engine": "ours (JAX)", "n_pre": n_pre, "n_post": n_post, "batch": batch, "pass": pass_,
        "bio_seconds": seconds, "steps": T, "checkpoint_every": chunk,
        "synapse_steps": batch * n_pre * n_post * T, "seconds_median": med, "seconds_all": times,
        "synapse_steps_per_s": batch * n_pre * n_post * T / med, "us_per_step": med / T * 1e6,
        "compile_s": compile_s, "xla_temp_mib": temp_mb,
        "mean_final_w": float(np.mean(out[0])), "post_rate_hz": float(np.mean(out[1])),
    }
    if backward:
        g = {k: np.asarray(v) for k, v in out[2].items()}
        row["grad_finite"] = bool(all(np.all(np.isfinite(v)) for v in g.values()))
        row["grad_network0"] = {k: float(v[0]) for k, v in g.items()}
    return row


# ============================================================================= Brian2 worker
#
# Runs under the Brian2 interpreter (possibly another venv, without jax): stdlib + brian2 only.

def brian2_worker(spec: dict) -> dict:
    import brian2 as b2
    from brian2 import Hz, ms, mV, second

    b2.prefs.codegen.target = spec["target"]
    b2.prefs.logging.console_log_level = "WARNING"
    P = SONG
    rows = []
    for n_pre, n_post, seconds in spec["runs"]:
        b2.start_scope()
        b2.seed(spec["seed"])
        b2.defaultclock.dt = P["dt_ms"] * ms
        ns = {"taum": P["tau_m"] * ms, "taue": P["tau_e"] * ms, "Ee": P["E_e"] * mV, "El": P["E_l"] * mV,
              "vt": P["v_t"] * mV, "vr": P["v_r"] * mV, "taupre": P["tau_pre"] * ms, "taupost": P["tau_post"] * ms,
              "gmax": P["g_max"], "dApre": P["A_plus"] * P["g_max"], "dApost": -P["A_minus"] * P["g_max"]}
        inputs = b2.PoissonGroup(n_pre, rates=P["rate_hz"] * Hz)
        neurons = b2.NeuronGroup(n_post, """dv/dt = (ge * (Ee - v) + El - v) / taum : volt
                                            dge/dt = -ge / taue : 1""",
                                 threshold="v > vt", reset="v = vr", method="euler", namespace=ns)
        neurons.v = P["E_l"] * mV
        S = b2.Synapses(inputs, neurons,
                        """w : 1
                           dApre/dt = -Apre / taupre : 1 (event-driven)
                           dApost/dt = -Apost / taupost : 1 (event-driven)""",
                        on_pre="""ge += w
                                  Apre += dApre
                                  w = clip(w + Apost, 0, gmax)""",
                        on_post="""Apost += dApost
                                   w = clip(w + Apre, 0, gmax)""",
                        namespace=ns)
        S.connect()
        S.w = "rand() * gmax"
        counter = b2.SpikeMonitor(neurons, record=False)
        net = b2.Network(inputs, neurons, S, counter)
        t0 = time.perf_counter()
        net.run(1 * ms, namespace=ns)  # code generation (+ compilation for cython)
        warmup_s = time.perf_counter() - t0
        loop, total = [], []
        for i in range(spec["repeats"]):  # repeats continue the same simulation
            c0 = int(counter.num_spikes)
            t0 = time.perf_counter()
            net.run(seconds * second, namespace=ns)
            total.append(time.perf_counter() - t0)
            loop.append(float(b2.get_device()._last_run_time))
            if i == 0:  # the first repeat covers the same biological time as ours: [1 ms, 1 ms + T]
                rate = (int(counter.num_spikes) - c0) / (n_post * seconds)
                mean_w = float(S.w[:].mean() / P["g_max"])
        T = n_steps(seconds)
        med = statistics.median(loop)
        rows.append({
            "engine": f"Brian2 {b2.__version__} ({spec['target']})", "target": spec["target"],
            "n_pre": n_pre, "n_post": n_post, "batch": 1, "pass": "forward", "bio_seconds": seconds, "steps": T,
            "synapse_steps": n_pre * n_post * T, "seconds_median": med, "seconds_all": loop,
            "seconds_with_run_overhead": total, "synapse_steps_per_s": n_pre * n_post * T / med,
            "us_per_step": med / T * 1e6, "warmup_s": warmup_s,
            "mean_final_w": mean_w, "post_rate_hz": rate,
            "brian2_version": b2.__version__,
        })
    return {"rows": rows}


def find_brian2_python(explicit: str | None) -> str | None:
    candidates = [explicit, os.environ.get("BRIAN2_PYTHON"), str(REPO / ".venv-bench" / "bin" / "python"),
                  "/tmp/bench-venv/bin/python", sys.executable]
    for c in candidates:
        if not c or not Path(c).exists():
            continue
        probe = subprocess.run([c, "-c", "import brian2"], capture_output=True, text=True)
        if probe.returncode == 0:
            return c
        if c == explicit:
            print(f"--brian2-python {c} cannot import brian2:\n{probe.stderr.strip().splitlines()[-1]}")
    return None


def run_brian2(python: str, target: str, runs, repeats: int, timeout: float) -> tuple[list, list]:
    """One fresh subprocess per network size: Brian2 names objects by creation order
    (``neurongroup_1``, ...) and those names enter the generated code, so a second network
    in the same process would miss the cython cache and compile again."""
    rows, errors = [], []
    for run in runs:
        spec = {"target": target, "runs": [run], "repeats": repeats, "seed": 1}
        cmd = [python, str(Path(__file__).resolve()), "--brian2-worker", json.dumps(spec)]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=str(REPO))
        except subprocess.TimeoutExpired:
            errors.append(f"Brian2 {target} {run[0]} x {run[1]}: did not finish in {timeout:.0f} s")
            continue
        if p.returncode != 0:
            tail = "\n".join((p.stderr or p.stdout).strip().splitlines()[-5:])
            errors.append(f"Brian2 {target} {run[0]} x {run[1]} failed (exit {p.returncode}):\n{tail}")
            continue
        rows += json.loads(p.stdout.strip().splitlines()[-1])["rows"]
    return rows, errors


# ============================================================================= report

def fmt(x: float) -> str:
    return f"{x:.3g}" if isinstance(x, float) else str(x)


def markdown(rows: list[dict], cols: list[tuple[str, str]]) -> str:
    lines = ["| " + " | ".join(h for h, _ in cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(fmt(r.get(k, "")) if not callable(k) else k(r) for _, k in cols) + " |")
    return "\n".join(lines)


def tables(ours: list[dict], brian: list[dict]) -> str:
    out = ["### Ours (JAX, CPU): throughput", ""]
    out.append(markdown(ours, [
        ("N_pre x N_post", lambda r: f"{r['n_pre']} x {r['n_post']}"), ("batch", "batch"), ("pass", "pass"),
        ("bio time (s)", "bio_seconds"), ("steps", "steps"), ("synapse-steps/s", "synapse_steps_per_s"),
        ("us/step", "us_per_step"), ("compile (s)", "compile_s"), ("XLA temp (MiB)", "xla_temp_mib"),
        ("checkpoint every", lambda r: str(r["checkpoint_every"] or "-")),
        ("d mean w / dA_plus (network 0)", lambda r: fmt(r["grad_network0"]["A_plus"]) if "grad_network0" in r else "-"),
    ]))
    if brian:
        out += ["", "### Forward, batch 1: ours vs Brian2 (same network, same biological time)", ""]
        comp = []
        for o in (r for r in ours if r["batch"] == 1 and r["pass"] == "forward"):
            row = {"size": f"{o['n_pre']} x {o['n_post']}", "bio": o["bio_seconds"],
                   "ours": o["synapse_steps_per_s"], "rate_ours": o["post_rate_hz"], "w_ours": o["mean_final_w"]}
            for b in brian:
                if (b["n_pre"], b["n_post"]) == (o["n_pre"], o["n_post"]):
                    t = b["target"]
                    row[t] = b["synapse_steps_per_s"]
                    row[f"ratio_{t}"] = o["synapse_steps_per_s"] / b["synapse_steps_per_s"]
                    row[f"rate_{t}"] = b["post_rate_hz"]
                    row[f"warm_{t}"] = b["warmup_s"]
            comp.append(row)
        cols = [("N_pre x N_post", "size"), ("bio time (s)", "bio"), ("ours syn-steps/s", "ours")]
        targets = [t for t in ("numpy", "cython") if any(b["target"] == t for b in brian)]
        for t in targets:
            cols += [(f"Brian2 {t} syn-steps/s", t), (f"ours/Brian2 {t}", f"ratio_{t}")]
        cols += [("post rate ours (Hz)", "rate_ours")] + [(f"post rate {t} (Hz)", f"rate_{t}") for t in targets]
        cols += [(f"Brian2 {t} warm-up (s)", f"warm_{t}") for t in targets]
        out.append(markdown(comp, cols))
        out += ["", "ours/Brian2 > 1: ours is faster. Brian2 time is its main loop (median of repeats), "
                "code generation/compilation excluded (shown as warm-up)."]
    return "\n".join(out)


def machine_info() -> dict:
    import jax
    import numpy as np
    return {"platform": platform.platform(), "python": platform.python_version(), "cpu_count": os.cpu_count(),
            "processor": platform.processor(), "jax": jax.__version__, "numpy": np.__version__,
            "jax_devices": [str(d) for d in jax.devices()]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, short runs (~1 min)")
    ap.add_argument("--repeats", type=int, default=None, help="timed repeats per configuration (default 3, quick 2)")
    ap.add_argument("--brian2-python", default=None,
                    help="interpreter that imports brian2 (default: $BRIAN2_PYTHON, .venv-bench, /tmp/bench-venv, this one)")
    ap.add_argument("--brian2-targets", default=None, help="comma-separated (default numpy,cython)")
    ap.add_argument("--no-brian2", action="store_true")
    ap.add_argument("--out", type=Path, default=None, help="JSON output (default benchmarks/results/...)")
    ap.add_argument("--brian2-worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.brian2_worker is not None:  # subprocess mode, under the Brian2 interpreter
        print(json.dumps(brian2_worker(json.loads(args.brian2_worker))))
        return 0

    durations = QUICK if args.quick else FULL
    sizes = list(durations)
    repeats = args.repeats or (2 if args.quick else 3)
    targets = (args.brian2_targets or "numpy,cython").split(",")
    out_path = args.out or HERE / "results" / ("simulator_throughput_quick.json" if args.quick else "simulator_throughput.json")
    t_start = time.perf_counter()

    notes = []
    brian_rows = []
    if not args.no_brian2:
        py = find_brian2_python(args.brian2_python)
        if py is None:
            notes.append("Brian2 not found: install it in a separate venv (see benchmarks/README.md) and pass "
                         "--brian2-python; Brian2 2.9.0 needs numpy < 2.4.")
        else:
            runs = [(n_pre, n_post, durations[(n_pre, n_post)][(1, "forward")]) for n_pre, n_post in sizes]
            for t in targets:
                if t == "cython" and not (shutil.which("gcc") or shutil.which("cc")):
                    notes.append("Brian2 cython skipped: no C compiler found")
                    continue
                print(f"Brian2 {t} ({py}) ...", flush=True)
                rows, errors = run_brian2(py, t, runs, repeats, timeout=300)
                brian_rows += rows
                for err in errors:
                    notes.append(err)
                    print(err, flush=True)

    ours = []
    for n_pre, n_post in sizes:
        for (batch, pass_), seconds in durations[(n_pre, n_post)].items():
            print(f"ours {n_pre} x {n_post}, batch {batch}, {pass_}, {seconds} s ...", flush=True)
            ours.append(time_ours(n_pre, n_post, seconds, batch, pass_, repeats))
            r = ours[-1]
            print(f"  {r['synapse_steps_per_s']:.3g} synapse-steps/s ({r['seconds_median']:.3f} s, "
                  f"compile {r['compile_s']:.1f} s)", flush=True)

    ours.sort(key=lambda r: (r["n_pre"] * r["n_post"], r["pass"], r["batch"]))
    text = tables(ours, brian_rows)
    if any(r.get("grad_finite") is False for r in ours):
        notes.append("gradient nan: the surrogate gradient through the closed-loop LIF network grows "
                     "~exponentially with the number of steps at dt = 0.1 ms (loops v -> s_post -> reset -> v and "
                     "W -> g -> v -> s_post -> STDP -> W) and overflows to NaN within ~10^3-10^4 steps, with or "
                     "without output spikes; the time of the backward pass is still what is "
                     "measured. A gradient of exactly 0: no output spike in the episode (v starts at E_l; 100 inputs "
                     "never drive the neuron to threshold).")
    print("\n" + text)
    for n in notes:
        print("\nNote: " + n)
    total = time.perf_counter() - t_start
    print(f"\ntotal wall time {total:.0f} s")
    result = {"benchmark": "simulator_throughput", "quick": args.quick, "machine": machine_info(),
              "network": SONG, "ours": ours, "brian2": brian_rows, "notes": notes, "wall_s": total,
              "markdown": text}
    from discover.io import write_json  # here: the Brian2 worker runs this file without discover

    write_json(out_path, result)
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
