"""What a run costs: the one price table, and each function's memory and timeout per stage.

Prices are list prices, stated once here with their date, region and source; nothing else in
the project holds a price. Function sizes come from the stage config (``.chalice/config.json``:
``lambda_functions`` overlaid by the stage's own); ``chalicelib/function_sizes.py`` is the same
table generated from it (``python -m deploy.function_sizes --write``, checked by ``make lint``),
because the deployed functions and the ``sweeps`` wheel do not ship ``.chalice/``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

from chalicelib.config import PROJECT_ROOT
from chalicelib.function_sizes import SIZES

SIZES_FILE = PROJECT_ROOT / "chalicelib" / "function_sizes.py"


@dataclass(frozen=True)
class Prices:
    id: str
    date: str
    region: str
    source: str
    lambda_gb_second: float  # x86, first tier
    lambda_request: float
    s3_write_request: float  # PUT, COPY, POST, LIST (S3 Standard)
    s3_read_request: float  # GET, HEAD and the rest (S3 Standard)


PRICES = Prices(
    id="aws-us-east-1-2026-11-26",
    date="2026-11-26",
    region="us-east-1",
    source="https://aws.amazon.com/lambda/pricing/ (x86: $0.0000166667 per GB-s, $0.20 per 1M "
    "requests); https://aws.amazon.com/s3/pricing/ (Standard: $0.005 per 1,000 PUT/COPY/POST/"
    "LIST, $0.0004 per 1,000 GET and other requests)",
    lambda_gb_second=0.0000166667,
    lambda_request=0.20 / 1_000_000,
    s3_write_request=0.005 / 1000,
    s3_read_request=0.0004 / 1000,
)

# Lambda allocates CPU in proportion to memory: one full vCPU at 1,769 MB (AWS Lambda
# developer guide, "Configuring Lambda function memory"). The estimate scales local CPU time by it.
FULL_VCPU_MB = 1769


@dataclass(frozen=True)
class FunctionSize:
    memory_mb: int
    timeout_s: int


@cache
def function_sizes(stage: str) -> dict[str, FunctionSize]:
    """From the generated copy of the stage config (present in every package)."""
    stage_sizes = SIZES.get(stage, SIZES["local"])
    return {fn: FunctionSize(**size) for fn, size in stage_sizes.items()}


def gb_seconds(duration_ms: int, memory_mb: int) -> float:
    """Lambda's billed compute: the duration rounded up to 1 ms, times the configured memory."""
    return math.ceil(duration_ms) / 1000 * memory_mb / 1024


def usd(gb_s: float, invocations: int, s3_reads: int, s3_writes: int) -> float:
    p = PRICES
    return (
        gb_s * p.lambda_gb_second
        + invocations * p.lambda_request
        + s3_reads * p.s3_read_request
        + s3_writes * p.s3_write_request
    )
