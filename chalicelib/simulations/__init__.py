"""Simulation registry; importing this package registers the built-ins."""

from chalicelib.simulations import builtin as _builtin  # noqa: F401  (registers on import)
from chalicelib.simulations.registry import (
    REGISTRY,
    Parameter,
    Simulation,
    SimulationError,
    simulation,
)

__all__ = ["REGISTRY", "Parameter", "Simulation", "SimulationError", "simulation"]
