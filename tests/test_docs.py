"""The documentation site builds with ``mkdocs build --strict`` (issue 16), and its generated
pages hold what the code holds: every command, config, registered name and tutorial."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def text(path: Path) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", path.read_text()))


def test_docs_build_strict_and_generated_pages_are_complete(tmp_path):
    pytest.importorskip("mkdocs")
    site = tmp_path / "site"
    res = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)], cwd=REPO,
                         capture_output=True, text=True, timeout=600, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    from discover.registry import META_OPTIMIZERS, NETWORKS, RULES, TASKS
    from distill.backends import BACKENDS
    from plasticity.cli import build_parser

    commands = text(site / "commands" / "index.html")
    sub = next(a for a in build_parser()._actions if hasattr(a, "choices") and isinstance(a.choices, dict))
    assert all(f"plasticity {name}" in commands for name in sub.choices)
    assert "--to {brian2,nestml}" in commands
    configs = text(site / "configs" / "index.html")
    assert all(p.name in configs for p in (REPO / "configs").glob("*.toml"))
    for page, reg in (("tasks", TASKS), ("tasks", NETWORKS), ("rules", RULES), ("meta-optimizers", META_OPTIMIZERS),
                      ("distillation", BACKENDS)):
        body = text(site / "concepts" / page / "index.html")
        assert all(name in body for name in reg.names()), (page, reg.names())
    for nb in (REPO / "notebooks").glob("*.py"):  # every tutorial is a page, its code included
        page = site / "tutorials" / nb.stem / "index.html"
        assert page.is_file(), nb
        assert "import" in text(page)
    run_dir = text(site / "concepts" / "run-directory" / "index.html")
    assert "equations.csv" in run_dir and "timescales" in run_dir  # README's section, filled in
    assert "<!--" not in (site / "index.html").read_text().split("<body")[1].split("</article>")[0]
    assert not (site / "hooks.py").exists()
