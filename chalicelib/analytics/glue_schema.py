"""How the tables look to Glue and Athena, derived from their one pyarrow schema each.

Partition registration (``catalog``) and the generated DDL and CloudFormation (``deploy/``)
both build their table and partition definitions here, so a column added to a schema reaches
every definition and no second copy of a column list exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from chalicelib.storage.tables import FORMATS, PARTITIONS, SCHEMAS

TABLES = ("outcomes", "results", "usage", "reuse")
# How Glue and Athena read each file format (``tables.FORMATS``): input and output format,
# SerDe, and the table's parameters. JSON Lines (the table ``usage``) is read by the OpenX
# JSON SerDe, columns matched by name; a ``.gz`` file is read gunzipped (by its extension).
STORAGE: dict[str, dict[str, Any]] = {
    "parquet": {
        "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
        "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
        "SerDe": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
        "Parameters": {"classification": "parquet", "parquet.compression": "SNAPPY"},
    },
    "json": {
        "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
        "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
        "SerDe": "org.openx.data.jsonserde.JsonSerDe",
        "Parameters": {"classification": "json"},
    },
}
_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]*$")


def hive_type(t: pa.DataType) -> str:
    """The Hive/Glue type Athena reads a pyarrow column as (Parquet columns matched by name)."""
    scalars = (
        (pa.types.is_int8, "tinyint"),
        (pa.types.is_int16, "smallint"),
        (pa.types.is_int32, "int"),
        (pa.types.is_int64, "bigint"),
        (pa.types.is_float32, "float"),
        (pa.types.is_float64, "double"),
        (pa.types.is_boolean, "boolean"),
        (pa.types.is_string, "string"),
        (pa.types.is_large_string, "string"),
        (pa.types.is_date32, "date"),
        (pa.types.is_timestamp, "timestamp"),
        (pa.types.is_binary, "binary"),
        # A stream key (16 bytes, Parquet FIXED_LEN_BYTE_ARRAY): no query reads it on Athena.
        (pa.types.is_fixed_size_binary, "binary"),
    )
    for check, name in scalars:
        if check(t):
            return name
    if pa.types.is_map(t):
        return f"map<{hive_type(t.key_type)},{hive_type(t.item_type)}>"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"array<{hive_type(t.value_type)}>"
    if pa.types.is_struct(t):
        fields = ",".join(f"{f.name}:{hive_type(f.type)}" for f in t)
        return f"struct<{fields}>"
    raise ValueError(f"no Hive type for pyarrow type {t}")


@dataclass(frozen=True)
class Column:
    name: str
    type: str


def columns(table: str) -> list[Column]:
    """The file columns of ``table``, in schema order."""
    result = []
    for field in SCHEMAS[table]:
        if not _NAME_RE.match(field.name):
            raise ValueError(f"{table}.{field.name}: column names must be lowercase identifiers")
        result.append(Column(field.name, hive_type(field.type)))
    return result


def partition_keys(table: str) -> list[Column]:
    """Partition columns live in the path only; the catalog types them as strings."""
    return [Column(name, "string") for name in PARTITIONS[table]]


def storage_descriptor(table: str, location: Any) -> dict[str, Any]:
    """Glue StorageDescriptor for the table or one of its partitions (``location`` ends in /)."""
    storage = STORAGE[FORMATS[table]]
    return {
        "Columns": [{"Name": c.name, "Type": c.type} for c in columns(table)],
        "Location": location,
        "InputFormat": storage["InputFormat"],
        "OutputFormat": storage["OutputFormat"],
        "Compressed": False,
        "StoredAsSubDirectories": False,
        "SerdeInfo": {
            "SerializationLibrary": storage["SerDe"],
            "Parameters": {"serialization.format": "1"},
        },
    }


def table_input(table: str, location: Any) -> dict[str, Any]:
    """Glue TableInput (``location``: the table's folder, ending in /)."""
    return {
        "Name": table,
        "Description": f"Sweep {table}; columns generated from chalicelib/storage/tables.py",
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"EXTERNAL": "TRUE", **STORAGE[FORMATS[table]]["Parameters"]},
        "PartitionKeys": [{"Name": c.name, "Type": c.type} for c in partition_keys(table)],
        "StorageDescriptor": storage_descriptor(table, location),
    }
