"""Structured JSON logs: one line per event, with the run, shard and attempt as keys."""

import json
from typing import Any

from aws_lambda_powertools import Logger


def _message(text: dict[Any, Any] | str | bool | int | float) -> Any:
    """Powertools decodes every string message as JSON in case it is a JSON document, and
    falls back to the text on the error: an exception per line (a tenth of a millisecond on
    the local stage's one-point shards, which log one line each). Only text that can be a
    JSON object or array is decoded; any other message is returned as the text it is, which
    is what the fallback logged."""
    if isinstance(text, str) and text[:1] in ("{", "["):
        return json.loads(text)
    return text


logger = Logger(service="sweeps", json_deserializer=_message)
