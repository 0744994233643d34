"""The catalog definitions are the pyarrow schemas: name by name, type by type, everywhere."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
import sqlglot
from sqlglot import exp

from chalicelib.analytics import glue_schema
from chalicelib.config import PROJECT_ROOT
from chalicelib.storage import tables
from chalicelib.storage.tables import PARTITIONS, SCHEMAS
from deploy import ddl, infra
from deploy.cfn import Tag, dump_yaml, load_yaml
from deploy.naming import STAGES


def arrow_type(dtype: exp.DataType) -> pa.DataType:
    """Hive type (as sqlglot parsed it) → the pyarrow type our writer must use for it."""
    scalars = {
        exp.DataType.Type.INT: pa.int32(),
        exp.DataType.Type.BIGINT: pa.int64(),
        exp.DataType.Type.TEXT: pa.string(),
        exp.DataType.Type.BOOLEAN: pa.bool_(),
        exp.DataType.Type.DOUBLE: pa.float64(),
        exp.DataType.Type.TIMESTAMP: tables.TIMESTAMP,  # Parquet millis, UTC-adjusted
    }
    if dtype.this == exp.DataType.Type.MAP:
        key, value = dtype.expressions
        return pa.map_(arrow_type(key), arrow_type(value))
    return scalars[dtype.this]


def parse_ddl(text: str) -> tuple[str, list[pa.Field], list[tuple[str, str]], str]:
    create = sqlglot.parse_one(text, read="athena")
    assert isinstance(create, exp.Create)
    assert create.args["kind"] == "TABLE"
    schema = create.this
    table = schema.this.name
    fields = [pa.field(c.name, arrow_type(c.args["kind"])) for c in schema.expressions]
    props = create.args["properties"].expressions
    assert any(isinstance(p, exp.ExternalProperty) for p in props)
    (partitioned,) = [p for p in props if isinstance(p, exp.PartitionedByProperty)]
    parts = [(c.name, c.args["kind"].sql("hive").lower()) for c in partitioned.this.expressions]
    (location,) = [p for p in props if isinstance(p, exp.LocationProperty)]
    (file_format,) = [p for p in props if isinstance(p, exp.FileFormatProperty)]
    assert file_format.this.name.upper() == "PARQUET"
    return table, fields, parts, location.this.name


@pytest.mark.parametrize("table", ["outcomes", "results"])
def test_committed_ddl_is_the_generated_one(table: str) -> None:
    committed = (PROJECT_ROOT / "athena" / f"ddl_{table}.sql").read_text()
    assert committed == ddl.create_table_sql(table), "run: python -m deploy.ddl --write"


@pytest.mark.parametrize("table", ["outcomes", "results"])
def test_ddl_parsed_back_is_the_pyarrow_schema(table: str) -> None:
    committed = (PROJECT_ROOT / "athena" / f"ddl_{table}.sql").read_text()
    name, fields, parts, location = parse_ddl(committed)
    assert name == table
    schema = SCHEMAS[table]
    assert [f.name for f in fields] == schema.names
    for parsed, declared in zip(fields, schema, strict=True):
        assert parsed.type == declared.type, parsed.name
    assert parts == [(p, "string") for p in PARTITIONS[table]]
    assert location == f"${{location}}/{table}/"


def test_partition_columns_are_never_file_columns() -> None:
    for table, schema in SCHEMAS.items():
        assert not set(PARTITIONS[table]) & set(schema.names)


def test_committed_generated_files_are_current() -> None:
    assert ddl.main(["--check"]) == 0


def test_a_column_added_to_a_schema_reaches_every_definition(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    extended = tables.OUTCOMES.append(pa.field("memory_mb", pa.int32()))
    monkeypatch.setitem(tables.SCHEMAS, "outcomes", extended)
    assert "`memory_mb` int" in ddl.create_table_sql("outcomes")
    columns = glue_schema.table_input("outcomes", "s3://b/outcomes/")["StorageDescriptor"][
        "Columns"
    ]
    assert columns[-1] == {"Name": "memory_mb", "Type": "int"}
    assert "memory_mb" in dump_yaml(infra.data_template("dev"))
    assert ddl.main(["--check"]) == 1  # the committed files are now stale
    assert infra.main(["--check"]) == 1


def test_write_rewrites_stale_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(ddl, "PROJECT_ROOT", tmp_path)
    assert ddl.main(["--check"]) == 1
    assert ddl.main(["--write"]) == 0
    assert ddl.main(["--check"]) == 0
    assert (tmp_path / "athena" / "ddl_results.sql").read_text() == ddl.create_table_sql("results")


@pytest.mark.parametrize(
    ("arrow", "hive"),
    [
        (pa.int32(), "int"),
        (pa.int64(), "bigint"),
        (pa.string(), "string"),
        (pa.bool_(), "boolean"),
        (pa.timestamp("ms", tz="UTC"), "timestamp"),
        (pa.float64(), "double"),
        (pa.map_(pa.string(), pa.string()), "map<string,string>"),
        (pa.map_(pa.string(), pa.float64()), "map<string,double>"),
        (pa.list_(pa.int64()), "array<bigint>"),
    ],
)
def test_hive_types(arrow: pa.DataType, hive: str) -> None:
    assert glue_schema.hive_type(arrow) == hive


def test_a_type_with_no_hive_equivalent_is_refused() -> None:
    with pytest.raises(ValueError, match="no Hive type"):
        glue_schema.hive_type(pa.duration("s"))


# ------------------------------------------------------------------------------ CloudFormation


@pytest.mark.parametrize("stage", STAGES)
def test_stack_tables_are_the_pyarrow_schemas(stage: str) -> None:
    """The data stack (the one place the Glue tables are written, path A merges it) against the
    pyarrow schemas, column by column."""
    resources = load_yaml(infra.template_path(stage).read_text())["Resources"]
    for table in ("outcomes", "results", "usage"):
        resource = resources[f"{table.capitalize()}Table"]
        assert resource["Type"] == "AWS::Glue::Table"
        assert resource["Properties"]["DatabaseName"] == Tag("Ref", "AnalyticsDatabase")
        table_input = resource["Properties"]["TableInput"]
        assert table_input["Name"] == table
        assert table_input["TableType"] == "EXTERNAL_TABLE"
        kind = "json" if table == "usage" else "parquet"  # usage: JSON Lines (tables.FORMATS)
        assert table_input["Parameters"]["classification"] == kind
        assert table_input["Parameters"]["EXTERNAL"] == "TRUE"
        sd = table_input["StorageDescriptor"]
        storage = glue_schema.STORAGE[kind]
        assert sd["InputFormat"] == storage["InputFormat"]
        assert sd["OutputFormat"] == storage["OutputFormat"]
        assert sd["SerdeInfo"]["SerializationLibrary"] == storage["SerDe"]
        parsed = [
            pa.field(c["Name"], arrow_type(exp.DataType.build(c["Type"], dialect="hive")))
            for c in sd["Columns"]
        ]
        assert [f.name for f in parsed] == SCHEMAS[table].names
        assert [f.type for f in parsed] == SCHEMAS[table].types
        assert table_input["PartitionKeys"] == [
            {"Name": p, "Type": "string"} for p in PARTITIONS[table]
        ]
    database = resources["AnalyticsDatabase"]
    assert database["Type"] == "AWS::Glue::Database"
    assert resources["AnalyticsWorkGroup"]["Type"] == "AWS::Athena::WorkGroup"
    config = resources["AnalyticsWorkGroup"]["Properties"]["WorkGroupConfiguration"]
    assert config["EngineVersion"]["SelectedEngineVersion"] == "Athena engine version 3"


def test_no_second_analytics_stack() -> None:
    """The analytics resources are written once (``deploy.infra``); no stand-alone template."""
    assert not (PROJECT_ROOT / "infra" / "analytics.yaml").exists()
    assert all(p.parent.name == "athena" for p in ddl.generated_files())
