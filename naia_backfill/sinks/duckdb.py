"""The DuckDB sink: a relation per point set, named after it, in the warehouse file ($NAIA_DUCKDB_PATH).

View mode (the default) keeps one copy of the data: the lake stays the single source of truth, a re-run day
is visible the moment its object is replaced, and queries read only the days they filter on. The view never
reads the lake's objects when it is created or bound (see :mod:`naia_backfill.sinks.duckdb_view`), so one
corrupt or foreign object cannot block other days. ``mode: table`` (:mod:`naia_backfill.sinks.duckdb_table`)
copies the rows into a real table instead. Over an ``s3://`` lake the connection loads httpfs and an S3 secret
from the environment (:mod:`naia_backfill.sinks.duckdb_conn`).

The database is opened briefly, never for a whole run (other runs and readers would be locked out): in view
mode once when the run's first day opens (checks that DuckDB can list the lake and that the name is free, before
anything is written) and once more only when the view's definition changed, which then is replaced.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from naia_backfill.errors import SinkConfigError, SinkError
from naia_backfill.sinks import duckdb_conn
from naia_backfill.sinks.base import DayTarget, DayWriter, Sink, SinkResult
from naia_backfill.sinks.duckdb_view import ViewDefinition
from naia_backfill.sinks.lake import Lake
from naia_backfill.sinks.layout import Layout

Connect = Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]
#: Settings of the sink's connections: the cap and one thread keep a day's insert (mode: table) small beside the
#: copy (measured for 6.6M rows: +185 MB; +280 MB with two threads); DuckDB spills to ``<database>.tmp`` beyond it.
CONNECTION_CONFIG: dict[str, object] = {"memory_limit": "256MB", "threads": 1}


def beside(database: str, suffix: str) -> Path:
    """A folder beside the database file: ``<database><suffix>`` (schema anchors, spooled days)."""
    if database in ("", ":memory:"):
        return Path(tempfile.gettempdir()) / f"naia-duckdb-{os.getpid()}{suffix}"
    path = Path(database).expanduser().resolve()
    return path.with_name(path.name + suffix)


def relation_kind(con: duckdb.DuckDBPyConnection, name: str) -> str | None:
    """'view', 'table' or None: what ``name`` is in the main schema."""
    row = con.execute(
        "SELECT 'view' FROM duckdb_views() WHERE view_name = $n AND schema_name = 'main' AND NOT internal "
        "UNION ALL SELECT 'table' FROM duckdb_tables() WHERE table_name = $n AND schema_name = 'main'",
        {"n": name},
    ).fetchone()
    return row[0] if row else None


class DuckDBViewSink(Sink):
    """Keeps the point set's view current; writes no data (the Parquet sink does). ``parquet`` is the point
    set's Parquet sink settings (its layout and columns; default: hive layout, canonical columns)."""

    kind = "duckdb"

    def __init__(self, lake: Lake | None, connect: Connect, anchors: Path, parquet: Any = None) -> None:
        if lake is None:
            raise SinkConfigError("the duckdb sink in view mode queries the Parquet lake: add the parquet sink too")
        self.lake, self.connect, self.anchors, self.parquet = lake, connect, anchors, parquet
        self._current: dict[str, str] = {}  # point set -> digest of its view, known current in this run
        self._checked: set[str] = set()

    def definition(self, point_set: str, batches: pa.Schema | None = None) -> ViewDefinition:
        return ViewDefinition(self.lake, self.anchors, point_set, self.parquet, batches)

    def open_day(self, target: DayTarget) -> DayWriter:
        if target.point_set not in self._checked:
            self._preflight(target.point_set)
            self._checked.add(target.point_set)
        return _ViewWriter(self, target)

    def _preflight(self, point_set: str) -> None:
        """Before the run's first day is written: DuckDB can list the lake, the name is free or our view."""
        definition = self.definition(point_set)
        layout = Layout(point_set, getattr(self.parquet, "key_template", None))
        # A pattern matching nothing: one LIST request that proves DuckDB's endpoint and credentials.
        probe = self.lake.uri(f"{layout.listing_prefix()}/.naia-probe*".lstrip("/"))
        try:
            with self.connect() as con:
                duckdb_conn.prepare(con, self.lake)
                duckdb_conn.check_lake_access(con, self.lake, probe)
                if relation_kind(con, point_set) == "table":
                    raise SinkConfigError(
                        f"the DuckDB database already has a table {point_set!r} (written by mode: table): set "
                        f"mode: table on the duckdb sink, or drop the table (DROP TABLE {point_set}) to use a view"
                    )
                if not definition.is_current(con):
                    # Replace it now if the lake has objects, so that a definition DuckDB refuses fails the run
                    # before its first day is written; over an empty lake, prove what can be proven.
                    if definition.has_objects(con):
                        definition.create(con)
                    else:
                        definition.dry_run(con)
                        return
                self._current[point_set] = definition.digest
        except (SinkConfigError, SinkError):
            raise
        except Exception as e:
            raise SinkError(f"opening the DuckDB database for the view {point_set!r} failed: {e}") from e

    def ensure_view(self, point_set: str, batches: pa.Schema | None = None) -> str:
        """Create or replace the view unless it is already current in this run."""
        definition = self.definition(point_set, batches)
        if self._current.get(point_set) == definition.digest:
            return point_set
        try:
            with self.connect() as con:
                duckdb_conn.prepare(con, self.lake)
                if not definition.is_current(con):
                    definition.create(con)
        except Exception as e:
            raise SinkError(f"creating the DuckDB view {point_set!r} failed: {e}") from e
        self._current[point_set] = definition.digest
        return point_set


class _ViewWriter(DayWriter):
    def __init__(self, sink: DuckDBViewSink, target: DayTarget) -> None:
        self.sink, self.target = sink, target
        self.schema: pa.Schema | None = None

    def write(self, batch: pa.RecordBatch) -> None:
        if self.schema is None:
            self.schema = batch.schema

    def commit(self) -> SinkResult:
        view = self.sink.ensure_view(self.target.point_set, self.schema or self.target.schema)
        return SinkResult(sink="duckdb", extra={"view": view})

    def abort(self) -> None:
        pass


def build(settings: Any, lake: Lake | None, connect: Connect, database: str, parquet: Any = None,
          schema: pa.Schema | None = None) -> Sink:
    """The sink for a point set's ``duckdb`` entry: a view (default) or a table (``mode: table``).
    ``parquet``: the point set's Parquet sink settings; ``schema``: its rows' schema when not canonical."""
    if getattr(settings, "mode", "view") == "table":
        from naia_backfill.sinks.duckdb_table import DuckDBTableSink

        return DuckDBTableSink(connect, beside(database, ".spool"), schema)
    return DuckDBViewSink(lake, connect, beside(database, ".views"), parquet)
