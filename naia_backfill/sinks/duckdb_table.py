"""The DuckDB sink, ``mode: table``: a real table per point set that each day replaces its rows in.

The table has the columns of the batches the sink receives (the canonical sample schema for time series; a
table's own columns for sources that copy rows as they are) plus ``date``, the UTC day the rows belong to. It
is created on first use. A day's batches are spooled, as they arrive, to an lz4-compressed Arrow stream beside
the database (bounded memory, no DuckDB lock held while the source is read); on commit one transaction deletes
the day's rows and inserts the spooled ones, so re-running a day changes nothing and queries never depend on
the lake. A day of added points (a point group) replaces only those points' rows of that day.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from naia_backfill.errors import SinkError
from naia_backfill.schema import SAMPLE_SCHEMA
from naia_backfill.sinks.base import DayTarget, DayWriter, Sink, SinkResult
from naia_backfill.sinks.duckdb import Connect, relation_kind

DATE_COLUMN = "date"
#: Rows per INSERT from the spool: two DuckDB row groups, so that what DuckDB scans outside its memory limit is
#: one chunk, not the day.
INSERT_ROWS = 245_760
#: A spool file untouched for this long belongs to a writer that died.
STALE_SPOOL_SECONDS = 6 * 3600


def _chunks(reader: pa.RecordBatchReader, rows: int) -> Iterator[pa.Table]:
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in reader:
        pending.append(batch)
        count += batch.num_rows
        if count >= rows:
            yield pa.Table.from_batches(pending)
            pending, count = [], 0
    if pending:
        yield pa.Table.from_batches(pending)


class DuckDBTableSink(Sink):
    kind = "duckdb"

    def __init__(self, connect: Connect, spool: Path, schema: pa.Schema | None = None) -> None:
        self.connect, self.spool, self.schema = connect, spool, schema or SAMPLE_SCHEMA
        self._swept = False

    def spool_file(self, target: DayTarget) -> Path:
        """A new spool file for ``target``; the first one of a run sweeps what killed writers left behind."""
        self.spool.mkdir(parents=True, exist_ok=True)
        if not self._swept:
            cutoff = time.time() - STALE_SPOOL_SECONDS
            for old in self.spool.glob("*.arrows"):
                with contextlib.suppress(FileNotFoundError):
                    if old.stat().st_mtime < cutoff:
                        old.unlink()
            self._swept = True
        return self.spool / f"{target.point_set}.{target.day}.{uuid.uuid4().hex}.arrows"

    def open_day(self, target: DayTarget) -> DayWriter:
        return _TableWriter(self, target)


def _create_table(con: duckdb.DuckDBPyConnection, name: str, schema: pa.Schema) -> None:
    """The table for ``schema`` plus ``date`` (types as DuckDB maps Arrow's), unless it exists; a view of the
    same name (view mode before) is replaced."""
    kind = relation_kind(con, name)
    if kind == "table":
        return
    if kind == "view":
        con.execute(f'DROP VIEW "{name}"')
    con.register("naia_empty", schema.remove_metadata().empty_table())
    try:
        con.execute(f'CREATE TABLE "{name}" AS SELECT *, NULL::DATE AS "{DATE_COLUMN}" FROM naia_empty')
    finally:
        con.unregister("naia_empty")


class _TableWriter(DayWriter):
    def __init__(self, sink: DuckDBTableSink, target: DayTarget) -> None:
        self.sink, self.target = sink, target
        self.path: Path | None = None
        self._writer: pa.ipc.RecordBatchStreamWriter | None = None
        self.schema: pa.Schema | None = None
        self.rows = 0
        self.points: set[str] = set()

    def write(self, batch: pa.RecordBatch) -> None:
        if self._writer is None:
            if DATE_COLUMN in batch.schema.names:
                raise SinkError(f"the DuckDB table adds a {DATE_COLUMN!r} column; the rows already have one")
            self.schema = batch.schema.remove_metadata()
            self.path = self.sink.spool_file(self.target)
            options = pa.ipc.IpcWriteOptions(compression="lz4")
            self._writer = pa.ipc.new_stream(str(self.path), self.schema, options=options)
        self._writer.write_batch(batch.replace_schema_metadata(None))
        self.rows += batch.num_rows
        if self.target.group is not None and batch.num_rows:
            self.points.update(pc.unique(batch.column("point")).to_pylist())

    def commit(self) -> SinkResult:
        name, day = self.target.point_set, self.target.day
        try:
            if self._writer is not None:
                self._writer.close()
            with self.sink.connect() as con:
                con.execute("BEGIN")
                try:
                    self._replace_day(con)
                    con.execute("COMMIT")
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
        except Exception as e:
            raise SinkError(f"replacing {day} in the DuckDB table {name!r} failed: {e}") from e
        finally:
            self._remove_spool()
        return SinkResult(sink="duckdb", rows=self.rows, extra={"table": name})

    def _replace_day(self, con: duckdb.DuckDBPyConnection) -> None:
        name, day = self.target.point_set, self.target.day
        _create_table(con, name, self.schema or self.target.schema or self.sink.schema)
        if self.target.group is None:
            con.execute(f'DELETE FROM "{name}" WHERE "{DATE_COLUMN}" = $day', {"day": day})
        elif self.points:
            con.execute(f'DELETE FROM "{name}" WHERE "{DATE_COLUMN}" = $day AND point IN (SELECT unnest($points))',
                        {"day": day, "points": sorted(self.points)})
        if self.path is None:
            return
        insert = f'INSERT INTO "{name}" BY NAME SELECT *, $day::DATE AS "{DATE_COLUMN}" FROM naia_day_rows'
        with pa.OSFile(str(self.path)) as source:
            for chunk in _chunks(pa.ipc.open_stream(source), INSERT_ROWS):
                # Read through DuckDB's replacement scan of this local name: a table given to con.register stays
                # pinned until the connection closes (measured: the whole day, +450 MB for 6.6M rows).
                naia_day_rows = chunk  # noqa: F841
                con.execute(insert, {"day": day})

    def _remove_spool(self) -> None:
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:
                pass
        if self.path is not None:
            self.path.unlink(missing_ok=True)

    def abort(self) -> None:
        self._remove_spool()
