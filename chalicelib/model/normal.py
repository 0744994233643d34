"""The normal distribution's CDF and inverse CDF in pure Python, and the truncated normal's.

scipy would give ``ndtri``, but it is far too large for the Lambda layer; ``math.erfc`` gives
the CDF to full precision, and the inverse is Acklam's rational approximation (relative error
below 1.2e-9) polished by one Halley step on ``erfc``, which brings it to double precision.
Truncation to a parameter's domain goes through the inverse CDF (``p = Phi(a) + u (Phi(b) -
Phi(a))``), never through resampling, so each uniform gives exactly one value and a stratified
uniform stays stratified. Regions in the upper tail are mirrored into the lower tail, where
``erfc`` keeps relative precision, so a domain far from the mean still gets usable values.
"""

from __future__ import annotations

import math

_SQRT2 = math.sqrt(2.0)
_LOG_SQRT2PI = 0.5 * math.log(2.0 * math.pi)

_A = (-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.3577518672690,
      -30.66479806614716, 2.506628277459239)  # fmt: skip
_B = (-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972,
      -13.28068155288572)  # fmt: skip
_C = (-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734,
      4.374664141464968, 2.938163982698783)  # fmt: skip
_D = (0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416)
_LOW = 0.02425


def cdf(x: float) -> float:
    """Phi(x), accurate in relative terms in the lower tail."""
    return 0.5 * math.erfc(-x / _SQRT2)


def ppf(p: float) -> float:
    """Phi^-1(p) for 0 < p < 1."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"ppf needs 0 < p < 1, got {p!r}")
    if p > 0.5:  # by symmetry; 1 - p is exact here (Sterbenz), and the lower tail keeps digits
        return -ppf(1.0 - p)
    if p < _LOW:
        x = _tail(math.sqrt(-2.0 * math.log(p)))
    else:
        q = p - 0.5
        r = q * q
        num = (((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5]) * q
        den = ((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + 1.0
        x = num / den
    # Halley's step: u = (Phi(x) - p) / phi(x), written as a relative error times p / phi(x)
    # taken in logs, so it neither overflows nor loses digits deep in the lower tail.
    u = (cdf(x) / p - 1.0) * math.exp(math.log(p) + x * x / 2.0 + _LOG_SQRT2PI)
    return x - u / (1.0 + x * u / 2.0)


def _tail(q: float) -> float:
    num = ((((_C[0] * q + _C[1]) * q + _C[2]) * q + _C[3]) * q + _C[4]) * q + _C[5]
    den = (((_D[0] * q + _D[1]) * q + _D[2]) * q + _D[3]) * q + 1.0
    return num / den


def truncated_mass(a: float, b: float) -> float:
    """P(a <= Z <= b) for a standard normal Z, a < b (either may be infinite)."""
    if a > 0:
        a, b = -b, -a
    return cdf(b) - cdf(a)


def truncated_ppf(u: float, a: float, b: float) -> float:
    """The standard normal truncated to [a, b], at probability u in (0, 1)."""
    if a > 0:  # all of it in the upper tail: mirror, so the CDF keeps its precision
        return -truncated_ppf(1.0 - u, -b, -a)
    low, high = cdf(a), cdf(b)
    p = low + u * (high - low)
    p = min(max(p, math.nextafter(0.0, 1.0)), math.nextafter(1.0, 0.0))
    return min(max(ppf(p), a), b)
