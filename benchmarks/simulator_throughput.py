"""Simulator throughput, in synapse-steps per second, against Brian2 measured in the same run.

The network is Brian2's STDP example after Song, Miller & Abbott 2000 (the model of
``shared/reference/brian2_song2000.json`` and ``tests/test_fidelity.py``), widened to
``N_post`` neurons: ``N_pre`` Poisson inputs at 15 Hz, all-to-all onto ``N_post``
conductance-based LIF neurons (Euler, ``tau_m = 10 ms``, ``E_l = -74 mV``, ``v_t = -54 mV``,
``v_r = -60 mV``, ``E_e = 0``, ``tau_e = 5 ms``, ``v(0) = E_l``, no refractory period),
weights ``U(0, g_max)``, additive all-to-all pair STDP (``A_plus = 0.01 g_max``,
``A_minus = 1.05 A_plus``, ``tau_pre = tau_post = 20 ms``), clipped to ``[0, g_max]``,
``dt = 0.1 ms``. Ours: :class:`discover.networks.LIFNetwork` (``post_mode = "closed"``)
with ``canonical_rule("stdp_pair")``, on its two engines (targets ``dense``: every synapse
every step; ``event``: only the rows and columns of neurons that spiked,
:mod:`discover.eventsim`). Poisson inputs are drawn inside the ``lax.scan``, as Brian2's
``PoissonGroup`` draws them every step: ``--inputs hash`` (default) thresholds a
counter-based hash of (episode seed, step, input) (the murmur3 finalizer: ~0.3 ns per
input, as cheap as Brian2's Mersenne twister); ``--inputs threefry`` draws
``jax.random.bits`` (~5 ns per input on this CPU: 1000 inputs cost ~5 us per step and
network, more than the event engine's whole step at 1000 x 100).

Measured, per ``(N_pre, N_post)`` in ``{(100, 10), (1000, 100), (1000, 1000), (10000, 1000)}``:

- ours, both targets, batch 1 and 16 (``vmap`` over independent networks: own initial
  weights and inputs), mode ``forward`` and ``gradient`` (``jax.grad`` of the mean final
  weight w.r.t. the rule's parameters ``A_plus``, ``A_minus``; the unroll is checkpointed
  every ~sqrt(T) steps with :func:`discover.unroll.unroll`, as meta-training does). Each
  shape is compiled once ahead of time (compile time reported), called once to warm up,
  then timed ``--repeats`` times with ``block_until_ready``; the median is reported.
- Brian2 2.9, targets ``numpy``, ``cython`` (runtime code generation) and ``cpp_standalone``
  (the whole simulation generated as a C++ project, compiled with ``-O3 -march=native`` and
  run as a binary), batch 1, forward, same network, in a subprocess per size (Brian2 may
  live in another virtual environment: 2.9.0, the newest release, does not import with
  numpy >= 2.4). Time is Brian2's own main-loop time: ``device._last_run_time`` (numpy,
  cython: the run's loop, code generation and compilation excluded, the first short run
  that triggers them reported as warm-up; cpp_standalone: ``Network::run``'s loop as the
  binary writes it to ``results/last_run_info.txt``, CPU time by ``std::clock``, synapse
  creation and file output excluded; code generation + compilation reported as warm-up,
  the binary re-run ``--repeats`` times with ``device.run``), median of repeats.

synapse-steps/s = batch * N_pre * N_post * steps / seconds. XLA may use both cores; Brian2
runs on one.

    .venv/bin/python benchmarks/simulator_throughput.py            # ~35 min on 2 cores
    .venv/bin/python benchmarks/simulator_throughput.py --quick    # ~2 min
    .venv/bin/python benchmarks/simulator_throughput.py --goal --out benchmarks/results/simulator_goal.json
        # the issue's comparison: 1000 x 1000 and 1000 x 100, ours batch 16 forward (dense,
        # event) against Brian2 cpp_standalone and cython, batch 1, 1 s of biological time
    .venv/bin/python benchmarks/simulator_throughput.py --brian2-python /tmp/bench-venv/bin/python \
        --brian2-targets numpy,cython,cpp_standalone --sizes 1000x100 --targets event --batches 16 --modes forward

Prints markdown tables and writes ``--out`` (default
``benchmarks/results/simulator_throughput[_quick|_goal].json``): one record per measurement
under ``results`` (``engine`` ``ours`` or ``brian2``, ``target``, ``n_pre``, ``n_post``,
``batch``, ``mode``, ``synapse_steps_per_s``, and the raw timings).
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
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

# Song, Miller & Abbott 2000 as in Brian2's example (units: ms, mV; weights in units of g_max)
SONG = dict(dt_ms=0.1, tau_m=10.0, E_l=-74.0, v_t=-54.0, v_r=-60.0, E_e=0.0, tau_e=5.0, rate_hz=15.0,
            g_max=0.01, A_plus=0.01, A_minus=0.0105, tau_pre=20.0, tau_post=20.0)

SIZES = [(100, 10), (1000, 100), (1000, 1000), (10000, 1000)]
TARGETS = ("dense", "event")
BRIAN2_TARGETS = ("numpy", "cython", "cpp_standalone")

# biological seconds per measurement: ours by (size, target, batch, mode), Brian2 by size.
# Long enough for >= ~1 s of timed work, short enough for the slow configurations.
FORWARD = {  # (size, target, batch) -> seconds
    ((100, 10), "dense", 1): 1.0, ((100, 10), "dense", 16): 1.0,
    ((100, 10), "event", 1): 1.0, ((100, 10), "event", 16): 1.0,
    ((1000, 100), "dense", 1): 1.0, ((1000, 100), "dense", 16): 0.2,
    ((1000, 100), "event", 1): 1.0, ((1000, 100), "event", 16): 1.0,
    ((1000, 1000), "dense", 1): 1.0, ((1000, 1000), "dense", 16): 0.05,
    ((1000, 1000), "event", 1): 1.0, ((1000, 1000), "event", 16): 1.0,
    ((10000, 1000), "dense", 1): 0.05, ((10000, 1000), "dense", 16): 0.005,
    ((10000, 1000), "event", 1): 0.05, ((10000, 1000), "event", 16): 0.005,
}
GRADIENT = {  # (size, batch) -> seconds, both targets (the event target's tangent is dense)
    ((100, 10), 1): 1.0, ((100, 10), 16): 0.2, ((1000, 100), 1): 0.1, ((1000, 100), 16): 0.05,
    ((1000, 1000), 1): 0.05, ((1000, 1000), 16): 0.02, ((10000, 1000), 1): 0.005,
}  # 10000 x 1000 at batch 16: 16 weight matrices of 40 MB and their residuals, several GB: not measured
BRIAN2_SECONDS = {(100, 10): 1.0, (1000, 100): 1.0, (1000, 1000): 1.0, (10000, 1000): 0.1}
QUICK_SCALE = 0.2  # --quick: this fraction of every duration (at least 100 steps)


def n_steps(seconds: float) -> int:
    return max(1, int(round(seconds * 1e3 / SONG["dt_ms"])))


def checkpoint_chunk(T: int) -> int:
    """The divisor of ``T`` closest to sqrt(T): memory ~ T/chunk carries + chunk steps."""
    divisors = [d for d in range(1, T + 1) if T % d == 0]
    return min(divisors, key=lambda d: abs(math.log(d) - 0.5 * math.log(T)))


# ============================================================================= ours (JAX)

def hash_bits(seed, t, n: int):
    """32 random bits per input for step ``t``: the murmur3 finalizer of a Weyl sequence over
    (step, input), offset by the episode's ``seed`` (uint32). Poisson inputs need
    independent uniform draws, not cryptographic ones; this costs ~0.3 ns per input."""
    import jax.numpy as jnp

    x = (jnp.arange(n, dtype=jnp.uint32) + t.astype(jnp.uint32) * jnp.uint32(n)) * jnp.uint32(0x9E3779B9) + seed
    x = (x ^ (x >> 16)) * jnp.uint32(0x85EBCA6B)
    x = (x ^ (x >> 13)) * jnp.uint32(0xC2B2AE35)
    return x ^ (x >> 16)


def build_ours(n_pre: int, n_post: int, T: int, batch: int, backward: bool, engine: str, inputs: str):
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
                     v0=P["E_l"], engine=engine)
    rule = canonical_rule("stdp_pair", {"A_plus": P["A_plus"], "A_minus": P["A_minus"],
                                        "tau_pre": P["tau_pre"], "tau_post": P["tau_post"]})
    assert net.engine_for(rule) == engine
    params = rule.init(jax.random.key(0))
    threshold = jnp.uint32(round(P["rate_hz"] * P["dt_ms"] * 1e-3 * 2**32))  # P(bits < threshold) = r dt
    chunk = checkpoint_chunk(T) if backward else None

    def episode(params, key):
        k_w, k_in = jax.random.split(key)
        W0 = jax.random.uniform(k_w, (n_post, n_pre))  # U(0, g_max) in units of g_max
        seed = jax.random.bits(k_in, (), jnp.uint32)

        def step(carry, t):
            state, count = carry
            if inputs == "hash":
                bits = hash_bits(seed, t, n_pre)
            else:
                bits = jax.random.bits(jax.random.fold_in(k_in, t), (n_pre,))
            s = (bits < threshold).astype(jnp.float32)
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


def time_ours(n_pre, n_post, seconds, batch, mode, engine, repeats, inputs):
    import jax
    import numpy as np

    T = n_steps(seconds)
    backward = mode == "gradient"
    fn, params, keys, chunk = build_ours(n_pre, n_post, T, batch, backward, engine, inputs)
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
        "engine": "ours", "target": engine, "n_pre": n_pre, "n_post": n_post, "batch": batch, "mode": mode,
        "inputs": inputs, "bio_seconds": seconds, "steps": T, "checkpoint_every": chunk,
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


#: ES generations: configs/stdp_pair.toml (imitate pair STDP, closed loop, CMA-ES), as shipped
#: (50 -> 4) and widened to 1000 -> 100 (w_scale 0.3 mV per unit weight: ~30 Hz outputs)
ES_SIZES = [(50, 4), (1000, 100)]


def time_es(n_pre: int, n_post: int, engine: str, generations: int, repeats: int) -> dict:
    """CMA-ES generations per second of ``configs/stdp_pair.toml``'s meta-training step (its
    population of 32 rules x 16 episodes of 2 s at dt = 1 ms, teacher and student closed
    loops; widened: 2 episodes per member, 100 ms bins), at ``n_pre x n_post`` on
    ``engine``: ``generations`` jitted steps, after one to compile, median of ``repeats``."""
    import jax

    from discover.build import build_student, build_task
    from discover.config import config_from_dict
    from discover.registry import META_OPTIMIZERS

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    data = tomllib.loads((REPO / "configs" / "stdp_pair.toml").read_text())
    data["task"].update(n_pre=n_pre, n_post=n_post)
    data["network"]["engine"] = engine
    if (n_pre, n_post) != (50, 4):  # same drive per neuron; 2 episodes per member, 100 ms bins: the
        # recorded trajectories of 32 x 16 networks of 1000 x 100 would take 40 GB
        data["network"]["w_scale"] = data["network"]["w_scale"] * 50 / n_pre
        data["meta"]["batch"] = 2
        data["task"].update(record_every=100, obs_tau=0.5)
    cfg = config_from_dict(data)
    task = build_task(cfg)
    rule = build_student(cfg, task)
    assert task.network.engine_for(rule) == engine
    opt = META_OPTIMIZERS.get(cfg.meta.optimizer)(cfg.meta, task, rule)
    key = jax.random.key(0)
    params = rule.init(key)
    state = opt.init(key, params)

    @jax.jit
    def step(params, state, i):
        return opt.step(params, state, task.training_sample(jax.random.fold_in(key, i), cfg.meta.batch), i)

    t0 = time.perf_counter()
    out = jax.block_until_ready(step(params, state, 0))
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        p, st = out[0], out[1]
        t0 = time.perf_counter()
        for i in range(generations):
            p, st, loss, _ = step(p, st, i + 1)
        jax.block_until_ready(p)
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    episodes = cfg.meta.population * cfg.meta.batch
    steps = cfg.task.steps
    return {"engine": "ours", "target": engine, "n_pre": n_pre, "n_post": n_post, "batch": episodes, "mode": "es",
            "population": cfg.meta.population, "episodes_per_member": cfg.meta.batch, "steps": steps,
            "bio_seconds": steps * task.network.dt * 1e-3, "generations": generations, "seconds_median": med,
            "seconds_all": times, "compile_s": compile_s, "generations_per_s": generations / med,
            # the students' synapse-steps (the teacher's closed loops run beside them)
            "synapse_steps_per_s": episodes * n_pre * n_post * steps * generations / med,
            "meta_loss": float(loss), "checkpoint_every": None, "post_rate_hz": float("nan")}


# ============================================================================= Brian2 worker
#
# Runs under the Brian2 interpreter (possibly another venv, without jax): stdlib + brian2 only.

def brian2_network(b2, n_pre, n_post, ns):
    """Song et al.'s network in Brian2 (the example's equations, widened to n_post neurons)."""
    from brian2 import Hz, mV

    P = SONG
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
    return b2.Network(inputs, neurons, S, counter), S, counter


def brian2_worker(spec: dict) -> dict:
    import brian2 as b2
    from brian2 import ms, mV, second

    target = spec["target"]
    standalone = target == "cpp_standalone"
    if standalone:
        b2.set_device("cpp_standalone", build_on_run=False)
    else:
        b2.prefs.codegen.target = target
    b2.prefs.logging.console_log_level = "WARNING"
    P = SONG
    rows = []
    for n_pre, n_post, seconds in spec["runs"]:
        if standalone:  # a fresh project per network
            b2.device.reinit()
            b2.device.activate(build_on_run=False)
        b2.start_scope()
        b2.seed(spec["seed"])
        b2.defaultclock.dt = P["dt_ms"] * ms
        ns = {"taum": P["tau_m"] * ms, "taue": P["tau_e"] * ms, "Ee": P["E_e"] * mV, "El": P["E_l"] * mV,
              "vt": P["v_t"] * mV, "vr": P["v_r"] * mV, "taupre": P["tau_pre"] * ms, "taupost": P["tau_post"] * ms,
              "gmax": P["g_max"], "dApre": P["A_plus"] * P["g_max"], "dApost": -P["A_minus"] * P["g_max"]}
        net, S, counter = brian2_network(b2, n_pre, n_post, ns)
        loop, total = [], []
        if standalone:
            net.run(seconds * second, namespace=ns)
            project = tempfile.mkdtemp(prefix="brian2_standalone_")
            t0 = time.perf_counter()
            b2.device.build(directory=project, compile=True, run=True, with_output=False)
            warmup_s = time.perf_counter() - t0  # code generation, compilation and the first run
            rate = int(counter.num_spikes) / (n_post * seconds)
            mean_w = float(S.w[:].mean() / P["g_max"])
            for _ in range(spec["repeats"]):  # the compiled binary again, from t = 0
                t0 = time.perf_counter()
                b2.device.run(directory=project, with_output=False)
                total.append(time.perf_counter() - t0)
                loop.append(float(b2.device._last_run_time))
            shutil.rmtree(project, ignore_errors=True)
        else:
            t0 = time.perf_counter()
            net.run(1 * ms, namespace=ns)  # code generation (+ compilation for cython)
            warmup_s = time.perf_counter() - t0
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
            "engine": "brian2", "target": target, "n_pre": n_pre, "n_post": n_post, "batch": 1, "mode": "forward",
            "bio_seconds": seconds, "steps": T, "synapse_steps": n_pre * n_post * T, "seconds_median": med,
            "seconds_all": loop, "seconds_with_run_overhead": total, "synapse_steps_per_s": n_pre * n_post * T / med,
            "us_per_step": med / T * 1e6, "warmup_s": warmup_s, "mean_final_w": mean_w, "post_rate_hz": rate,
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

def fmt(x) -> str:
    return f"{x:.3g}" if isinstance(x, float) else str(x)


def markdown(rows: list[dict], cols: list[tuple[str, object]]) -> str:
    lines = ["| " + " | ".join(h for h, _ in cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(k(r) if callable(k) else fmt(r.get(k, "")) for _, k in cols) + " |")
    return "\n".join(lines)


def size(r) -> str:
    return f"{r['n_pre']} x {r['n_post']}"


def comparison(results: list[dict]) -> str:
    """Ours at batch 16, forward (both targets) against Brian2 (batch 1) per size."""
    brian = {(r["n_pre"], r["n_post"], r["target"]): r for r in results if r["engine"] == "brian2"}
    rows = []
    for o in (r for r in results if r["engine"] == "ours" and r["mode"] == "forward"):
        row = {"size": size(o), "target": o["target"], "batch": o["batch"], "bio": o["bio_seconds"],
               "ours": o["synapse_steps_per_s"], "rate": o["post_rate_hz"]}
        for t in BRIAN2_TARGETS:
            b = brian.get((o["n_pre"], o["n_post"], t))
            if b:
                row[t] = b["synapse_steps_per_s"]
                row[f"ratio_{t}"] = o["synapse_steps_per_s"] / b["synapse_steps_per_s"]
        rows.append(row)
    targets = [t for t in BRIAN2_TARGETS if any(t in r for r in rows)]
    cols = [("N_pre x N_post", "size"), ("ours target", "target"), ("batch", "batch"), ("bio time (s)", "bio"),
            ("ours syn-steps/s", "ours")]
    for t in targets:
        cols += [(f"Brian2 {t}", t), (f"ours / {t}", f"ratio_{t}")]
    cols += [("post rate ours (Hz)", "rate")]
    return markdown(rows, cols)


def tables(results: list[dict]) -> str:
    ours = [r for r in results if r["engine"] == "ours" and r["mode"] != "es"]
    es = [r for r in results if r["engine"] == "ours" and r["mode"] == "es"]
    brian = [r for r in results if r["engine"] == "brian2"]
    out = []
    if brian:
        out += ["### Brian2 (batch 1, forward; main-loop time)", ""]
        out.append(markdown(brian, [
            ("N_pre x N_post", size), ("target", "target"), ("bio time (s)", "bio_seconds"),
            ("synapse-steps/s", "synapse_steps_per_s"), ("us/step", "us_per_step"), ("warm-up (s)", "warmup_s"),
            ("post rate (Hz)", "post_rate_hz"), ("mean final w / g_max", "mean_final_w")]))
        out += [""]
    out += ["### Ours (JAX, CPU)", ""]
    out.append(markdown(ours, [
        ("N_pre x N_post", size), ("target", "target"), ("batch", "batch"), ("mode", "mode"),
        ("bio time (s)", "bio_seconds"), ("steps", "steps"), ("synapse-steps/s", "synapse_steps_per_s"),
        ("us/step", "us_per_step"), ("compile (s)", "compile_s"), ("XLA temp (MiB)", "xla_temp_mib"),
        ("post rate (Hz)", "post_rate_hz"),
        ("checkpoint every", lambda r: str(r["checkpoint_every"] or "-")),
        ("d mean w / dA_plus (network 0)", lambda r: fmt(r["grad_network0"]["A_plus"]) if "grad_network0" in r else "-"),
    ]))
    if es:
        out += ["", "### Evolution strategies: CMA-ES generations per second (configs/stdp_pair.toml)", ""]
        out.append(markdown(es, [
            ("N_pre x N_post", size), ("target", "target"), ("population x episodes", "batch"),
            ("steps (dt 1 ms)", "steps"), ("generations/s", "generations_per_s"),
            ("student synapse-steps/s", "synapse_steps_per_s"), ("compile (s)", "compile_s")]))
    if brian:
        out += ["", "### Forward: ours vs Brian2 (batch 1; same network)", "", comparison(results), "",
                "ours / Brian2 > 1: ours is faster. Brian2's time is its main loop (median of repeats), code "
                "generation and compilation excluded."]
    return "\n".join(out)


def machine_info() -> dict:
    import jax
    import numpy as np
    return {"platform": platform.platform(), "python": platform.python_version(), "cpu_count": os.cpu_count(),
            "processor": platform.processor(), "jax": jax.__version__, "numpy": np.__version__,
            "jax_devices": [str(d) for d in jax.devices()]}


def parse_sizes(text: str) -> list[tuple[int, int]]:
    return [tuple(int(v) for v in part.lower().split("x")) for part in text.split(",")]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help=f"every duration x {QUICK_SCALE}, 2 repeats (~2 min)")
    ap.add_argument("--goal", action="store_true",
                    help="the issue's comparison only: 1000x1000 and 1000x100, ours batch 16 forward (dense, event), "
                         "Brian2 cpp_standalone and cython; 1 s of biological time")
    ap.add_argument("--sizes", default=None, help="comma-separated N_prexN_post (default: all four)")
    ap.add_argument("--targets", default="dense,event", help="ours: comma-separated, of dense, event")
    ap.add_argument("--batches", default="1,16")
    ap.add_argument("--modes", default="forward,gradient,es",
                    help="of forward, gradient, es (CMA-ES generations of configs/stdp_pair.toml, as shipped and "
                         "at 1000 x 100)")
    ap.add_argument("--inputs", choices=("hash", "threefry"), default="hash",
                    help="how ours draws the Poisson inputs (see the module docstring)")
    ap.add_argument("--repeats", type=int, default=None, help="timed repeats per configuration (default 3, quick 2)")
    ap.add_argument("--brian2-python", default=None,
                    help="interpreter that imports brian2 (default: $BRIAN2_PYTHON, .venv-bench, /tmp/bench-venv, this one)")
    ap.add_argument("--brian2-targets", default=None,
                    help=f"comma-separated, of {', '.join(BRIAN2_TARGETS)} (default all; --goal: cython,cpp_standalone)")
    ap.add_argument("--no-brian2", action="store_true")
    ap.add_argument("--out", type=Path, default=None, help="JSON output (default benchmarks/results/...)")
    ap.add_argument("--brian2-worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.brian2_worker is not None:  # subprocess mode, under the Brian2 interpreter
        print(json.dumps(brian2_worker(json.loads(args.brian2_worker))))
        return 0

    if args.goal:
        sizes = parse_sizes(args.sizes or "1000x1000,1000x100")
        batches, modes = [16], ["forward"]
        btargets = (args.brian2_targets or "cython,cpp_standalone").split(",")
        # the event target over the same biological second as Brian2's; dense (10x slower) shorter
        forward = {k: 1.0 if k[1] == "event" else v for k, v in FORWARD.items()}
    else:
        sizes = parse_sizes(args.sizes) if args.sizes else SIZES
        batches = [int(b) for b in args.batches.split(",")]
        modes = args.modes.split(",")
        btargets = (args.brian2_targets or ",".join(BRIAN2_TARGETS)).split(",")
        forward = FORWARD
    for m in modes:
        if m not in ("forward", "gradient", "es"):
            ap.error(f"--modes: {m!r} is not one of forward, gradient, es")
    targets = args.targets.split(",")
    for t in targets:
        if t not in TARGETS:
            ap.error(f"--targets: {t!r} is not one of {', '.join(TARGETS)}")
    for t in btargets:
        if t not in BRIAN2_TARGETS:
            ap.error(f"--brian2-targets: {t!r} is not one of {', '.join(BRIAN2_TARGETS)}")
    scale = QUICK_SCALE if args.quick else 1.0
    repeats = args.repeats or (2 if args.quick else 3)
    name = "simulator_throughput" + ("_goal" if args.goal else "_quick" if args.quick else "")
    out_path = args.out or HERE / "results" / f"{name}.json"
    t_start = time.perf_counter()
    load_start = os.getloadavg()

    notes, results = [], []
    if not args.no_brian2:
        py = find_brian2_python(args.brian2_python)
        if py is None:
            notes.append("Brian2 not found: install it in a separate venv (see benchmarks/README.md) and pass "
                         "--brian2-python; Brian2 2.9.0 needs numpy < 2.4.")
        else:
            runs = [(n_pre, n_post, max(BRIAN2_SECONDS.get((n_pre, n_post), 0.1) * scale, 0.01))
                    for n_pre, n_post in sizes]
            if args.goal:
                runs = [(a, b, 1.0) for a, b, _ in runs]
            for t in btargets:
                if t in ("cython", "cpp_standalone") and not (shutil.which("gcc") or shutil.which("cc")):
                    notes.append(f"Brian2 {t} skipped: no C compiler found")
                    continue
                print(f"Brian2 {t} ({py}) ...", flush=True)
                rows, errors = run_brian2(py, t, runs, repeats, timeout=900)
                results += rows
                for r in rows:
                    print(f"  {size(r)}: {r['synapse_steps_per_s']:.3g} synapse-steps/s", flush=True)
                for err in errors:
                    notes.append(err)
                    print(err, flush=True)

    if "es" in modes:
        for n_pre, n_post in ES_SIZES:
            for target in targets:
                gens = 1 if args.quick else 3
                print(f"ours {target} CMA-ES generations, stdp_pair at {n_pre} x {n_post} ...", flush=True)
                r = time_es(n_pre, n_post, target, gens, repeats)
                results.append(r)
                print(f"  {r['generations_per_s']:.3g} generations/s (compile {r['compile_s']:.1f} s)", flush=True)
    for n_pre, n_post in sizes:
        for mode in (m for m in modes if m != "es"):
            for batch in batches:
                for target in targets:
                    if mode == "forward":
                        seconds = forward.get(((n_pre, n_post), target, batch), 0.1)
                    elif ((n_pre, n_post), batch) in GRADIENT:
                        seconds = GRADIENT[((n_pre, n_post), batch)]
                    else:
                        notes.append(f"ours {n_pre} x {n_post}, batch {batch}, gradient: not measured (memory)")
                        continue
                    seconds = max(seconds * scale, 0.01)
                    print(f"ours {target} {n_pre} x {n_post}, batch {batch}, {mode}, {seconds:g} s ...", flush=True)
                    r = time_ours(n_pre, n_post, seconds, batch, mode, target, repeats, args.inputs)
                    results.append(r)
                    print(f"  {r['synapse_steps_per_s']:.3g} synapse-steps/s ({r['seconds_median']:.3f} s, "
                          f"compile {r['compile_s']:.1f} s, post rate {r['post_rate_hz']:.1f} Hz)", flush=True)

    results.sort(key=lambda r: (r["n_pre"] * r["n_post"], r["engine"] != "brian2", r["mode"], r["batch"],
                                r["target"]))
    text = tables(results)
    if any(r.get("grad_finite") is False for r in results):
        notes.append("gradient nan: the surrogate gradient through the closed-loop LIF network grows "
                     "~exponentially with the number of steps at dt = 0.1 ms (loops v -> s_post -> reset -> v and "
                     "W -> g -> v -> s_post -> STDP -> W) and overflows to NaN within ~10^3-10^4 steps, with or "
                     "without output spikes; the time of the backward pass is still what is measured.")
    print("\n" + text)
    for n in notes:
        print("\nNote: " + n)
    total = time.perf_counter() - t_start
    print(f"\ntotal wall time {total:.0f} s; load average at the end {os.getloadavg()}")
    result = {"benchmark": "simulator_throughput", "quick": args.quick, "goal": args.goal,
              "machine": {**machine_info(), "loadavg_start": load_start, "loadavg_end": os.getloadavg()}, "network": SONG,
              "inputs": args.inputs, "results": results, "notes": notes, "wall_s": total, "markdown": text,
              "command": " ".join([Path(sys.argv[0]).name] + (argv if argv is not None else sys.argv[1:]))}
    from discover.io import write_json  # here: the Brian2 worker runs this file without discover

    write_json(out_path, result)
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
