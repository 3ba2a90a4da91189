"""The Parquet sink in a layout users already have: seed 002's key and columns (INT64 ms timestamps, Snappy,
10,000-row groups), read back as canonical columns by DuckDB; atomic, idempotent writes under a template."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from naia_backfill.schema import SAMPLE_SCHEMA, from_columns
from naia_backfill.settings import ParquetSink, PointSet
from naia_backfill.settings.loading import expand_sites
from naia_backfill.sinks.base import DayTarget
from naia_backfill.sinks.lake_local import LocalLake
from naia_backfill.sinks.layout import Layout
from naia_backfill.sinks.parquet import ParquetDaySink
from naia_backfill.sinks.parquet_columns import ColumnMapping, canonical_select

DAY = dt.date(2024, 1, 15)
T0 = 1_705_276_800 * 10**9  # DAY in ns
SEED_002_SINK = {"kind": "parquet", "key_template": "timeseries/{yyyy}/{mm}/{dd}/{site}.parquet",
                 "columns": {"ts": "timestamp", "point": "point_name", "value": "value"},
                 "constant_columns": {"site_name": "{site}", "set": "{point_set}"},
                 "timestamp_unit": "ms", "timestamp_as": "int64", "compression": "snappy", "row_group_rows": 10_000}
#: The sink as a point set of site ses_falls_city loads it ({site} filled in).
SEED_002 = expand_sites(PointSet.model_validate({
    "name": "hospital", "start_date": "2024-01-01", "sinks": [SEED_002_SINK],
    "source": {"kind": "ace_iot", "base_url": "http://ace.test/api", "sites": ["ses_falls_city"]},
}))[0].sink("parquet")


def day_batches(rows: int = 25_000, per_batch: int = 3_000) -> list[pa.RecordBatch]:
    """Canonical rows of 7 points, sub-millisecond times included."""
    i = np.arange(rows)
    ts = T0 + i * 3_456_789_123 // 1000  # 3.456789123 ms apart
    points = pa.array([f"ses/p{j}" for j in range(7)]).take(pa.array(i % 7))
    full = from_columns(point=points, ts=pa.array(ts, pa.int64()).cast(SAMPLE_SCHEMA.field("ts").type),
                        value=i * 0.5)
    return [full.slice(o, per_batch) for o in range(0, rows, per_batch)]


def write(lake: LocalLake, settings: ParquetSink, batches, group: str | None = None, point_set: str = "hospital"):
    writer = ParquetDaySink(lake, settings).open_day(DayTarget(point_set, DAY, group=group))
    for b in batches:
        writer.write(b)
    return writer.commit()


def test_seed_002_layout_and_columns(tmp_path: Path):
    lake = LocalLake(tmp_path)
    batches = day_batches()
    result = write(lake, SEED_002, batches)
    path = tmp_path / "timeseries/2024/01/15/ses_falls_city.parquet"
    assert result.uri == str(path) and result.rows == 25_000
    meta = pq.ParquetFile(path).metadata
    assert [meta.schema.column(i).name for i in range(meta.num_columns)] == [
        "timestamp", "point_name", "value", "site_name", "set"]
    assert meta.schema.column(0).physical_type == "INT64" and meta.schema.column(0).logical_type.type == "NONE"
    assert meta.row_group(0).column(0).compression == "SNAPPY"
    assert [meta.row_group(g).num_rows for g in range(meta.num_row_groups)] == [10_000, 10_000, 5_000]
    table = pq.read_table(path)
    canonical = pa.Table.from_batches(batches)
    expected_ms = canonical.column("ts").cast(pa.int64()).to_numpy() // 1_000_000  # floored
    assert table.column("timestamp").to_numpy().tolist() == expected_ms.tolist()
    assert table.column("point_name").equals(canonical.column("point"))
    assert table.column("value").equals(canonical.column("value"))
    assert set(table.column("site_name").to_pylist()) == {"ses_falls_city"}
    assert set(table.column("set").to_pylist()) == {"hospital"}


@pytest.mark.parametrize(("unit", "as_"), [("ms", "int64"), ("us", "int64"), ("ns", "int64"), ("ms", "timestamp"),
                                            ("ns", "timestamp")])
def test_duckdb_reads_any_mapping_back_as_canonical_columns(tmp_path: Path, unit, as_):
    settings = ParquetSink(kind="parquet", key_template="{point_set}/{date}.parquet",
                           columns={"point": "p", "ts": "t", "value": "v"}, timestamp_unit=unit, timestamp_as=as_)
    write(LocalLake(tmp_path), settings, day_batches(50, 50))
    glob = str(tmp_path / Layout("hospital", settings.key_template).globs()[0])
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    rows = con.execute(f"SELECT {canonical_select(settings)} FROM read_parquet(?)", [glob]).to_arrow_table()
    assert rows.column_names == list(SAMPLE_SCHEMA.names)
    expect_us = (T0 + np.arange(50) * 3_456_789_123 // 1000) // {"ns": 1000, "us": 1000, "ms": 10**6}[unit]
    expect_us *= {"ns": 1, "us": 1, "ms": 1000}[unit]
    got_us = rows.column("ts").cast(pa.timestamp("us", "UTC")).cast(pa.int64()).to_pylist()
    assert got_us == expect_us.tolist()
    assert rows.column("good").to_pylist() == [True] * 50 and rows.column("text").null_count == 50


def test_canonical_mapping_is_the_identity():
    mapping = ColumnMapping(ParquetSink(kind="parquet"), "x")
    batch = day_batches(10, 10)[0]
    assert mapping.identity and mapping.schema == SAMPLE_SCHEMA and mapping.apply(batch).equals(batch)


def test_templated_writes_are_atomic_and_idempotent(tmp_path: Path):
    lake = LocalLake(tmp_path)
    folder = tmp_path / "timeseries/2024/01/15"
    neighbour = folder / "other_site.points-0123456789ab.parquet"
    folder.mkdir(parents=True)
    pq.write_table(pa.table({"x": [1]}), neighbour)
    group = write(lake, SEED_002, day_batches(100, 100), group="aaaaaaaaaaaa")
    assert group.uri.endswith("ses_falls_city.points-aaaaaaaaaaaa.parquet")
    writer = ParquetDaySink(lake, SEED_002).open_day(DayTarget("hospital", DAY))
    writer.write(day_batches(100, 100)[0])
    assert not (folder / "ses_falls_city.parquet").exists()  # invisible until committed
    writer.abort()
    assert sorted(p.name for p in folder.iterdir()) == [neighbour.name, "ses_falls_city.points-aaaaaaaaaaaa.parquet"]
    first = write(lake, SEED_002, day_batches())
    before = (folder / "ses_falls_city.parquet").read_bytes()
    second = write(lake, SEED_002, day_batches())
    assert first.uri == second.uri and (folder / "ses_falls_city.parquet").read_bytes() == before
    # the full day replaced its own point group, and only its own
    assert sorted(p.name for p in folder.iterdir()) == [neighbour.name, "ses_falls_city.parquet"]
