"""The log line's message: what powertools logged before we gave it a deserializer that only
decodes what can be JSON (``chalicelib.logs``)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from chalicelib.logs import logger


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = logger.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    before = handler.setStream(out)
    yield out
    handler.setStream(before)


@pytest.mark.parametrize(
    ("message", "logged"),
    [
        ("shard finished", "shard finished"),
        ('{"points": 3}', {"points": 3}),
        ("[1, 2]", [1, 2]),
        ("{not json", "{not json"),
        ("", ""),
    ],
)
def test_a_message_is_its_text_unless_it_is_a_json_document(
    lines: io.StringIO, message: str, logged: object
) -> None:
    logger.info(message, extra={"shard_id": 4})
    line = json.loads(lines.getvalue().strip().splitlines()[-1])
    assert line["message"] == logged and line["shard_id"] == 4
