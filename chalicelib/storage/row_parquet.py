"""One-row Parquet files written directly: the bytes pyarrow writes, without its per-file setup.

Every shard leaves one-row files (its outcome, the worker's usage record). pyarrow builds a
writer, a page writer and an encoder per column for each file: ~17 µs a column, so 0.3-1 ms
for an 18-column outcome row, most of a short shard's own work. A one-row file of flat
columns is small and regular: per column one data page holding the value (PLAIN) and, for a
nullable column, its definition level; then the footer. ``RowWriter`` lays out exactly the
bytes ``pq.write_table`` produces for such a table with ``compression="none"``,
``use_dictionary=False``, ``write_statistics=False``, ``store_schema=False`` (data page v1,
format version 2.6), except ``created_by``, which names this writer:
``tests/unit/test_row_parquet.py`` compares the two byte for byte over generated rows, so
readers (Athena, DuckDB, pyarrow) get a file whose every other byte pyarrow would have written.
The schema stays the one in ``storage.tables``; only these column types are supported.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

CREATED_BY = b"sweeps row_parquet (the layout of parquet-cpp-arrow's one-row files)"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _zz(n: int) -> bytes:
    """A Thrift compact i32/i64: zigzag, then varint."""
    return _varint(2 * n if n >= 0 else -2 * n - 1)


def _list_head(count: int, element_type: int) -> bytes:
    return (
        bytes([(count << 4) | element_type])
        if count < 15
        else bytes([0xF0 | element_type]) + _varint(count)
    )


# Parquet physical types, converted types and Thrift compact field types used below.
_BOOLEAN, _INT32, _INT64, _BYTE_ARRAY = 0, 1, 2, 6
_T_I32, _T_I64, _T_BINARY, _T_LIST, _T_STRUCT = 5, 6, 8, 9, 12

# A column's PLAIN encoder: value -> bytes.
_pack_i32 = struct.Struct("<i").pack
_pack_i64 = struct.Struct("<q").pack
_pack_u32 = struct.Struct("<I").pack


def _plain_string(value: str) -> bytes:
    data = value.encode()
    return _pack_u32(len(data)) + data


def _plain_bool(value: bool) -> bytes:
    return b"\x01" if value else b"\x00"


def _plain_ms(value: datetime) -> bytes:
    """A timestamp as int64 milliseconds since the epoch, truncated (``coerce_timestamps="ms",
    allow_truncated_timestamps=True``)."""
    return _pack_i64((value - _EPOCH) // _MS)


class _Column:
    """What is fixed about one column: its schema element, the constant parts of its page
    header and chunk metadata, and its encoder."""

    def __init__(self, field: pa.Field) -> None:
        name = field.name.encode()
        t = field.type
        logical = b""
        converted = b""
        encode: Callable[[Any], bytes]
        if t == pa.int32():
            physical, encode = _INT32, _pack_i32
        elif t == pa.int64():
            physical, encode = _INT64, _pack_i64
        elif t == pa.bool_():
            physical, encode = _BOOLEAN, _plain_bool
        elif t == pa.string():
            physical, encode = _BYTE_ARRAY, _plain_string
            converted = b"\x25" + _zz(0)  # field 6 (delta 2): UTF8
            logical = b"\x4c\x1c\x00\x00"  # field 10 (delta 4): STRING {}
        elif isinstance(t, pa.TimestampType) and t.unit == "ms" and t.tz in ("UTC", "+00:00"):
            physical, encode = _INT64, _plain_ms
            converted = b"\x25" + _zz(9)  # TIMESTAMP_MILLIS
            # field 10: TIMESTAMP (field 8) {isAdjustedToUTC: true, unit: MILLIS {}}
            logical = b"\x4c\x8c\x11\x1c\x1c\x00\x00\x00\x00"
        else:
            raise TypeError(f"row_parquet cannot write {field.name}: {t}")
        self.name = field.name
        self.nullable = field.nullable
        self.byte_array = physical == _BYTE_ARRAY
        self.encode = encode
        repetition = 1 if field.nullable else 0  # OPTIONAL / REQUIRED
        self.schema_element = (
            b"\x15" + _zz(physical) + b"\x25" + _zz(repetition)
            + b"\x18" + _varint(len(name)) + name + converted + logical + b"\x00"
        )  # fmt: skip
        # ColumnMetaData fields 1-5: type, encodings [RLE, PLAIN], path, codec none, 1 value.
        self.meta_head = (
            b"\x26\x00\x1c"  # ColumnChunk: file_offset 0, meta_data {
            + b"\x15" + _zz(physical) + b"\x19\x25\x06\x00"
            + b"\x19\x18" + _varint(len(name)) + name + b"\x15\x00\x16\x02"
        )  # fmt: skip


# Data page v1 header after its sizes: 1 value, PLAIN, levels RLE, empty statistics.
_PAGE_TAIL = b"\x2c\x15\x02\x15\x00\x15\x06\x15\x06\x1c\x00\x00\x00"
# One data page, PLAIN, in the chunk's encoding stats.
_ENCODING_STATS = b"\x49\x1c\x15\x00\x15\x00\x15\x02\x00"
# A nullable column's definition level (bit width 1) for one value, RLE with its length.
_DEFINED = b"\x02\x00\x00\x00\x02\x01"
_NULL = b"\x02\x00\x00\x00\x02\x00"


class RowWriter:
    """Writes one-row Parquet files of ``schema`` (flat: int32, int64, bool, string,
    timestamp(ms, UTC) columns)."""

    def __init__(self, schema: pa.Schema) -> None:
        self.columns = [_Column(f) for f in schema]
        n = len(self.columns)
        self._schema = (
            b"\x15" + _zz(2)  # FileMetaData: version 2
            + b"\x19" + _list_head(n + 1, _T_STRUCT)
            + b"\x35\x00\x18\x06schema\x15" + _zz(n) + b"\x00"  # root: REQUIRED, n children
            + b"".join(c.schema_element for c in self.columns)
            + b"\x16\x02"  # num_rows 1
            + b"\x19\x1c"  # row_groups: one
            + b"\x19" + _list_head(n, _T_STRUCT)
        )  # fmt: skip
        self._tail = (
            b"\x28" + _varint(len(CREATED_BY)) + CREATED_BY
            + b"\x19" + _list_head(n, _T_STRUCT) + b"\x1c\x00\x00" * n  # TYPE_ORDER each
            + b"\x00"
        )  # fmt: skip

    def write(self, row: Mapping[str, Any]) -> bytes:
        """The file holding ``row`` (absent keys are nulls)."""
        body = [b"PAR1"]
        chunks = [self._schema]
        offset = 4
        for c in self.columns:
            value = row.get(c.name)
            if value is None:
                if not c.nullable:
                    raise ValueError(f"{c.name} is required")
                data, raw = _NULL, 0
            else:
                plain = c.encode(value)
                data = _DEFINED + plain if c.nullable else plain
                raw = len(plain) - 4 if c.byte_array else 0
            size = _zz(len(data))
            page = b"\x15\x00\x15" + size + b"\x15" + size + _PAGE_TAIL + data
            body.append(page)
            total = _zz(len(page))
            chunks.append(
                c.meta_head + b"\x16" + total + b"\x16" + total + b"\x26" + _zz(offset)
                + _ENCODING_STATS + _size_statistics(c, value is None, raw) + b"\x00\x00"
            )  # fmt: skip
            offset += len(page)
        total = _zz(offset - 4)
        chunks.append(b"\x16" + total + b"\x16\x02\x26\x08\x16" + total + b"\x00")
        chunks.append(self._tail)
        footer = b"".join(chunks)
        body.append(footer)
        body.append(_pack_u32(len(footer)) + b"PAR1")
        return b"".join(body)


def _size_statistics(column: _Column, null: bool, raw: int) -> bytes:
    """Field 16 of a chunk's metadata: byte-array data size and the definition level
    histogram; pyarrow leaves it out for a required column of fixed width."""
    if column.byte_array:
        head = b"\x3c\x16" + _zz(raw) + b"\x19\x06\x19"
    elif column.nullable:
        head = b"\x3c\x29\x06\x19"
    else:
        return b""
    levels = (b"\x26" + (b"\x02\x00" if null else b"\x00\x02")) if column.nullable else b"\x06"
    return head + levels + b"\x00"
