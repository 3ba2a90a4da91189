"""copy_day for a source that copies a table's own rows (the PostgreSQL source's ``shape: rows``): the sinks
open with the source's schema (also for a day without rows), batches that drift from it are refused, and a day
interrupted mid-way (a cancelled run, a failing sink) leaves no object, no table rows and no open source."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from naia_backfill.connectors.base import Source
from naia_backfill.core.daycopy import copy_day
from naia_backfill.settings import DuckDBSink
from naia_backfill.sinks.base import DayTarget
from naia_backfill.sinks.duckdb import build
from naia_backfill.sinks.lake import lake_from_url
from naia_backfill.sinks.parquet import ParquetDaySink

DAY = dt.date(2024, 1, 1)
SCHEMA = pa.schema([("id", pa.int64()), ("email", pa.string()), ("score", pa.decimal128(12, 4)),
                    ("created_at", pa.timestamp("us", tz="UTC")), ("tags", pa.list_(pa.string()))])


class Rows(Source):
    """A table of ``batches`` x 3 users; ``interrupt_after`` raises KeyboardInterrupt (what a cancelled run
    raises) inside the source after that many batches."""

    description = "rows"

    def __init__(self, batches: int = 4, interrupt_after: int | None = None, drift: bool = False) -> None:
        self.batches, self.interrupt_after, self.drift = batches, interrupt_after, drift
        self.yielded = 0
        self.closed = False

    def list_points(self, name_filter: str = "*") -> list[str]:
        return ["public.users"]

    def schema(self) -> pa.Schema:
        return SCHEMA

    def fetch(self, points, start, end) -> Iterator[pa.RecordBatch]:
        try:
            for b in range(self.batches):
                if self.interrupt_after is not None and b == self.interrupt_after:
                    raise KeyboardInterrupt
                ids = [3 * b + i for i in range(3)]
                batch = pa.RecordBatch.from_pydict({
                    "id": ids, "email": [f"u{i}@x" if i % 2 else None for i in ids],
                    "score": [Decimal(i) / 4 for i in ids], "created_at": [start + dt.timedelta(minutes=i) for i in ids],
                    "tags": [["a"], None, []]}, schema=SCHEMA)
                self.yielded += 1
                yield batch.drop_columns(["tags"]) if self.drift else batch
        finally:
            self.closed = True


@contextlib.contextmanager
def open_db(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(str(path))
    try:
        yield con
    finally:
        con.close()


@pytest.fixture
def sinks(tmp_path: Path):
    lake = lake_from_url(str(tmp_path / "lake"))
    database = tmp_path / "naia.duckdb"
    table = build(DuckDBSink(kind="duckdb", mode="table"), lake, lambda: open_db(database), str(database))
    return lake, database, [ParquetDaySink(lake), table]


def lake_files(lake) -> list[str]:
    root = Path(lake.url)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_rows_land_with_their_own_schema_in_the_lake_and_the_table(sinks):
    lake, database, writers = sinks
    result = copy_day(Rows(), ["public.users"], writers, DayTarget("users", DAY))
    assert result.samples == 12
    written = pq.read_table(lake.uri("point_set=users/date=2024-01-01/all.parquet"))
    assert written.schema.remove_metadata() == SCHEMA
    assert written.column("score").to_pylist()[5] == Decimal("1.25")
    with open_db(database) as con:
        assert con.execute("SELECT count(*), count(email), min(date) FROM users").fetchone() == (12, 6, DAY)
        assert [r[1] for r in con.execute("DESCRIBE users").fetchall()] == [
            "BIGINT", "VARCHAR", "DECIMAL(12,4)", "TIMESTAMP WITH TIME ZONE", "VARCHAR[]", "DATE"]


def test_a_day_without_rows_still_has_the_table_schema(sinks):
    lake, database, writers = sinks
    copy_day(Rows(batches=0), ["public.users"], writers, DayTarget("users", DAY))
    assert pq.read_table(lake.uri("point_set=users/date=2024-01-01/all.parquet")).schema.remove_metadata() == SCHEMA
    with open_db(database) as con:
        assert "score" in [r[0] for r in con.execute("DESCRIBE users").fetchall()]


def test_a_batch_that_drifts_from_the_declared_schema_fails_the_day(sinks):
    lake, _, writers = sinks
    source = Rows(drift=True)
    with pytest.raises(ValueError, match="declared"):
        copy_day(source, ["public.users"], writers, DayTarget("users", DAY))
    assert source.closed and lake_files(lake) == []


def test_a_day_cancelled_mid_way_leaves_nothing_and_closes_the_source(sinks, tmp_path: Path):
    lake, database, writers = sinks
    copy_day(Rows(), ["public.users"], writers, DayTarget("users", DAY - dt.timedelta(days=1)))  # an earlier day
    before = lake_files(lake)
    source = Rows(batches=10, interrupt_after=3)
    with pytest.raises(KeyboardInterrupt):
        copy_day(source, ["public.users"], writers, DayTarget("users", DAY))
    assert source.yielded == 3 and source.closed
    assert lake_files(lake) == before  # no object of the day, no temporary file
    with open_db(database) as con:
        assert con.execute("SELECT count(*) FROM users WHERE date = ?", [DAY]).fetchone() == (0,)
    assert list((tmp_path / "naia.duckdb.spool").glob("*")) == []


def test_a_sink_failing_mid_day_stops_the_source_at_once(sinks):
    lake, _, writers = sinks

    class Breaking(ParquetDaySink):
        def open_day(self, target):
            writer = super().open_day(target)
            original = writer.write

            def write(batch):
                if source.yielded == 2:
                    raise OSError("disk full")
                original(batch)

            writer.write = write
            return writer

    source = Rows(batches=10)
    with pytest.raises(OSError):
        copy_day(source, ["public.users"], [Breaking(lake), writers[1]], DayTarget("users", DAY))
    assert source.yielded == 2 and source.closed  # closed by copy_day, not whenever the generator is collected
    assert lake_files(lake) == []
