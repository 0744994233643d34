"""The simulations a sweep can name: the built-ins, and any module added to the imports below.

Kept apart from ``declarations`` so that declaring a simulation never needs the list of all of
them, and importing the list always registers every one.
"""

from chalicelib.simulations import builtin  # noqa: F401  (registers on import)
from chalicelib.simulations.declarations import REGISTERED, Simulation

REGISTRY: dict[str, Simulation] = REGISTERED
