"""One measured run of `bench pg-readers`, in its own process: read one UTC day of a benchmark table with one
reader (or dlt's ``sql_database`` source) into Parquet or nowhere, and report rows, time and memory as JSON."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import pyarrow as pa
import pyarrow.parquet as pq

from naia_backfill.dev.benchmarks.pg_readers_arrow import PgColumn, arrow_schema, conform, rechunk
from naia_backfill.dev.benchmarks.pg_readers_tables import DAY, SCHEMA
from naia_backfill.dev.benchmarks.pg_readers_variants import MODULES, READERS, TableRead

ROW_GROUP_ROWS = 122_880
TS_COLUMN = {"users": "created_at", "samples": "ts"}
_CATALOG = """
SELECT a.attname, t.typname, a.atttypmod, e.typname
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type e ON e.oid = t.typelem AND t.typcategory = 'A'
WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
"""


def catalog_columns(dsn: str, schema: str, table: str) -> tuple[PgColumn, ...]:
    """The table's columns with their types as the catalog has them."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        rows = conn.execute(_CATALOG, (f'"{schema}"."{table}"',)).fetchall()
    return tuple(PgColumn(name, typname, typmod, element) for name, typname, typmod, element in rows)


def table_read(dsn: str, table: str, ts_column: str | None, batch_rows: int, hours: float = 24.0,
               options: dict[str, str] | None = None) -> TableRead:
    """A read of ``bench_pg.<table>``: the first ``hours`` of the benchmark day of ``ts_column`` (the whole day
    by default), or all rows when it is None."""
    return TableRead(dsn=dsn, schema=SCHEMA, table=table, columns=catalog_columns(dsn, SCHEMA, table),
                     ts_column=ts_column, lo=DAY, hi=DAY + dt.timedelta(hours=hours), batch_rows=batch_rows,
                     options=options or {})


class _ParquetOut:
    """Batches conformed to the proposed Arrow mapping and written to a local Parquet file in row groups."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.schema = schema
        self.writer = pq.ParquetWriter(path, schema, compression="zstd", write_statistics=True)
        self.pending: list[pa.RecordBatch] = []
        self.pending_rows = 0

    def write(self, batch: pa.RecordBatch) -> None:
        self.pending.append(conform(batch, self.schema))
        self.pending_rows += batch.num_rows
        if self.pending_rows >= ROW_GROUP_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.pending_rows:
            self.writer.write_table(pa.Table.from_batches(self.pending, self.schema), row_group_size=ROW_GROUP_ROWS)
        self.pending, self.pending_rows = [], 0

    def close(self) -> None:
        self.flush()
        self.writer.close()


def run_reader(variant: str, r: TableRead, sink: str, out: Path, cancel_after: int) -> dict[str, Any]:
    """Stream the read through ``variant`` into ``sink``; with ``cancel_after`` > 0 stop after that many
    batches and time how long the reader takes to let go (its cancellation cost)."""
    rss = psutil.Process().memory_info().rss
    writer = _ParquetOut(out / "day.parquet", arrow_schema(r.columns)) if sink == "parquet" else None
    rows = batches = largest = 0
    first = stop_at = None
    started = time.perf_counter()
    with READERS[variant](r) as stream:
        for native in stream:
            largest = max(largest, native.num_rows)
            for batch in rechunk([native], r.batch_rows):
                first = first if first is not None else time.perf_counter() - started
                rows, batches = rows + batch.num_rows, batches + 1
                if writer:
                    writer.write(batch)
                if cancel_after and batches >= cancel_after:
                    stop_at = time.perf_counter()
                    break
            if stop_at:
                break
    stop_s = time.perf_counter() - stop_at if stop_at else None
    if writer:
        writer.close()
    seconds = time.perf_counter() - started
    busy = server_busy_seconds(r.dsn, r.table) if stop_at else None
    return {"rows": rows, "batches": batches, "largest_batch": largest, "first_batch_s": first,
            "seconds": seconds, "stop_s": stop_s, "server_busy_s": busy, "baseline_rss": rss}


def server_busy_seconds(dsn: str, table: str, limit: float = 60.0) -> float:
    """Seconds until no other backend still runs a statement on ``table`` (after the reader let go): a reader
    that only closes its socket leaves the server working until it notices."""
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.perf_counter() - started < limit:
            busy = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND pid <> "
                                "pg_backend_pid() AND query LIKE %s", (f"%{table}%",)).fetchone()[0]
            if not busy:
                break
            time.sleep(0.02)
    return time.perf_counter() - started


def run_dlt(r: TableRead, out: Path) -> dict[str, Any]:
    """dlt's ``sql_table`` (pyarrow backend, SQLAlchemy + psycopg2, ``chunk_size`` rows) into Parquet files of a
    local ``filesystem`` destination: extract, normalize and load, as ``pipeline.run`` does them."""
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    import dlt
    from dlt.sources.sql_database import sql_table

    rss = psutil.Process().memory_info().rss
    ts = r.ts_column

    def day_only(query, table):  # noqa: ANN001, ANN202 - dlt's SQLAlchemy callback; values are bound by SQLAlchemy
        return query.where(table.c[ts] >= r.lo).where(table.c[ts] < r.hi) if ts else query

    started = time.perf_counter()
    source = sql_table(credentials=r.dsn, schema=r.schema, table=r.table, backend="pyarrow",
                       chunk_size=r.batch_rows, query_adapter_callback=day_only,
                       reflection_level="full_with_precision")
    pipeline = dlt.pipeline(pipeline_name="naia_bench_pg", pipelines_dir=str(out / "pipelines"),
                            destination=dlt.destinations.filesystem(bucket_url=(out / "lake").as_uri()),
                            dataset_name="bench")
    pipeline.run(source, loader_file_format="parquet")
    rows = pipeline.last_trace.last_normalize_info.row_counts.get(r.table, 0)
    return {"rows": rows, "batches": None, "largest_batch": None, "first_batch_s": None,
            "seconds": time.perf_counter() - started, "stop_s": None, "server_busy_s": None, "baseline_rss": rss}


def child_main(variant: str, dsn: str, table: str, shape: str, batch_rows: int, sink: str, cancel_after: int,
               hours: float, options: dict[str, str]) -> None:
    """Entry of the child process: print one JSON line with the run's figures."""
    r = table_read(dsn, table, TS_COLUMN[shape], batch_rows, hours, options)
    # pyarrow imports pandas on its first tz-aware datetime conversion (~1 s here): pay it before the clock starts
    pa.array([dt.datetime.now(dt.UTC)], pa.timestamp("us", tz="UTC"))
    importlib.import_module(MODULES[variant])  # the clock and the baseline start with the reader's code loaded
    with tempfile.TemporaryDirectory(prefix="naia-bench-pg-") as tmp:
        if variant == "dlt":
            result = run_dlt(r, Path(tmp))
        else:
            result = run_reader(variant, r, sink, Path(tmp), cancel_after)
        result["output_bytes"] = sum(p.stat().st_size for p in Path(tmp).rglob("*.parquet"))
    print(json.dumps(result))
