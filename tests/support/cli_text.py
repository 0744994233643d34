"""The figures the ``sweep`` command prints for people, read back so tests can compare them
with the API's JSON and with each other. Each pattern is the whole line: a figure that is
missing, renamed or printed in another form fails the read instead of being skipped."""

from __future__ import annotations

import re
from typing import Any

from chalicelib import pricing

NUMBER = r"[\d,]+(?:\.\d+)?"

ESTIMATE_LINES = {
    "points": rf"points (?P<points>{NUMBER}) in (?P<shards>{NUMBER}) shards"
    rf"(?:; (?P<reusable>{NUMBER}) reusable, (?P<to_evaluate>{NUMBER}) to evaluate)?",
    "per_point": rf"per point (?P<cpu_us>{NUMBER}) us CPU locally; worker fixed "
    rf"(?P<fixed_ms>{NUMBER}) ms per shard; x(?P<scale>{NUMBER}) for (?P<memory_mb>\d+) MB "
    "workers",
    "worker": rf"worker seconds per shard ~(?P<worker_s>{NUMBER}) \(largest "
    rf"(?P<worker_max_s>{NUMBER})\); compactor ~(?P<compactor_s>{NUMBER}) s at "
    r"(?P<compactor_mb>\d+) MB, and its clean-up",
    "lambda": rf"Lambda (?P<gb_s>{NUMBER}) GB-s, (?P<requests>{NUMBER}) requests; "
    rf"(?P<s3_requests>{NUMBER}) S3 requests",
    "price": rf"estimated price \$(?P<usd>{NUMBER}) \(prices (?P<prices>.+)\)",
}
WARNING = re.compile(
    rf"^warning: shards of (?P<shard_points>\d+) points would take ~(?P<seconds>{NUMBER}) s, "
    r"over 80% of the worker timeout \((?P<timeout_s>\d+) s\): use \"shards\": "
    r"\{\"size\": (?P<size>\d+)\} or smaller$",
    re.MULTILINE,
)
COST_LINE = re.compile(
    rf"^cost \$(?P<usd>{NUMBER})(?P<bound> \(upper bound: [^)]*\))?: (?P<gb_s>{NUMBER}) Lambda "
    rf"GB-s, (?P<invocations>\d+) invocations, (?P<s3_requests>\d+) S3 requests "
    r"\(prices (?P<prices>.+)\)$",
    re.MULTILINE,
)
PROGRESS_POINTS = re.compile(r"points (?P<reused>\d+) reused, (?P<evaluated>\d+) evaluated")


def _value(text: str | None) -> Any:
    if text is None:
        return None
    plain = text.replace(",", "")
    if re.fullmatch(r"\d+", plain):
        return int(plain)
    try:
        return float(plain)
    except ValueError:
        return text


def _one(pattern: re.Pattern[str], text: str) -> dict[str, Any]:
    found = [m.groupdict() for m in pattern.finditer(text)]
    assert len(found) == 1, f"{pattern.pattern!r}: {len(found)} matches in\n{text}"
    return {k: _value(v) for k, v in found[0].items()}


def estimate_figures(text: str) -> dict[str, Any]:
    """Every figure of ``sweep estimate``'s human output (each line exactly once, in order,
    among whatever else ``text`` holds), plus ``warning``: the timeout warning's figures or
    None."""
    figures: dict[str, Any] = {}
    at = 0
    for name, line in ESTIMATE_LINES.items():
        pattern = re.compile(rf"^{line}$", re.MULTILINE)
        assert len(pattern.findall(text)) == 1, f"{name}: not one line like {line!r} in\n{text}"
        match = pattern.search(text)
        assert match is not None and match.start() >= at, f"{name} out of order in\n{text}"
        at = match.end()
        figures |= {k: _value(v) for k, v in match.groupdict().items()}
    warnings = WARNING.findall(text)
    figures["warning"] = _one(WARNING, text) if warnings else None
    return figures


def cost_figures(text: str) -> dict[str, Any]:
    """The one cost line ``sweep status`` prints."""
    return _one(COST_LINE, text)


def price_bounds(gb_s: float, requests: int, s3_requests: int) -> tuple[float, float]:
    """What a bill of those figures costs at least (every S3 request a read, the cheaper kind)
    and at most (every one a write): the printed total has reads and writes in between."""
    return (
        pricing.usd(gb_s, requests, s3_requests, 0),
        pricing.usd(gb_s, requests, 0, s3_requests),
    )
