"""The built-in simulations; a new one is a module of its own here (docs/simulations.md)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from chalicelib.simulations.declarations import Metrics, Parameter, simulation

# Draws are made in blocks so memory stays flat for any path or sample count.
BLOCK = 1 << 20


def _normal_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def black_scholes(
    spot: float, strike: float, rate: float, volatility: float, maturity: float, option: str
) -> float:
    """Closed-form European option price."""
    sqrt_t = math.sqrt(maturity)
    d1 = (math.log(spot / strike) + (rate + 0.5 * volatility**2) * maturity) / (volatility * sqrt_t)
    d2 = d1 - volatility * sqrt_t
    discount = math.exp(-rate * maturity)
    if option == "call":
        return spot * _normal_cdf(d1) - strike * discount * _normal_cdf(d2)
    return strike * discount * _normal_cdf(-d2) - spot * _normal_cdf(-d1)


@simulation(
    "option_pricing",
    description="Monte Carlo price of a European option under Black-Scholes, "
    "with the closed-form price to compare against.",
    parameters=[
        Parameter("spot", "float", 100.0, minimum=0, exclusive_minimum=True),
        Parameter("strike", "float", 100.0, minimum=0, exclusive_minimum=True),
        Parameter("rate", "float", 0.01, minimum=-1, maximum=1),
        Parameter("volatility", "float", 0.2, minimum=0, exclusive_minimum=True, maximum=10),
        Parameter(
            "maturity",
            "float",
            1.0,
            minimum=0,
            exclusive_minimum=True,
            maximum=100,
            description="years",
        ),
        Parameter("option", "str", "call", choices=("call", "put")),
        Parameter("paths", "int", 10_000, minimum=1, maximum=100_000_000),
    ],
    metrics=["price", "stderr", "analytic", "abs_error"],
)
def option_pricing(p: Mapping[str, Any], rng: np.random.Generator) -> Metrics:
    spot, strike, rate = float(p["spot"]), float(p["strike"]), float(p["rate"])
    vol, maturity, paths = float(p["volatility"]), float(p["maturity"]), int(p["paths"])
    drift = (rate - 0.5 * vol**2) * maturity
    diffusion = vol * math.sqrt(maturity)
    discount = math.exp(-rate * maturity)
    sign = 1.0 if p["option"] == "call" else -1.0
    total = total_sq = 0.0
    done = 0
    while done < paths:
        n = min(BLOCK, paths - done)
        terminal = spot * np.exp(drift + diffusion * rng.standard_normal(n))
        payoff = discount * np.maximum(sign * (terminal - strike), 0.0)
        total += float(payoff.sum())
        total_sq += float(np.dot(payoff, payoff))
        done += n
    price = total / paths
    # Sample standard error; undefined (NaN) for a single path.
    variance = (total_sq - paths * price**2) / (paths - 1) if paths > 1 else math.nan
    stderr = math.sqrt(max(variance, 0.0) / paths) if paths > 1 else math.nan
    analytic = black_scholes(spot, strike, rate, vol, maturity, str(p["option"]))
    return {
        "price": price,
        "stderr": stderr,
        "analytic": analytic,
        "abs_error": abs(price - analytic),
    }


@simulation(
    "monte_carlo_pi",
    description="Estimate pi from the share of uniform points in the unit quarter circle.",
    parameters=[Parameter("samples", "int", minimum=1, maximum=1_000_000_000)],
    metrics=["estimate", "abs_error"],
)
def monte_carlo_pi(p: Mapping[str, Any], rng: np.random.Generator) -> Metrics:
    samples = int(p["samples"])
    inside = done = 0
    while done < samples:
        n = min(BLOCK, samples - done)
        x, y = rng.random(n), rng.random(n)
        inside += int(np.count_nonzero(x * x + y * y <= 1.0))
        done += n
    estimate = 4.0 * inside / samples
    return {"estimate": estimate, "abs_error": abs(estimate - math.pi)}
