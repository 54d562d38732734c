"""Registries of plug-ins: tasks, networks, rules, meta-optimizers (and, in the later
stages, distillation backends and behaviour checks).

A config names a plug-in by its registry name (``"oja_pca"``) or by an import path
(``"my_module:MyTask"``, resolved from the working directory and ``PYTHONPATH``); an
installed package can add names through an entry-point group (``plasticity.tasks``, ...),
in the spirit of evosax's strategy registry.

Example:
  >>> TASKS = Registry("plasticity.tasks", "task")
  >>> @TASKS.register("my_task")
  ... class MyTask(Task): ...
  >>> TASKS.get("my_task") is MyTask
  True
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path

from .suggest import did_you_mean


class PluginError(ValueError):
    """A plug-in name that names nothing, or an import path that does not import."""


class Registry:
    """Name -> class, plus import paths and installed entry points.

    Args:
      group: the entry-point group installed packages register in (``plasticity.tasks``).
      what: what one entry is, for messages (``"task"``).
      where: the config key that names one (``"[task] name"``), for messages.
      builtins: the module whose import registers the built-in entries (imported on first lookup).
    """

    def __init__(self, group: str, what: str, where: str = "", builtins: str | None = None):
        self.group, self.what, self.where = group, what, where or what
        self.builtins = builtins
        self._entries: dict[str, type] = {}
        self._loaded_entry_points = False

    def register(self, name: str) -> Callable[[type], type]:
        """Class decorator: add a class under ``name``."""
        def add(cls):
            self._entries[name] = cls
            return cls
        return add

    def _entry_points(self) -> None:
        if self._loaded_entry_points:
            return
        self._loaded_entry_points = True
        if self.builtins:
            importlib.import_module(self.builtins)
        for ep in entry_points(group=self.group):
            if ep.name not in self._entries:
                try:
                    self._entries[ep.name] = ep.load()
                except (ImportError, AttributeError) as e:
                    print(f"warning: entry point {ep.name!r} of {self.group} does not load ({e}); skipped",
                          file=sys.stderr)

    def names(self) -> tuple[str, ...]:
        """Registered names (built-ins, then installed entry points)."""
        self._entry_points()
        return tuple(self._entries)

    def get(self, name: str) -> type:
        """The class registered as ``name``, or the one an import path ``"module:attr"`` names."""
        if not isinstance(name, str) or not name:
            raise PluginError(f"{self.where} must be a name, not {name!r}")
        self._entry_points()
        if name in self._entries:
            return self._entries[name]
        if ":" in name:
            return load_object(name, f"{self.where} = {name!r}")
        raise PluginError(f"{self.where} = {name!r} is not a known {self.what}; choose one of "
                          f"{', '.join(map(repr, self.names()))}, or name your own class by import path, "
                          f"e.g. \"my_module:MyClass\"." + did_you_mean(name, self.names()))

    def key_of(self, cls: type) -> str:
        """The name under which ``cls`` is found again: its registry name, else its import path."""
        for k, v in self._entries.items():
            if v is cls:
                return k
        return f"{cls.__module__}:{cls.__qualname__}"

    def __contains__(self, name: str) -> bool:
        return name in self.names()

    def __iter__(self):
        return iter(self.names())


def load_object(path: str, where: str):
    """``"package.module:Name"`` -> the object; the working directory is importable."""
    module, _, attr = path.partition(":")
    if not module or not attr:
        raise PluginError(f"{where}: an import path is \"module:Name\" (e.g. \"my_task:TargetRate\")")
    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        obj = importlib.import_module(module)
    except ImportError as e:
        raise PluginError(f"{where}: cannot import module {module!r} ({e}); put it in the working directory or "
                          "on PYTHONPATH") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise PluginError(f"{where}: module {module!r} has no {attr!r}") from None
        obj = getattr(obj, part)
    return obj


TASKS = Registry("plasticity.tasks", "task", "[task] name", "discover.builtins")
NETWORKS = Registry("plasticity.networks", "network", "[network] kind", "discover.builtins")
RULES = Registry("plasticity.rules", "rule", "[rule] kind", "discover.builtins")
META_OPTIMIZERS = Registry("plasticity.meta_optimizers", "meta-optimizer", "[meta] optimizer", "discover.builtins")

__all__ = ["Registry", "PluginError", "load_object", "TASKS", "NETWORKS", "RULES", "META_OPTIMIZERS"]
