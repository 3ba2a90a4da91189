from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from naia_backfill.connectors.synthetic import SyntheticConnector
from naia_backfill.errors import SinkError
from naia_backfill.schema import SAMPLE_SCHEMA
from naia_backfill.settings import ParquetSink, SyntheticSource
from naia_backfill.sinks import layout
from naia_backfill.sinks.base import DayTarget
from naia_backfill.sinks.lake import LocalLake, lake_from_url
from naia_backfill.sinks.parquet import ParquetDaySink

DAY = dt.date(2024, 1, 2)


def batches(day: dt.date = DAY, points: int = 20, seed: int = 1):
    src = SyntheticConnector(SyntheticSource(kind="synthetic", points=points, seed=seed, interval_seconds=60))
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    return list(src.fetch(src.list_points(), start, start + dt.timedelta(days=1)))


def write_day(lake, target: DayTarget, data, **settings):
    writer = ParquetDaySink(lake, ParquetSink(kind="parquet", **settings)).open_day(target)
    for b in data:
        writer.write(b)
    return writer.commit()


def test_layout_keys():
    assert layout.object_key("plant_a", DAY) == "point_set=plant_a/date=2024-01-02/all.parquet"
    g = layout.group_id(["B", "A", "A"])
    assert g == layout.group_id(["A", "B"]) and len(g) == 12
    assert layout.object_key("plant_a", DAY, g) == f"point_set=plant_a/date=2024-01-02/points-{g}.parquet"
    assert layout.parse_day("date=2024-02-29") == dt.date(2024, 2, 29)
    assert layout.parse_day("date=2023-02-29") is None and layout.parse_day("x") is None
    with pytest.raises(ValueError):
        layout.object_key("../etc", DAY)
    with pytest.raises(ValueError):
        layout.object_name("zz")


def test_day_round_trips_with_the_canonical_schema(tmp_path: Path):
    lake = LocalLake(tmp_path)
    data = batches()
    result = write_day(lake, DayTarget("plant", DAY), data, row_group_rows=10_000)
    expected = pa.Table.from_batches(data, schema=SAMPLE_SCHEMA)
    path = tmp_path / "point_set=plant/date=2024-01-02/all.parquet"
    assert result.uri == str(path) and result.rows == expected.num_rows == result.rows
    assert result.bytes == path.stat().st_size
    got = pq.read_table(path)
    assert got.schema.remove_metadata() == SAMPLE_SCHEMA.remove_metadata()
    assert got.equals(expected.replace_schema_metadata(got.schema.metadata))
    meta = pq.ParquetFile(path).metadata
    assert meta.num_row_groups == -(-expected.num_rows // 10_000)
    assert all(meta.row_group(i).num_rows == 10_000 for i in range(meta.num_row_groups - 1))


def test_rerun_replaces_the_day_and_abort_leaves_nothing(tmp_path: Path):
    lake = LocalLake(tmp_path)
    write_day(lake, DayTarget("plant", DAY), batches(seed=1))
    write_day(lake, DayTarget("plant", DAY), batches(seed=2))
    folder = tmp_path / "point_set=plant/date=2024-01-02"
    assert [p.name for p in folder.iterdir()] == ["all.parquet"]
    assert pq.read_table(folder / "all.parquet").equals(
        pa.Table.from_batches(batches(seed=2), schema=SAMPLE_SCHEMA).replace_schema_metadata(
            pq.read_schema(folder / "all.parquet").metadata))

    writer = ParquetDaySink(lake).open_day(DayTarget("plant", DAY + dt.timedelta(days=1)))
    writer.write(batches()[0])
    tmp_files = list((tmp_path / "point_set=plant/date=2024-01-03").iterdir())
    assert len(tmp_files) == 1 and tmp_files[0].name.endswith(".tmp") and tmp_files[0].name.startswith(".")
    writer.abort()
    assert list((tmp_path / "point_set=plant/date=2024-01-03").iterdir()) == []


def test_group_objects_and_full_day_replacement(tmp_path: Path):
    lake = LocalLake(tmp_path)
    write_day(lake, DayTarget("plant", DAY), batches())
    group = layout.group_id(["NEW1"])
    write_day(lake, DayTarget("plant", DAY, group=group), batches(points=1))
    assert lake.list_days("plant") == {DAY: ["all.parquet", f"points-{group}.parquet"]}
    write_day(lake, DayTarget("plant", DAY), batches())
    assert lake.list_days("plant") == {DAY: ["all.parquet"]}


def test_duckdb_reads_the_lake_with_hive_partitions_and_ignores_temporaries(tmp_path: Path):
    lake = LocalLake(tmp_path)
    total = 0
    for d in (DAY, DAY + dt.timedelta(days=1)):
        total += write_day(lake, DayTarget("plant", d), batches(day=d)).rows
    pending = ParquetDaySink(lake).open_day(DayTarget("plant", DAY + dt.timedelta(days=2)))
    pending.write(batches()[0])  # a crash mid-day leaves only a .tmp file
    rows = duckdb.sql(
        f"SELECT point_set, date, count(*) FROM read_parquet('{tmp_path}/**/*.parquet', hive_partitioning=true) "
        "GROUP BY ALL ORDER BY date"
    ).fetchall()
    assert [r[1] for r in rows] == [DAY, DAY + dt.timedelta(days=1)]
    assert sum(r[2] for r in rows) == total and {r[0] for r in rows} == {"plant"}
    pending.abort()


def test_empty_day_is_a_valid_empty_object(tmp_path: Path):
    result = write_day(LocalLake(tmp_path), DayTarget("plant", DAY), [])
    assert result.rows == 0
    assert pq.read_table(result.uri).num_rows == 0


def test_unwritable_lake_is_a_clear_error(tmp_path: Path):
    (tmp_path / "point_set=plant").write_text("a file where a folder should be")
    with pytest.raises((SinkError, OSError)):
        write_day(LocalLake(tmp_path), DayTarget("plant", DAY), batches())


def test_lake_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("NAIA_LAKE_URL", str(tmp_path / "env"))
    assert lake_from_url(None).url == str(tmp_path / "env")
    assert lake_from_url(f"file://{tmp_path}/x").url == str(tmp_path / "x")
    with pytest.raises(ValueError, match="unsupported lake URL"):
        lake_from_url("gs://bucket/x")


def test_a_tables_own_rows_get_dictionaries_only_where_values_repeat(tmp_path: Path):
    from naia_backfill.sinks.parquet import dictionary_columns

    n = 5_000
    schema = pa.schema([("id", pa.int64()), ("email", pa.string()), ("status", pa.string()), ("active", pa.bool_()),
                        ("tags", pa.list_(pa.string())), ("ids", pa.list_(pa.int64()))])
    status = [None, "a", "b"] * (n // 3) + ["a"] * (n % 3)
    table = pa.table({"id": range(n), "email": [f"u{i}@x" for i in range(n)], "status": status, "active": [True] * n,
                      "tags": [["t1", "t2"]] * n, "ids": [[i] for i in range(n)]}, schema=schema)
    assert dictionary_columns(table) == ["status", "tags.list.element"]
    lake = LocalLake(tmp_path / "lake")
    writer = ParquetDaySink(lake).open_day(DayTarget("users", DAY, schema=schema))
    for batch in table.to_batches(max_chunksize=1_000):
        writer.write(batch)
    writer.commit()
    path = tmp_path / f"lake/{layout.Layout('users').key(DAY)}"
    meta = pq.ParquetFile(path).metadata.row_group(0)
    encoded = {meta.column(i).path_in_schema: "RLE_DICTIONARY" in meta.column(i).encodings for i in range(meta.num_columns)}
    assert encoded == {"id": False, "email": False, "status": True, "active": False, "tags.list.element": True,
                       "ids.list.element": False}
    assert pq.read_table(path).equals(table)
    empty = ParquetDaySink(lake).open_day(DayTarget("users", DAY + dt.timedelta(days=1), schema=schema))
    empty.commit()  # a day without rows still gets its object, with the table's columns
    assert pq.read_schema(tmp_path / f"lake/{layout.Layout('users').key(DAY + dt.timedelta(days=1))}").names == schema.names


def test_a_row_group_that_fails_in_the_encoding_thread_fails_the_day_and_leaves_nothing(tmp_path: Path):
    lake = LocalLake(tmp_path / "lake")
    writer = ParquetDaySink(lake, ParquetSink(kind="parquet", row_group_rows=1_000)).open_day(DayTarget("plant", DAY))
    upload = writer._upload
    written: list[int] = []

    def refuse(data) -> int:  # the disk fills up while the first row group is written
        written.append(len(data))
        raise OSError("No space left on device")

    upload.write = refuse
    with pytest.raises((OSError, SinkError), match="No space left"):  # raised by a later write, or by commit
        for batch in batches(points=5):  # 5 x 1440 samples: the first full row group goes to the thread
            writer.write(batch)
        writer.commit()
    writer.abort()
    assert written and not list((tmp_path / "lake").rglob("*.parquet")) and not list((tmp_path / "lake").rglob("*.tmp*"))
