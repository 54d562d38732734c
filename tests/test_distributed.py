"""Meta-training over two processes (``jax.distributed``, CPU, 127.0.0.1) gives the
one-process result (issue 15; DESIGN §4).

Two subprocesses join through a coordinator on a free local port, each with one CPU
device; the meta-batch (Adam) and the ES population (OpenAI-ES) are laid out over the
two, and the trained rule parameters must equal those of this one-process run to float
tolerance. The command line's own path (``plasticity discover --coordinator ...``) runs
too: process 0 writes the run directory, process 1 writes nothing.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from discover import distributed
from discover.config import ConfigError

HERE = Path(__file__).resolve().parent
TIMEOUT = 600


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CHILD = f"""
import json, sys
import jax
from discover import distributed
distributed.initialize(sys.argv[1], 2, int(sys.argv[2]))
sys.path.insert(0, {str(HERE)!r})
import test_sharding as t
out = {{"process": jax.process_index(), "devices": jax.device_count(), "local": jax.local_device_count()}}
out.update({{name: t.train(name) for name in t.RUNS}})
print("RESULT" + json.dumps(out))
"""


def child_env():
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # one CPU device per process
    return {**env, "JAX_PLATFORMS": "cpu", "PYTHONPATH": os.pathsep.join([str(HERE.parent), env.get("PYTHONPATH", "")])}


def run_two(args_for):
    """Start processes 0 and 1 with ``args_for(port, i)``; their (returncode, stdout, stderr)."""
    port = free_port()
    procs = [subprocess.Popen(args_for(port, i), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=child_env(), cwd=HERE.parent) for i in (0, 1)]
    outs = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=TIMEOUT)
            outs.append((p.returncode, out, err))
    finally:
        for p in procs:
            p.kill()
    return outs


@pytest.fixture(scope="module")
def two_processes():
    outs = run_two(lambda port, i: [sys.executable, "-c", CHILD, f"127.0.0.1:{port}", str(i)])
    results = []
    for rc, out, err in outs:
        assert rc == 0, err[-3000:]
        results.append(json.loads(next(line for line in out.splitlines() if line.startswith("RESULT"))[6:]))
    return results


@pytest.mark.parametrize("name", ["adam", "open_es"])
def test_two_processes_give_the_one_process_rule(two_processes, name):
    sys.path.insert(0, str(HERE))
    import test_sharding

    one = test_sharding.train(name)
    p0, p1 = two_processes
    assert (p0["process"], p1["process"]) == (0, 1)
    assert p0["devices"] == p1["devices"] == 2 and p0["local"] == 1  # the batch spans both processes
    np.testing.assert_array_equal(p0[name]["params"], p1[name]["params"])  # every process holds the same rule
    np.testing.assert_allclose(p0[name]["params"], one["params"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(p0[name]["meta_loss"], one["meta_loss"], rtol=1e-4, atol=1e-7)
    assert len(set(np.round(one["meta_loss"], 6))) > 1  # it trained: the meta-loss moved


def test_command_line_two_processes_process_0_writes(tmp_path):
    out = tmp_path / "run0"
    sets = ["--set", "meta.steps=4", "--set", "meta.batch=4", "--set", "meta.val_episodes=4",
            "--set", "meta.eval_every=2", "--set", "meta.save_every=2"]
    # each process is given its own --out: process 1's must stay unmade
    outs = run_two(lambda port, i: [sys.executable, "-m", "plasticity.cli", "discover", "imitate_oja", "--out",
                                    str(tmp_path / f"run{i}"), "--quiet", "--coordinator", f"127.0.0.1:{port}",
                                    "--num-processes", "2", "--process-id", str(i), *sets])
    for rc, _, err in outs:
        assert rc == 0, err[-3000:]
    assert "written to" in outs[0][1] and "process 1 of 2 done" in outs[1][1]
    assert (out / "rule" / "params.npz").is_file() and (out / "meta_history.csv").is_file()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["process_count"] == 2 and manifest["device_count"] == 2
    assert not (tmp_path / "run1").exists()


@pytest.mark.parametrize("args, flag", [
    (("127.0.0.1:1234", None, 0, False), "--num-processes"),
    (("localhost", 2, 0, False), "HOST:PORT"),
    (("127.0.0.1:1234", 2, 2, False), "--process-id 2"),
    (("127.0.0.1:1234", 0, 0, False), "--num-processes 0"),
    (("127.0.0.1:1234", 2, 0, True), "--distributed"),
])
def test_incomplete_or_wrong_flags_are_named(args, flag):
    with pytest.raises(ConfigError, match=flag):
        distributed.check_arguments(*args)
    assert distributed.check_arguments(None, None, None) is False
    assert distributed.check_arguments("node001:12355", 4, 3) is True


def test_bad_flags_exit_2_before_any_work(tmp_path):
    r = subprocess.run([sys.executable, "-m", "plasticity.cli", "discover", "imitate_oja", "--out",
                        str(tmp_path / "x"), "--coordinator", "127.0.0.1:1", "--num-processes", "2"],
                       capture_output=True, text=True, env=child_env(), cwd=HERE.parent, timeout=120)
    assert r.returncode == 2 and "--process-id" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x").exists()
    r = subprocess.run([sys.executable, "-m", "plasticity.cli", "discover", "imitate_oja", "--out",
                        str(tmp_path / "x"), "--distributed"],
                       capture_output=True, text=True, env={k: v for k, v in child_env().items()
                                                            if not k.startswith(("SLURM", "OMPI", "PMI"))},
                       cwd=HERE.parent, timeout=120)
    assert r.returncode == 2 and "no cluster environment" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x").exists()
