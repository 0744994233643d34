"""Reading usage files back in tests: the table ``usage`` is JSON Lines (``tables.FORMATS``)."""

from __future__ import annotations

import gzip
import io

import pyarrow as pa
import pyarrow.json as pa_json

from chalicelib.storage.tables import USAGE


def read_usage(data: bytes) -> pa.Table:
    """A usage file's rows (a record, or a gzipped compaction part) typed by ``USAGE``; a
    field the schema does not name is an error, not dropped."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    options = pa_json.ParseOptions(explicit_schema=USAGE, unexpected_field_behavior="error")
    return pa_json.read_json(io.BytesIO(data), parse_options=options).cast(USAGE)
