"""The DuckDB sink: one view per point set over its Parquet objects in the lake.

A view (not a table) keeps one copy of the data: the lake stays the single source of truth, a re-run day
is visible the moment its object is replaced, and nothing has to be deleted and re-inserted. The view is
(re)created when a day commits and its definition changed; DuckDB reads only the days a query touches,
thanks to the ``date=`` hive partitions.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pyarrow as pa

from naia_backfill.errors import SinkError
from naia_backfill.sinks.base import DayTarget, DayWriter, Sink, SinkResult
from naia_backfill.sinks.lake import Lake, LocalLake

Connect = Callable[[], AbstractContextManager[Any]]


def _literal(text: str) -> str:
    if "\x00" in text:
        raise SinkError("lake path contains a NUL character")
    return "'" + text.replace("'", "''") + "'"


def view_sql(lake: Lake, point_set: str) -> str:
    """DDL of the view; the name is a validated identifier and the path a quoted literal (DDL takes no parameters)."""
    glob = _literal(lake.glob(point_set))
    return (
        f'CREATE OR REPLACE VIEW "{point_set}" AS '
        f"SELECT * FROM read_parquet({glob}, hive_partitioning = true, union_by_name = true)"
    )


class DuckDBViewSink(Sink):
    kind = "duckdb"

    def __init__(self, lake: Lake, connect: Connect) -> None:
        self.lake, self.connect = lake, connect

    def open_day(self, target: DayTarget) -> DayWriter:
        return _ViewWriter(self, target)

    def ensure_view(self, point_set: str) -> str:
        if not isinstance(self.lake, LocalLake):
            raise SinkError("the duckdb sink needs a local lake (NAIA_LAKE_URL is an s3:// URL); query S3 with httpfs instead")
        sql = view_sql(self.lake, point_set)
        try:
            with self.connect() as conn:
                row = conn.execute(
                    "SELECT sql FROM duckdb_views() WHERE view_name = ? AND schema_name = 'main'", [point_set]
                ).fetchone()
                if row is None or _literal(self.lake.glob(point_set)) not in row[0]:
                    conn.execute(sql)
        except SinkError:
            raise
        except Exception as e:
            raise SinkError(f"creating the DuckDB view {point_set!r} failed: {e}") from e
        return point_set


class _ViewWriter(DayWriter):
    def __init__(self, sink: DuckDBViewSink, target: DayTarget) -> None:
        self.sink, self.target = sink, target

    def write(self, batch: pa.RecordBatch) -> None:
        pass

    def commit(self) -> SinkResult:
        view = self.sink.ensure_view(self.target.point_set)
        return SinkResult(sink="duckdb", extra={"view": view})

    def abort(self) -> None:
        pass
