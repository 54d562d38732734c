"""Behaviour checks, one file each, and their registry (:mod:`analysis.checks.base`).

Importing this package registers the built-in checks, in the order they run: the STDP
pairing window and the pairing-frequency protocol (spiking rules), the Oja check and the
BCM check (rate rules).
"""

from .base import CHECKS, BehaviourCheck, Check, equation_rule, get_check, simulation_errors

from .window import WindowCheck  # isort: skip  (registration order is run order)
from .frequency import FrequencyCheck  # isort: skip
from .oja import OjaCheck  # isort: skip
from .bcm import BCMCheck  # isort: skip

__all__ = ["CHECKS", "BehaviourCheck", "Check", "equation_rule", "get_check", "simulation_errors", "WindowCheck",
           "FrequencyCheck", "OjaCheck", "BCMCheck"]
