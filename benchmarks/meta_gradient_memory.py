"""Peak memory and time of a meta-gradient vs episode length, with and without checkpointing.

The meta-gradient is ``jax.grad`` of :class:`discover.tasks.imitate.Imitate`'s loss (one
episode) w.r.t. a student pair-STDP rule's parameters (``A_plus``, ``A_minus``; teacher:
``canonical_rule("stdp_pair")``, student starts at half its amplitudes). The network is an
open-loop LIF network (``post_mode = "given"``: Poisson pre- and postsynaptic spikes,
5-40 Hz per neuron, drawn per episode), ``N_pre x N_post = 100 x 10``, conductance-based
(Song et al. 2000 parameters), ``dt = 0.1 ms``; weights are recorded every
``record_every = 100`` steps for the loss.

For each episode length ``T`` (default 10^3 ... 10^6 steps = 0.1 ... 100 s) the gradient
is taken with a plain ``lax.scan`` (``checkpoint_every = None``: reverse mode stores every
step's residuals, memory O(T)) and with ``checkpoint_every ~ sqrt(T)`` (``jax.checkpoint``
segments: O(T/c + c) = O(sqrt T)).

Memory, two ways, each configuration in a fresh subprocess:
- ``XLA temp``: the temporary buffers of the compiled gradient
  (``jit(...).lower(...).compile().memory_analysis().temp_size_in_bytes``): exact, static,
  known before running. A configuration whose temp size exceeds ``--max-gb`` (default 8)
  is compiled but not run.
- ``peak RSS``: after the episode is sampled and the gradient compiled, the kernel's
  peak-RSS mark is reset (``/proc/self/clear_refs``) and the current RSS read
  (``/proc/self/statm``); the gradient is called twice and ``resource.getrusage(
  RUSAGE_SELF).ru_maxrss`` read: ``grad added`` = peak - RSS before, what the gradient call
  added at its peak. RSS includes Python, JAX, the compiled code and the episode (~0.4 GB
  at small T). Where the reset is not permitted, only a bound is reported.
Time: the second call of the compiled gradient (the first one is reported too), and one
forward evaluation of the loss for comparison.

    .venv/bin/python benchmarks/meta_gradient_memory.py             # ~70 s on 2 cores
    .venv/bin/python benchmarks/meta_gradient_memory.py --quick     # 10^3, 10^4 steps, ~25 s
    .venv/bin/python benchmarks/meta_gradient_memory.py --steps 1000 100000 --max-gb 2

Prints a markdown table and writes ``benchmarks/results/meta_gradient_memory[_quick].json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
N_PRE, N_POST, DT, RECORD_EVERY = 100, 10, 0.1, 100


def current_rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def release_free_memory() -> None:
    """Return freed heap pages to the OS (glibc ``malloc_trim``), so that memory the episode
    sampling freed is not counted in the RSS before the gradient and then silently reused."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (``VmHWM``, which ``ru_maxrss`` reads) so that the
    peak after this point is the gradient's, not the episode sampling's or the compiler's
    (Linux >= 4.0: ``echo 5 > /proc/self/clear_refs``). False where not permitted."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def sqrt_checkpoint(T: int) -> int:
    """The segment length nearest sqrt(T) that the task can use as is: a whole number of
    record blocks (``RECORD_EVERY`` steps) that divides the episode."""
    n_blocks = T // RECORD_EVERY
    options = [RECORD_EVERY * k for k in range(1, n_blocks + 1) if n_blocks % k == 0]
    return min(options, key=lambda c: (abs(math.log(c / math.sqrt(T))), c))


# ============================================================================= one configuration

def make_task(T: int, checkpoint_every: int | None):
    from discover.networks import LIFNetwork
    from discover.rules import canonical_rule
    from discover.tasks.imitate import make_imitate

    net = LIFNetwork(n_pre=N_PRE, n_post=N_POST, dt=DT, tau_m=10.0, v_rest=-74.0, v_th=-54.0, v_reset=-60.0,
                     t_ref=0.0, synapse="conductance", tau_syn=5.0, E_e=0.0, w_scale=0.01, integration="euler",
                     w_min=0.0, w_max=1.0, post_mode="given")
    teacher = canonical_rule("stdp_pair")
    student = canonical_rule("stdp_pair", {"A_plus": 0.005, "A_minus": 0.00525}, label="student")
    return make_imitate(net, teacher, steps=T, record_every=RECORD_EVERY), student


def sample_worker(spec: dict) -> dict:
    """Sample one episode (inputs + the teacher's trajectory) and save it: the gradient
    workers load it, so their memory does not include the sampling's temporaries."""
    import jax
    import numpy as np

    task, _ = make_task(spec["steps"], None)
    episode = jax.tree_util.tree_map(lambda a: np.asarray(a[0]), task.sample(jax.random.key(spec["seed"]), 1))
    np.savez(spec["path"], **episode)
    return {"path": spec["path"]}


def worker(spec: dict) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np

    T, ckpt = spec["steps"], spec["checkpoint_every"]
    task, student = make_task(T, ckpt)
    with np.load(spec["episode"]) as f:
        episode = {k: jnp.asarray(f[k]) for k in f.files}
    params = student.init(jax.random.key(0))
    episode_mib = sum(a.nbytes for a in jax.tree_util.tree_leaves(episode)) / 2**20

    def meta_grad(params, episode):
        loss, g = jax.value_and_grad(lambda p: task.episode_loss(student, p, episode, chunk=ckpt)[0])(params)
        return loss, g["core"]

    t0 = time.perf_counter()
    compiled = jax.jit(meta_grad).lower(params, episode).compile()
    compile_s = time.perf_counter() - t0
    temp = compiled.memory_analysis().temp_size_in_bytes
    row = {**{k: v for k, v in spec.items() if k != "episode"}, "episode_mib": episode_mib, "compile_s": compile_s, "xla_temp_mib": temp / 2**20,
           "chunk_steps": None}
    if ckpt:  # what the task actually uses: whole record blocks dividing the episode
        n_blocks, chunk = T // RECORD_EVERY, max(1, ckpt // RECORD_EVERY)
        while n_blocks % chunk:
            chunk -= 1
        row["chunk_steps"] = chunk * RECORD_EVERY
    if temp > spec["max_gb"] * 2**30:
        row.update(skipped=f"XLA temp {temp / 2**30:.1f} GiB > {spec['max_gb']} GiB: not run")
        return row
    peak_setup = peak_rss_mib()  # loading the episode, compiling
    release_free_memory()
    reset = reset_peak_rss()
    rss_before = current_rss_mib()
    t0 = time.perf_counter()
    loss, g = jax.block_until_ready(compiled(params, episode))
    first_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    loss, g = jax.block_until_ready(compiled(params, episode))
    grad_s = time.perf_counter() - t0
    peak_after = peak_rss_mib()
    fwd = jax.jit(lambda p, e: task.episode_loss(student, p, e)[0]).lower(params, episode).compile()
    jax.block_until_ready(fwd(params, episode))
    t0 = time.perf_counter()
    jax.block_until_ready(fwd(params, episode))
    fwd_s = time.perf_counter() - t0
    row.update(peak_setup_mib=peak_setup, peak_reset=reset, rss_before_mib=rss_before, peak_rss_mib=peak_after,
               grad_added_mib=peak_after - rss_before if (reset or peak_after > peak_setup) else None,
               first_call_s=first_s, grad_s=grad_s, forward_s=fwd_s, loss=float(loss),
               grad={k: float(v) for k, v in g.items()},
               grad_finite=bool(all(np.isfinite(float(v)) for v in g.values())))
    return row


# ============================================================================= driver

def fmt(x) -> str:
    if x is None:
        return "-"
    return f"{x:.3g}" if isinstance(x, float) else str(x)


def grad_added(r: dict) -> str:
    """Peak RSS minus RSS just before the gradient call; where the process had already peaked
    higher (sampling the episode, compiling), only a bound is known."""
    if "peak_rss_mib" not in r:
        return "-"
    if r["grad_added_mib"] is not None:
        return fmt(r["grad_added_mib"])
    return f"<= {r['peak_setup_mib'] - r['rss_before_mib']:.3g}"


def markdown(rows: list[dict]) -> str:
    cols = [("steps T", lambda r: f"{r['steps']:,}"), ("bio time (s)", lambda r: fmt(r["steps"] * DT * 1e-3)),
            ("checkpoint_every", lambda r: fmt(r["chunk_steps"]) if r["checkpoint_every"] else "none"),
            ("XLA temp (MiB)", lambda r: fmt(r["xla_temp_mib"])),
            ("RSS before grad (MiB)", lambda r: fmt(r.get("rss_before_mib"))),
            ("peak RSS in grad (MiB)", lambda r: fmt(r.get("peak_rss_mib"))),
            ("grad added (MiB)", grad_added),
            ("episode inputs (MiB)", lambda r: fmt(r["episode_mib"])),
            ("setup peak (MiB)", lambda r: fmt(r.get("peak_setup_mib"))),
            ("grad time (s)", lambda r: fmt(r.get("grad_s"))),
            ("forward time (s)", lambda r: fmt(r.get("forward_s"))),
            ("compile (s)", lambda r: fmt(r["compile_s"])),
            ("dL/dA_plus", lambda r: fmt(r["grad"]["A_plus"]) if "grad" in r else r.get("skipped", "-"))]
    lines = ["| " + " | ".join(h for h, _ in cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(f(r) for _, f in cols) + " |" for r in rows]
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    """Memory vs episode length, log-log, with and without checkpointing."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for ckpt, style, label in ((False, "o-", "no checkpointing"), (True, "s-", "checkpoint_every ~ sqrt(T)")):
        sel = [r for r in rows if bool(r["checkpoint_every"]) == ckpt]
        ax.plot([r["steps"] for r in sel], [r["xla_temp_mib"] for r in sel], style, label=f"XLA temp, {label}")
        ran = [r for r in sel if r.get("grad_added_mib") is not None]
        ax.plot([r["steps"] for r in ran], [r["grad_added_mib"] for r in ran], style, mfc="none", alpha=0.6,
                label=f"RSS added by the grad, {label}")
        for r in sel:
            if r.get("skipped"):
                ax.annotate("compiled, not run", (r["steps"], r["xla_temp_mib"]), fontsize=7,
                            textcoords="offset points", xytext=(-80, -4))
    ax.set(xscale="log", yscale="log", xlabel="episode length T (steps of 0.1 ms)", ylabel="MiB",
           title=f"meta-gradient memory, LIF {N_PRE}x{N_POST}, open loop")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, nargs="+", default=None, help="episode lengths (default 1e3 1e4 1e5 1e6)")
    ap.add_argument("--quick", action="store_true", help="10^3 and 10^4 steps only")
    ap.add_argument("--max-gb", type=float, default=8.0, help="do not run configurations whose XLA temp exceeds this")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--sample-worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker is not None:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    if args.sample_worker is not None:
        print(json.dumps(sample_worker(json.loads(args.sample_worker))))
        return 0

    steps = args.steps or ([1000, 10000] if args.quick else [1000, 10000, 100000, 1000000])
    out_path = args.out or HERE / "results" / ("meta_gradient_memory_quick.json" if args.quick
                                                else "meta_gradient_memory.json")
    t_start = time.perf_counter()
    rows, notes = [], []
    tmpdir = tempfile.TemporaryDirectory(prefix="meta_gradient_memory_")

    def subprocess_json(flag: str, spec: dict, what: str):
        p = subprocess.run([sys.executable, str(Path(__file__).resolve()), flag, json.dumps(spec)],
                           capture_output=True, text=True, cwd=str(REPO))
        if p.returncode != 0:
            tail = "\n".join((p.stderr or p.stdout).strip().splitlines()[-5:])
            notes.append(f"{what}: failed (exit {p.returncode}): {tail}")
            print(notes[-1], flush=True)
            return None
        return json.loads(p.stdout.strip().splitlines()[-1])

    for T in steps:
        if T % RECORD_EVERY:
            raise SystemExit(f"--steps {T}: episode lengths must be multiples of record_every = {RECORD_EVERY}")
        path = str(Path(tmpdir.name) / f"episode_{T}.npz")
        if subprocess_json("--sample-worker", {"steps": T, "seed": 0, "path": path}, f"sampling T = {T}") is None:
            continue
        for ckpt in (None, sqrt_checkpoint(T)):
            spec = {"steps": T, "checkpoint_every": ckpt, "episode": path, "max_gb": args.max_gb}
            print(f"T = {T}, checkpoint_every = {ckpt} ...", flush=True)
            r = subprocess_json("--worker", spec, f"T = {T}, checkpoint_every = {ckpt}")
            if r is None:
                continue
            rows.append(r)
            print("  " + (r.get("skipped") or f"XLA temp {r['xla_temp_mib']:.1f} MiB, grad added "
                                              f"{grad_added(r)} MiB, grad {r['grad_s']:.2f} s"), flush=True)
            if r.get("skipped"):
                notes.append(f"T = {T}, checkpoint_every = {ckpt}: {r['skipped']}")
        Path(path).unlink(missing_ok=True)
    tmpdir.cleanup()
    # the checkpointed gradient must equal the plain one
    for T in steps:
        pair = [r for r in rows if r["steps"] == T and "grad" in r]
        if len(pair) == 2:
            a, b = pair[0]["grad"], pair[1]["grad"]
            rel = max(abs(a[k] - b[k]) / max(abs(a[k]), 1e-30) for k in a)
            notes.append(f"T = {T}: checkpointed vs plain meta-gradient, max relative difference {rel:.1e}")
    text = markdown(rows)
    print("\n" + text)
    for n in notes:
        print("Note: " + n)
    total = time.perf_counter() - t_start
    print(f"\ntotal wall time {total:.0f} s")
    import jax
    result = {"benchmark": "meta_gradient_memory", "network": {"n_pre": N_PRE, "n_post": N_POST, "dt_ms": DT,
                                                               "record_every": RECORD_EVERY, "post_mode": "given"},
              "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "jax": jax.__version__},
              "memory_method": "XLA compiled memory_analysis().temp_size_in_bytes; ru_maxrss of a fresh subprocess "
                                               "after resetting the peak mark (/proc/self/clear_refs) once the "
                                               "episode is sampled and the gradient compiled",
              "rows": rows, "notes": notes, "wall_s": total, "markdown": text}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    plot(rows, out_path.with_suffix(".png"))
    from discover.io import write_json  # imported here like jax: the parent process stays light

    write_json(out_path, result)
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
