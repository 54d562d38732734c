"""Meta-training sharded over devices gives the one-device result (DESIGN §4).

The host CPU is split into two XLA devices in a subprocess
(``--xla_force_host_platform_device_count=2``); the meta-batch (Adam) and the population
(OpenAI-ES) are laid out over them, and the trained parameters must equal those of this
one-device process to float tolerance.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from discover.meta import meta_train
from discover.sharding import batch_sharding, constrain, place

HERE = Path(__file__).resolve().parent
RUNS = {"adam": {"steps": 6, "batch": 4}, "open_es": {"steps": 6, "batch": 4, "optimizer": "open_es", "population": 8}}


def flat(tree):
    return np.concatenate([np.ravel(a) for a in jax.tree_util.tree_leaves(tree)])


def setup(name):
    sys.path.insert(0, str(HERE))
    from test_meta import setup

    return setup(**RUNS[name])


def train(name):
    cfg, task, rule = setup(name)
    params, hist = meta_train(task, rule, cfg.meta, progress=True)
    return {"params": flat(params).tolist(), "meta_loss": hist["meta_loss"].tolist()}


CHILD = f"""
import json, sys
sys.path.insert(0, {str(HERE)!r})
import jax, numpy as np
import test_sharding as t
s = t.batch_sharding(4, "x")
out = {{"devices": jax.device_count(), "shards": len(t.place(np.zeros((4, 3)), s).addressable_shards),
        "uneven": t.batch_sharding(3, "[meta] batch") is None}}
out.update({{name: t.train(name) for name in t.RUNS}})
print("RESULT" + json.dumps(out))
"""


@pytest.fixture(scope="module")
def two_devices():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT"))
    return json.loads(line[len("RESULT"):]), proc.stderr


def test_one_device_is_not_sharded():
    assert jax.device_count() == 1
    assert batch_sharding(4, "[meta] batch") is None
    x = np.arange(4.0)
    assert place(x, None) is x and constrain(x, None) is x


def test_layout_over_two_devices(two_devices):
    out, err = two_devices
    assert out["devices"] == 2 and out["shards"] == 2
    assert out["uneven"]  # 3 episodes on 2 devices: replicated, with a warning naming the fix
    assert "[meta] batch = 3 is not a multiple of the 2 devices" in err and "set [meta] batch = 4" in err
    assert "the meta-batch of 4 episodes is sharded over 2 devices" in err
    assert "the population of 8 is sharded over 2 devices" in err


@pytest.mark.parametrize("name", list(RUNS))
def test_sharded_meta_training_equals_one_device(two_devices, name):
    out, _ = two_devices
    one = train(name)
    np.testing.assert_allclose(out[name]["params"], one["params"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(out[name]["meta_loss"], one["meta_loss"], rtol=1e-5)
    cfg, _, rule = setup(name)
    start = flat(rule.init(jax.random.split(jax.random.key(cfg.meta.seed), 3)[0]))  # meta_train's k_init
    assert not np.allclose(one["params"], start)  # the comparison is of trained parameters
