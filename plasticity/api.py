"""The public API: ``import plasticity as pl``.

The protocols a user implements (:class:`Task`, :class:`Network`, :class:`Rule`, a
meta-optimizer, a distillation backend, a behaviour check), the registries that make them
nameable from a config, the one :func:`rollout`, and the stages as functions; a run
directory read back as a :class:`Run`.

Example:
  >>> import plasticity as pl
  >>> cfg = pl.config_from_dict({"meta": {"steps": 50}})
  >>> run = pl.run(cfg, "runs/quick")          # discover, distill, verify, report
  >>> run.selected_equation                    # e.g. -0.0149*w*y**2 + 0.0141*x*y
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd
import sympy

from discover.build import build_network, build_student, build_task, load_rule
from discover.config import Config, MetaConfig, NetworkConfig, RuleConfig, TaskConfig, config_from_dict, load_config
from discover.io import RunDirError, read_csv, selected_equation
from discover.meta import meta_train
from discover.networks import LIFNetwork, Network, RateNetwork
from discover.registry import META_OPTIMIZERS, NETWORKS, RULES, TASKS
from discover.rollout import Rollout, rollout
from discover.rules import MLPRule, PolynomialRule, Rule, SymbolicRule
from discover.stage import run as discover
from discover.tasks.base import Task
from distill.backends import BACKENDS
from distill.stage import check_config
from distill.stage import run as distill
from distill.verify import run as verify


def report(run_dir):
    """Figures, LaTeX tables, ``report.md`` and ``report.html`` of a run directory."""
    from analysis.report import run as _report

    return _report(run_dir)


def run(cfg: Config | str | Path | None = None, run_dir: str | Path | None = None, *, backend: str | None = None,
        progress: bool = True) -> "Run":
    """The whole pipeline (discover, distill, verify, report) on ``cfg`` (a :class:`Config`,
    or a TOML path; ``None``: the default demo); returns the run directory as a :class:`Run`."""
    if cfg is None:
        from .cli import resolve_config

        cfg = resolve_config(None)
    if not isinstance(cfg, Config):
        cfg = load_config(cfg)
    check_config(cfg, backend)
    build_task(cfg)  # a task, network or teacher that cannot be built fails before any work
    out = Path(run_dir or Path("runs") / cfg.name)
    discover(cfg, out, progress=progress)
    distill(cfg, out, backend=backend, progress=progress)
    verify(cfg, out, progress=progress)
    report(out)
    return load_run(out)


@dataclass
class Run:
    """Typed access to a run directory (DESIGN.md section 5)."""

    path: Path
    config: Config = field(repr=False)

    @cached_property
    def equations(self) -> pd.DataFrame:
        """The Pareto front (``equations.csv``)."""
        return self._csv("equations.csv", "plasticity distill")

    @cached_property
    def verification(self) -> pd.DataFrame:
        """Every rule re-run in the simulator (``verification.csv``)."""
        return self._csv("verification.csv", "plasticity verify")

    @property
    def selected(self) -> pd.Series:
        """The selected row of the front (the ``verified`` policy's pick, when it ran)."""
        row = selected_equation(self.path, self.equations)
        if row is None:
            raise RunDirError(f"{self.path} has no selected equation; run `plasticity distill {self.path}`")
        return row

    @property
    def selected_equation(self) -> sympy.Expr:
        """The selected equation as a sympy expression (full precision)."""
        from discover.equations import parse_equation

        return parse_equation(str(self.selected["sympy"]))

    @cached_property
    def rule(self) -> tuple[Rule, dict]:
        """The learned rule and its parameters (``rule/``)."""
        return load_rule(self.path)

    @cached_property
    def history(self) -> pd.DataFrame:
        return self._csv("meta_history.csv", "plasticity discover CONFIG --out")

    def task(self) -> Task:
        """The run's task, rebuilt from its config."""
        return build_task(self.config)

    def _csv(self, name, command):
        path = self.path / name
        if not path.is_file():
            raise RunDirError(f"{self.path} has no {name}; run `{command} {self.path}`")
        return read_csv(path)


def load_run(run_dir: str | Path) -> Run:
    """A run directory, read back (its ``config.toml`` rebuilds task, network and rule)."""
    from distill.stage import load_run_config

    return Run(Path(run_dir), load_run_config(run_dir))


__all__ = ["Task", "TaskConfig", "Network", "NetworkConfig", "RateNetwork", "LIFNetwork", "Rule", "RuleConfig",
           "MLPRule", "PolynomialRule", "SymbolicRule", "MetaConfig", "Config", "Rollout", "rollout", "meta_train",
           "TASKS", "NETWORKS", "RULES", "META_OPTIMIZERS", "BACKENDS", "config_from_dict", "load_config",
           "build_network", "build_task", "build_student", "discover", "distill", "verify", "report", "run",
           "Run", "load_run"]
