"""The simulations a sweep can name: every module of the ``chalicelib.simulations`` package.

Kept apart from ``declarations`` so that declaring a simulation never needs the list of all of
them, and importing the list always registers every one. The package's modules are found with
``pkgutil`` (in name order, so the registry's order is the same in every process): a new
simulation is one new file in ``chalicelib/simulations/`` and no import to add anywhere
(docs/simulations.md).
"""

import importlib
import pkgutil

from chalicelib import simulations
from chalicelib.simulations.declarations import REGISTERED, Simulation

# The package's own machinery: every other module declares simulations. ``batches`` loads
# pyarrow (the worker's batched stream keys): importing it here would load pyarrow on the
# API path, which lists the registry.
NOT_SIMULATIONS = frozenset({"batches", "declarations", "registry"})

for _module in sorted(pkgutil.iter_modules(simulations.__path__), key=lambda m: m.name):
    if _module.name not in NOT_SIMULATIONS:
        importlib.import_module(f"{simulations.__name__}.{_module.name}")  # registers on import

REGISTRY: dict[str, Simulation] = REGISTERED
"""Every declared simulation, by name, in the order of their modules' names."""
