from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pyarrow as pa
import pytest

from naia_backfill.dev.benchmarks.pg_readers_arrow import (
    PgColumn,
    arrow_schema,
    bind_settings_sql,
    conform,
    day_where,
    numeric_precision_scale,
    pg_arrow_type,
    rechunk,
    rows_to_batch,
    setting_names,
    summarise,
)
from naia_backfill.dev.benchmarks.pg_readers_tables import samples_points, table_name


def typmod(precision: int, scale: int) -> int:
    """``atttypmod`` of ``numeric(precision, scale)`` as PostgreSQL stores it."""
    return ((precision << 16) | scale) + 4


def test_numeric_typmod_decodes_precision_and_scale():
    assert numeric_precision_scale(typmod(12, 4)) == (12, 4)
    assert numeric_precision_scale(typmod(38, 0)) == (38, 0)
    assert numeric_precision_scale(-1) is None


def test_numeric_maps_to_decimal128_only_when_it_fits():
    assert pg_arrow_type("numeric", typmod(12, 4)) == pa.decimal128(12, 4)
    assert pg_arrow_type("numeric", typmod(38, 10)) == pa.decimal128(38, 10)
    assert pg_arrow_type("numeric", typmod(39, 2)) == pa.string()
    assert pg_arrow_type("numeric") == pa.string()  # unconstrained: NaN, Infinity and any precision stay exact


def test_arrays_map_to_lists_of_their_element_with_the_column_typmod():
    assert pg_arrow_type("_text", element="text") == pa.list_(pa.string())
    assert pg_arrow_type("_numeric", typmod(12, 4), element="numeric") == pa.list_(pa.decimal128(12, 4))


def test_timestamps_keep_their_time_zone_kind_and_unknown_types_become_text():
    assert pg_arrow_type("timestamptz") == pa.timestamp("us", tz="UTC")
    assert pg_arrow_type("timestamp") == pa.timestamp("us")
    assert pg_arrow_type("jsonb") == pa.string()
    assert pg_arrow_type("tsvector") == pa.string()


def test_rows_to_batch_keeps_nulls_decimals_and_time_zones():
    schema = arrow_schema([PgColumn("id", "int8"), PgColumn("score", "numeric", typmod(12, 4)),
                           PgColumn("at", "timestamptz"), PgColumn("tags", "_text", element="text")])
    at = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    batch = rows_to_batch([(1, Decimal("1.2345"), at, ["a", None]), (None, None, None, None)], schema)
    assert batch.schema == schema
    assert batch.to_pylist() == [{"id": 1, "score": Decimal("1.2345"), "at": at, "tags": ["a", None]},
                                 {"id": None, "score": None, "at": None, "tags": None}]


def test_rows_to_batch_writes_non_text_values_of_text_columns_as_text():
    schema = arrow_schema([PgColumn("n", "numeric")])
    batch = rows_to_batch([(Decimal("NaN"),), (Decimal("1e-30"),), (None,)], schema)
    assert batch.column(0).to_pylist() == [str(Decimal("NaN")), str(Decimal("1e-30")), None]


def test_rows_to_batch_of_no_rows_is_empty_with_the_schema():
    schema = arrow_schema([PgColumn("id", "int8")])
    batch = rows_to_batch([], schema)
    assert batch.num_rows == 0 and batch.schema == schema


def test_rechunk_slices_big_batches_and_passes_small_ones():
    big = pa.record_batch({"x": list(range(25))})
    small = pa.record_batch({"x": [1, 2]})
    sizes = [b.num_rows for b in rechunk([big, small], 10)]
    assert sizes == [10, 10, 5, 2]
    assert sum((b.column(0).to_pylist() for b in rechunk([big], 10)), []) == list(range(25))


def test_settings_sql_binds_every_value_as_a_placeholder():
    names = setting_names(2)
    numbered = bind_settings_sql(2)
    assert [m for m in re.findall(r"\$\d+", numbered)] == ["$1", "$2"]
    assert all(f"'{n}'" in numbered for n in names)
    assert bind_settings_sql(2, "%s").count("%s") == 2


def test_day_where_reads_settings_or_placeholders_never_values():
    names = setting_names(2)
    from_settings = day_where('"ts"', "timestamptz", "settings")
    assert all(f"current_setting('{n}')::timestamptz" in from_settings for n in names)
    assert day_where('"ts"', "timestamptz", "$") == '"ts" >= $1 AND "ts" < $2'
    assert day_where('"ts"', "timestamp", "%s").count("%s") == 2


def test_summarise_gives_medians_and_ratios_to_the_best():
    out = summarise({"a": [1.0, 3.0, 2.0], "b": [4.0], "c": []})
    assert out["b"] == (4.0, 1.0)
    assert out["a"] == (2.0, 0.5)
    assert "c" not in out


def test_conform_unwraps_extension_types_and_casts_text_numerics():
    schema = pa.schema([pa.field("n", pa.decimal128(12, 4)), pa.field("j", pa.string())])
    batch = pa.record_batch({"n": pa.array(["1.5", None]), "j": pa.array(['{"a": 1}', None], pa.json_(pa.string()))})
    out = conform(batch, schema)
    assert out.schema == schema
    assert out.to_pylist() == [{"n": Decimal("1.5"), "j": '{"a": 1}'}, {"n": None, "j": None}]


def test_conform_refuses_values_the_target_cannot_hold():
    schema = pa.schema([pa.field("n", pa.decimal128(12, 4))])
    with pytest.raises(pa.ArrowInvalid):
        conform(pa.record_batch({"n": pa.array(["NaN"])}), schema)


def test_samples_tables_spread_rows_over_a_day_of_minutes():
    assert samples_points(1440) == 1
    assert samples_points(1441) == 2
    assert samples_points(10_000_000) * 1440 >= 10_000_000 > (samples_points(10_000_000) - 1) * 1440
    assert table_name("users", 5) != table_name("samples", 5)
