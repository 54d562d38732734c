"""What the resumable benchmarks share (``random_rules.py``, ``infer_recordings.py``):
``--shard i/n``, and a ``--json`` results file that several shard processes update in turn."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> ``(i, n)``; a ValueError naming the option where it is not ``0 <= i < n``."""
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        i, n = 0, 0
    if not 0 <= i < n:
        raise ValueError(f"--shard {text!r}: write i/n with 0 <= i < n, e.g. 1/2")
    return i, n


def update_json(path: Path, update: Callable[[dict | None], dict], **dumps) -> dict:
    """Write ``update(what path holds, or None)`` to ``path`` under an exclusive lock
    (``path.lock``) and atomically (``path.tmp``, then renamed), so that shards can share it."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        d = update(json.loads(path.read_text()) if path.exists() and path.stat().st_size else None)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(d, indent=1, **dumps))
        tmp.replace(path)
    return d
