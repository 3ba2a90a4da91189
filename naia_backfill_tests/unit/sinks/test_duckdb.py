"""The DuckDB sink over a local lake: the view (never blocked by a corrupt object, checked once per run), the
table mode (a day replaced in one transaction, any Arrow schema), and sink combinations refused up front."""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
import shutil
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from naia_backfill.connectors.synthetic import SyntheticConnector
from naia_backfill.core.daycopy import copy_day, day_window
from naia_backfill.errors import PointSetError, SinkConfigError
from naia_backfill.settings import DuckDBSink, ParquetSink, PointSet, SyntheticSource
from naia_backfill.sinks import layout
from naia_backfill.sinks.base import DayTarget
from naia_backfill.sinks.duckdb import DuckDBViewSink, build
from naia_backfill.sinks.lake import lake_from_url
from naia_backfill.sinks.parquet import ParquetDaySink
from naia_backfill.sinks.preflight import check_sinks

DAYS = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(3)]
SOURCE = SyntheticSource(kind="synthetic", points=8, seed=5, interval_seconds=300)


class Warehouse:
    """A DuckDB file and a ``connect`` like the resource's, counting how often the file is opened."""

    def __init__(self, path: Path) -> None:
        self.path, self.opened = path, 0

    @contextlib.contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        self.opened += 1
        con = duckdb.connect(str(self.path))
        try:
            yield con
        finally:
            con.close()

    def sink(self, lake, mode: str = "view", parquet: ParquetSink | None = None, schema: pa.Schema | None = None):
        return build(DuckDBSink(kind="duckdb", mode=mode), lake, self.connect, str(self.path), parquet, schema)

    def rows(self, sql: str) -> list[tuple]:
        with self.connect() as con:
            return con.execute(sql).fetchall()


@pytest.fixture
def lake(tmp_path: Path):
    return lake_from_url(str(tmp_path / "lake"))


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    return Warehouse(tmp_path / "naia.duckdb")


def copy(sinks, days=DAYS, point_set: str = "plant", source=SOURCE, group: str | None = None, points=None) -> list:
    src = SyntheticConnector(source)
    names = points or src.list_points()
    return [copy_day(src, names, sinks, DayTarget(point_set, d, group=group)) for d in days]


def object_rows(lake, point_set: str = "plant") -> dict[dt.date, int]:
    """Rows per day in the lake's objects; a day with an unreadable object is left out."""
    out = {}
    for d, names in lake.list_days(point_set).items():
        try:
            out[d] = sum(pq.read_metadata(lake.uri(f"{layout.day_prefix(point_set, d)}/{n}")).num_rows for n in names)
        except pa.ArrowInvalid:
            continue
    return out


def per_day(wh: Warehouse, relation: str = "plant", where: str = "") -> dict[dt.date, int]:
    return dict(wh.rows(f"SELECT date, count(*) FROM {relation} {where} GROUP BY date ORDER BY date"))


def truncate(lake, day: dt.date) -> Path:
    path = Path(lake.uri(layout.object_key("plant", day)))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def test_view_counts_equal_the_objects_and_the_file_is_opened_once_per_run(lake, wh):
    copy([ParquetDaySink(lake), wh.sink(lake)])
    assert wh.opened == 2  # the first day's check, then the view's creation; later days open nothing
    assert per_day(wh) == object_rows(lake) and len(object_rows(lake)) == 3
    wh.opened = 0
    copy([ParquetDaySink(lake), wh.sink(lake)], days=[dt.date(2024, 1, 4)])
    assert wh.opened == 1  # a new run: the view is already current
    assert wh.rows("SELECT DISTINCT point_set FROM plant") == [("plant",)]


def test_a_corrupt_object_blocks_no_other_day(lake, wh, tmp_path: Path):
    copy([ParquetDaySink(lake), wh.sink(lake)])
    broken = truncate(lake, DAYS[0])  # the first day: the one DuckDB would bind a plain glob to
    wh.path.unlink()  # the DuckDB file recreated, as after a reinstall
    shutil.rmtree(tmp_path / "naia.duckdb.views")
    new_day = dt.date(2024, 1, 4)
    copy([ParquetDaySink(lake), wh.sink(lake)], days=[new_day])
    good = object_rows(lake)
    assert DAYS[0] not in good and new_day in good
    assert per_day(wh, where=f"WHERE date >= DATE '{DAYS[1]}'") == good
    with pytest.raises(duckdb.Error, match=broken.name):
        wh.rows("SELECT count(*) FROM plant")  # a scan of the corrupt day names its object


def test_a_foreign_object_only_fails_the_queries_of_its_day(lake, wh):
    copy([ParquetDaySink(lake), wh.sink(lake)])
    foreign = Path(lake.uri(layout.object_key("plant", DAYS[1])))
    pq.write_table(pa.table({"something": [1, 2, 3]}), foreign)  # valid Parquet, not this point set's columns
    expected = {d: n for d, n in object_rows(lake).items() if d != DAYS[1]}
    assert per_day(wh, where=f"WHERE date <> DATE '{DAYS[1]}'") == expected


def test_a_templated_layout_gets_canonical_columns_and_date_pruning(lake, wh):
    settings = ParquetSink(kind="parquet", key_template="sites/{yyyy}/{mm}/{dd}/{point_set}.parquet",
                           columns={"ts": "timestamp", "point": "point_name", "value": "value"},
                           timestamp_as="int64", timestamp_unit="ms")
    results = copy([ParquetDaySink(lake, settings), wh.sink(lake, parquet=settings)])
    first = Path(lake.uri("sites/2024/01/01/plant.parquet"))
    first.write_bytes(first.read_bytes()[:100])
    Path(lake.uri("sites/2024/01/02/plant_b.parquet")).write_bytes(b"not parquet")  # another point set's name
    counts = per_day(wh, where=f"WHERE date >= DATE '{DAYS[1]}'")
    assert counts == {r.day: r.samples for r in results[1:]}
    cols = [r[0] for r in wh.rows("DESCRIBE plant")]
    assert cols[:3] == ["point", "ts", "value"] and cols[-2:] == ["point_set", "date"]
    start, end = day_window(DAYS[2])
    lo, hi = wh.rows(f"SELECT min(ts), max(ts) FROM plant WHERE date = DATE '{DAYS[2]}'")[0]
    assert start <= lo and hi < end


def test_table_mode_replaces_a_day_and_a_rerun_changes_nothing(lake, wh):
    copy([ParquetDaySink(lake), wh.sink(lake, mode="table")])
    assert wh.opened == 3  # one short transaction per day, nothing else
    assert per_day(wh) == object_rows(lake)
    before = wh.rows("SELECT * FROM plant ORDER BY ALL")
    copy([ParquetDaySink(lake), wh.sink(lake, mode="table")], days=DAYS[1:2])
    assert wh.rows("SELECT * FROM plant ORDER BY ALL") == before
    lake_rows = duckdb.sql(f"SELECT * EXCLUDE (point_set) FROM read_parquet('{lake.glob('plant')}', "
                           "hive_partitioning = true) ORDER BY ALL").fetchall()
    assert before == lake_rows


def test_table_mode_replaces_only_the_points_of_a_point_group(lake, wh):
    copy([ParquetDaySink(lake), wh.sink(lake, mode="table")], days=DAYS[:1])
    names = SyntheticConnector(SOURCE).list_points()
    group = layout.group_id(names[:2])
    other = SyntheticSource(kind="synthetic", points=8, seed=6, interval_seconds=900)  # different rows
    copy([ParquetDaySink(lake), wh.sink(lake, mode="table")], days=DAYS[:1], source=other, group=group,
         points=names[:2])
    folder = layout.day_prefix("plant", DAYS[0])
    full_day = f"{lake.uri(folder)}/all.parquet"
    expected = dict(duckdb.sql(f"SELECT point, count(*) FROM '{full_day}' GROUP BY point").fetchall())
    expected |= dict(duckdb.sql(f"SELECT point, count(*) FROM '{lake.uri(layout.object_key('plant', DAYS[0], group))}' "
                                "GROUP BY point").fetchall())  # the group's new rows replace its points' rows
    assert dict(wh.rows("SELECT point, count(*) FROM plant GROUP BY point")) == expected
    assert expected[names[0]] < expected[names[2]]  # 15-minute rows for the group, 5-minute for the rest


def test_table_mode_takes_the_schema_of_its_batches(wh, tmp_path: Path):
    schema = pa.schema([("id", pa.int64()), ("name", pa.string()), ("amount", pa.decimal128(12, 2)),
                        ("tags", pa.list_(pa.string())), ("created_at", pa.timestamp("us", tz="UTC"))])
    day = dt.date(2024, 3, 1)
    rows = pa.table({
        "id": [1, 2], "name": ["a", None], "amount": pa.array([Decimal("1.50"), None], pa.decimal128(12, 2)),
        "tags": [["x"], None], "created_at": pa.array([0, 1], pa.timestamp("us", tz="UTC")),
    }, schema=schema)
    sink = wh.sink(None, mode="table", schema=schema)
    for _ in range(2):
        writer = sink.open_day(DayTarget("users", day))
        for b in rows.to_batches(max_chunksize=1):
            writer.write(b)
        writer.commit()
    assert [r[:2] for r in wh.rows("DESCRIBE users")] == [
        ("id", "BIGINT"), ("name", "VARCHAR"), ("amount", "DECIMAL(12,2)"), ("tags", "VARCHAR[]"),
        ("created_at", "TIMESTAMP WITH TIME ZONE"), ("date", "DATE")]
    assert wh.rows("SELECT id, name, tags, date FROM users ORDER BY id") == [(1, "a", ["x"], day), (2, None, None, day)]
    assert not list((tmp_path / "naia.duckdb.spool").iterdir())  # spooled days are removed


def test_switching_modes(lake, wh):
    copy([ParquetDaySink(lake), wh.sink(lake)], days=DAYS[:1])
    copy([ParquetDaySink(lake), wh.sink(lake, mode="table")], days=DAYS[:2])  # the view becomes a table
    assert wh.rows("SELECT table_name FROM duckdb_tables()") == [("plant",)]
    sink = wh.sink(lake)
    parquet = ParquetDaySink(lake)
    before = object_rows(lake)
    with pytest.raises(SinkConfigError, match="set mode: table"):
        copy([parquet, sink], days=DAYS[2:])
    assert object_rows(lake) == before  # refused before the day was written


def point_set(**overrides) -> dict:
    return {"name": "plant", "source": {"kind": "synthetic"}, "start_date": "2024-01-01"} | overrides


@pytest.mark.parametrize("sinks", [["duckdb"], [{"kind": "duckdb", "mode": "view"}, "kafka"]])
def test_a_view_without_the_lake_is_refused_at_load(sinks):
    with pytest.raises(ValueError, match="set mode: table on the duckdb sink"):
        PointSet.model_validate(point_set(sinks=sinks))


def test_a_table_needs_no_lake():
    ps = PointSet.model_validate(point_set(sinks=[{"kind": "duckdb", "mode": "table"}]))
    check_sinks(ps, "s3://bucket/prefix")
    with pytest.raises(SinkConfigError, match="add the parquet sink"):
        DuckDBViewSink(None, contextlib.nullcontext, Path("."))


def test_check_sinks_refuses_a_view_over_s3_without_credentials_or_httpfs(monkeypatch, tmp_path: Path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never ask an instance-metadata address
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    ps = PointSet.model_validate(point_set(sinks=["parquet", "duckdb"]))
    check_sinks(ps, str(tmp_path / "lake"))  # a local lake needs neither
    with pytest.raises(SinkConfigError, match="set AWS_ACCESS_KEY_ID") as err:
        check_sinks(ps, "s3://bucket/prefix")
    assert isinstance(err.value, PointSetError)  # the CLI's bad input: exit 2
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    check_sinks(ps, "s3://bucket/prefix")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda n, *a: None if n == "duckdb_extension_httpfs" else real(n, *a))
    with pytest.raises(SinkConfigError, match=r"pip install 'duckdb-extension-httpfs==\d"):
        check_sinks(ps, "s3://bucket/prefix")
    monkeypatch.setenv("NAIA_DUCKDB_PATH", str(tmp_path))
    with pytest.raises(SinkConfigError, match="is a folder"):
        check_sinks(ps, str(tmp_path / "lake"))
