"""PostgreSQL types to Arrow and the driver's batches to the point set's schemas, without a server: batches built
the way the ADBC driver builds them (numeric as an opaque text extension, json as arrow.json, wrapped infinities)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest

from naia_backfill.connectors.postgres_plan import good_values, narrow_batch, wide_batches
from naia_backfill.connectors.postgres_types import PgColumn, arrow_schema, arrow_type, select_expression, to_schema
from naia_backfill.errors import SourceError
from naia_backfill.schema import SAMPLE_SCHEMA, conform
from naia_backfill.settings.sources import PostgresSource

NUMERIC = pa.opaque(pa.string(), type_name="numeric", vendor_name="PostgreSQL")


def numeric_typmod(precision: int, scale: int) -> int:
    return (precision << 16 | scale) + 4


@pytest.mark.parametrize("column, expected, expression", [
    (PgColumn("n", "numeric", numeric_typmod(12, 4)), pa.decimal128(12, 4), '"n"'),
    (PgColumn("n", "numeric", numeric_typmod(38, 10)), pa.decimal128(38, 10), '"n"'),
    (PgColumn("n", "numeric", numeric_typmod(50, 2)), pa.string(), '"n"::text AS "n"'),
    (PgColumn("n", "numeric"), pa.string(), '"n"::text AS "n"'),
    (PgColumn("t", "timestamptz"), pa.timestamp("us", tz="UTC"), '"t"'),
    (PgColumn("t", "timestamp"), pa.timestamp("us"), '"t"'),
    (PgColumn("j", "jsonb"), pa.string(), '"j"'),
    (PgColumn("a", "_int4", element="int4"), pa.list_(pa.int32()), '"a"'),
    (PgColumn("a", "_numeric", element="numeric"), pa.list_(pa.string()), '"a"::text[] AS "a"'),
    (PgColumn("a", "_jsonb", element="jsonb"), pa.list_(pa.string()), '"a"::text[] AS "a"'),
    (PgColumn("u", "uuid"), pa.string(), '"u"::text AS "u"'),
    (PgColumn("i", "interval"), pa.string(), '"i"::text AS "i"'),
    (PgColumn("e", "my_enum"), pa.string(), '"e"::text AS "e"'),
])
def test_each_type_is_read_as_is_or_as_text(column: PgColumn, expected: pa.DataType, expression: str):
    assert arrow_type(column) == expected
    assert select_expression(column, f'"{column.name}"') == expression


def test_driver_batches_become_the_table_schema_with_nulls_kept():
    columns = [PgColumn("n", "numeric", numeric_typmod(12, 4)), PgColumn("free", "numeric"), PgColumn("j", "json"),
               PgColumn("a", "_numeric", element="numeric")]
    schema = arrow_schema(columns)
    texts = pa.array(["12345678.1234", None, "-0.0001"])
    batch = pa.RecordBatch.from_arrays([
        pa.ExtensionArray.from_storage(NUMERIC, texts),
        pa.ExtensionArray.from_storage(NUMERIC, pa.array(["NaN", "1e-300", None])),
        pa.ExtensionArray.from_storage(pa.json_(), pa.array(['{"a": 1}', None, "null"])),
        pa.array([["1.5"], None, []], pa.list_(pa.string())),
    ], names=["n", "free", "j", "a"])
    out = to_schema(batch, schema)
    assert out.schema == schema
    assert out.column("n").to_pylist() == [Decimal("12345678.1234"), None, Decimal("-0.0001")]
    assert out.column("free").to_pylist() == ["NaN", "1e-300", None]
    assert out.column("j").to_pylist() == ['{"a": 1}', None, "null"]


def test_nan_in_a_constrained_numeric_fails_the_day_clearly():
    schema = arrow_schema([PgColumn("n", "numeric", numeric_typmod(12, 4))])
    batch = pa.RecordBatch.from_arrays([pa.ExtensionArray.from_storage(NUMERIC, pa.array(["NaN"]))], names=["n"])
    with pytest.raises(SourceError, match="'n' does not fit decimal128"):
        to_schema(batch, schema)


@pytest.mark.parametrize("column, raw", [
    (PgColumn("t", "timestamptz"), pa.array([0, -9222425352054775809], pa.int64()).cast(pa.timestamp("us", tz="UTC"))),
    (PgColumn("t", "timestamp"), pa.array([-9222425352054775808], pa.int64()).cast(pa.timestamp("us"))),
    (PgColumn("d", "date"), pa.array([-2147472692], pa.int32()).cast(pa.date32())),
    (PgColumn("a", "_timestamptz", element="timestamptz"),
     pa.array([[0, -9222425352054775809]], pa.list_(pa.int64())).cast(pa.list_(pa.timestamp("us", tz="UTC")))),
])
def test_wrapped_infinities_raise_instead_of_being_written(column: PgColumn, raw: pa.Array):
    batch = pa.RecordBatch.from_arrays([raw], names=[column.name])
    with pytest.raises(SourceError, match="infinity"):
        to_schema(batch, arrow_schema([column]))


def test_year_one_and_far_future_dates_pass():
    year_one = dt.datetime(1, 1, 1, tzinfo=dt.UTC)
    batch = pa.RecordBatch.from_arrays([pa.array([year_one], pa.timestamp("us", tz="UTC"))], names=["t"])
    assert to_schema(batch, arrow_schema([PgColumn("t", "timestamptz")])).column(0).to_pylist() == [year_one]


def settings(**overrides: object) -> PostgresSource:
    doc: dict[str, object] = {"kind": "postgres", "dsn_env": "X", "table": "t", "timestamp_column": "ts",
                              "shape": "samples", "point_column": "p", "value_column": "v"}
    doc.update(overrides)
    return PostgresSource.model_validate(doc)


TS = pa.array([0, 60_000_000, 60_000_000], pa.timestamp("us", tz="UTC"))


def test_a_point_per_row_table_becomes_samples_with_quality_and_text():
    good = good_values(settings(quality_column="q", good_quality=[192, "GOOD"]))
    batch = pa.RecordBatch.from_pydict({
        "ts": TS, "point": ["a", "b", "a"], "value": [1.0, None, 3.0], "text": [None, "note", None],
        "quality": ["192", "0", None]})
    out = conform(narrow_batch(batch, good))
    assert out.column("ts").to_pylist()[1] == dt.datetime(1970, 1, 1, 0, 1, tzinfo=dt.UTC)
    assert out.column("good").to_pylist() == [True, False, False]
    assert out.column("text").to_pylist() == [None, "note", None]
    plain = conform(narrow_batch(batch.drop_columns(["quality", "text"]), None))
    assert plain.column("good").to_pylist() == [True, True, True]
    assert plain.column("text").null_count == 3


def test_a_wide_table_gives_one_sample_per_non_null_cell_of_the_selected_columns():
    batch = pa.RecordBatch.from_pydict({"ts": TS, "v0": [1.0, None, 2.0], "v1": [None, None, 5.0],
                                        "v2": [7.0, 8.0, 9.0], "quality": ["true", "false", "true"]})
    good = good_values(settings(point_column=None, value_column=None, value_columns=["x", "y", "z"], quality_column="g"))
    out, dropped = wide_batches(batch, [(0, "x"), (1, "y")], good)
    assert dropped == 3
    rows = [r for b in out for r in conform(b).to_pylist()]
    assert [(r["point"], r["value"], r["good"]) for r in rows] == [("x", 1.0, True), ("x", 2.0, True), ("y", 5.0, True)]
    assert all(b.schema == SAMPLE_SCHEMA for b in out)
