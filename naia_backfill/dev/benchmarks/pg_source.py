"""Benchmark: the PostgreSQL source's real path, one UTC day of a table into a local Parquet lake.

Three paths, alternating in the same run, each in a process of its own (its peak RSS is its own):

- ``naia``: :class:`~naia_backfill.connectors.postgres.PostgresConnector` and the Parquet lake sink through
  :func:`~naia_backfill.core.daycopy.copy_day`, as a point set's asset copies a day (``shape: rows`` for the
  ``users`` table, ``shape: samples`` with point, value and quality columns for ``samples``);
- ``limit``: the same ADBC COPY reader running the same query, its batches discarded;
- ``dlt``: dlt's ``sql_database`` source (pyarrow backend) into Parquet files, the same day (once per table:
  it is the slow one; skipped with a note when dlt is not installed).

naia and the limit copy the day twice in their process and time the second copy (a day of a running backfill,
whose process copies up to ``chunk_days`` days); dlt first copies the day before (a few edge rows).

Tables ``bench_pg.users_<rows>`` and ``bench_pg.samples_<rows>`` are generated server-side when missing
(:mod:`naia_backfill.dev.benchmarks.pg_readers_tables`). Needs NAIA_PG_DSN (``source .services/env``).

    naia-backfill bench pg-source [--shape users --shape samples] [--rows 1000000 --rows 10000000] [--repeat 3]
        [--batch-rows 10000] [--dlt/--no-dlt] [--json PATH]
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.util
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from naia_backfill.dev.benchmarks import pg_readers_tables as tables

PATHS = ("naia", "limit", "dlt")
TS_COLUMN = {"users": "created_at", "samples": "ts"}


def source_settings(shape: str, table: str, batch_rows: int) -> Any:
    """The point set source a user would write for the benchmark table."""
    from naia_backfill.settings.sources import PostgresSource

    doc: dict[str, Any] = {"kind": "postgres", "dsn_env": "NAIA_PG_DSN", "table": table,
                           "timestamp_column": TS_COLUMN[shape], "batch_rows": batch_rows}
    if shape == "users":
        doc |= {"shape": "rows", "key_columns": ["id"]}
    else:
        doc |= {"shape": "samples", "point_column": "point", "value_column": "value", "quality_column": "quality",
                "good_quality": [192]}
    return PostgresSource.model_validate(doc)


def _rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _naia(source: Any, points: list[str], out: Path) -> tuple[int, int]:
    from naia_backfill.core.daycopy import copy_day  # imported before the clock starts (see child)
    from naia_backfill.sinks.base import DayTarget
    from naia_backfill.sinks.lake import LocalLake
    from naia_backfill.sinks.parquet import ParquetDaySink

    result = copy_day(source, points, [ParquetDaySink(LocalLake(str(out / "lake")))], DayTarget("bench", tables.DAY.date()))
    return result.samples, result.bytes


def _limit(source: Any, points: list[str], out: Path) -> tuple[int, int]:
    from naia_backfill.connectors.postgres_plan import day_query

    rows = 0
    query = day_query(source.settings, source.table(), None)
    for native in source._stream(query, tables.DAY, tables.DAY + dt.timedelta(days=1)):  # the connector's own reader
        rows += native.num_rows
    return rows, 0


def child(path: str, shape: str, rows: int, batch_rows: int) -> dict[str, Any]:
    """One measured run in this process: the figures of ``path`` over the benchmark day."""
    dsn = os.environ["NAIA_PG_DSN"]
    table = f"{tables.SCHEMA}.{tables.table_name(shape, rows)}"  # type: ignore[arg-type]
    import pyarrow as pa

    pa.array([dt.datetime.now(dt.UTC)], pa.timestamp("us", tz="UTC"))  # pyarrow's lazy pandas import, before the clock
    with tempfile.TemporaryDirectory(prefix="naia-bench-pg-source-") as tmp:
        out = Path(tmp)
        if path == "dlt":
            from naia_backfill.dev.benchmarks.pg_readers_child import run_dlt, table_read

            read = table_read(dsn, tables.table_name(shape, rows), TS_COLUMN[shape], batch_rows)  # type: ignore[arg-type]
            importlib.import_module("dlt")
            run_dlt(dataclasses.replace(read, lo=read.lo - dt.timedelta(days=1), hi=read.lo), out / "warm-up")
            baseline = _rss_mb()
            result = run_dlt(read, out / "day")
            copied, seconds = result["rows"], result["seconds"]
            written = sum(p.stat().st_size for p in (out / "day").rglob("*.parquet"))
        else:
            from naia_backfill.connectors.postgres import PostgresConnector

            for module in ("naia_backfill.core.daycopy", "naia_backfill.sinks.lake", "naia_backfill.sinks.parquet"):
                importlib.import_module(module)  # both paths start the clock with the same code loaded
            source = PostgresConnector(source_settings(shape, table, batch_rows), dsn)
            points = source.list_points()  # once per run in a real backfill, not per day: before the clock
            copy = _naia if path == "naia" else _limit
            baseline = _rss_mb()
            # A run copies up to chunk_days days in one process: the day is copied once before the timed copy, so
            # that the figures are those of a day in a running backfill, not of a fresh process's first one.
            copy(source, points, out / "warm-up")
            started = time.perf_counter()
            copied, written = copy(source, points, out)
            seconds = time.perf_counter() - started
    return {"path": path, "shape": shape, "rows_asked": rows, "rows": copied, "seconds": seconds,
            "bytes": written, "baseline_mb": baseline, "peak_mb": _peak_mb()}


def _run(path: str, shape: str, rows: int, batch_rows: int, dsn: str) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "naia_backfill.dev.benchmarks.pg_source", "--child", path, "--shape", shape,
           "--rows", str(rows), "--batch-rows", str(batch_rows)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, env={**os.environ, "NAIA_PG_DSN": dsn})
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return {"path": path, "shape": shape, "rows_asked": rows, "error": last[:200]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _median(runs: list[dict[str, Any]]) -> float | None:
    rates = [r["rows"] / r["seconds"] for r in runs if "error" not in r]
    return statistics.median(rates) if rates else None


def _ratio(rate: dict[str, float | None], path: str, other: str) -> str:
    mine, theirs = rate[path], rate[other]
    return f"{mine / theirs:.2f}" if mine and theirs and path != other else "-"


def _paired(mine: dict[str, list[dict[str, Any]]]) -> str:
    """The median over repeats of naia's rate over the limit's in the same repeat (runs side by side see about
    the same load: steadier than the ratio of medians on a shared machine)."""
    limit = {r["repeat"]: r["rows"] / r["seconds"] for r in mine["limit"] if "error" not in r}
    ratios = [r["rows"] / r["seconds"] / limit[r["repeat"]] for r in mine["naia"] if "error" not in r and r["repeat"] in limit]
    return f"{statistics.median(ratios):.2f}" if ratios else "-"


def _render(console: Console, runs: list[dict[str, Any]]) -> None:
    table = Table("shape", "rows", "path", "runs", "rows/s (median)", "vs limit", "vs limit, paired", "vs dlt",
                  "s (median)", "peak RSS MB", "over baseline MB", "Parquet MB", title="PostgreSQL day -> Parquet")
    for shape, rows in dict.fromkeys((r["shape"], r["rows_asked"]) for r in runs):
        mine = {p: [r for r in runs if (r["shape"], r["rows_asked"], r["path"]) == (shape, rows, p)] for p in PATHS}
        rate = {p: _median(mine[p]) for p in PATHS}
        for path in PATHS:
            ok = [r for r in mine[path] if "error" not in r]
            if not mine[path]:
                continue
            if not ok:
                table.add_row(shape, f"{rows:,}", path, str(len(mine[path])), mine[path][0]["error"])
                continue
            mid = sorted(ok, key=lambda r: r["rows"] / r["seconds"])[len(ok) // 2]
            table.add_row(shape, f"{mid['rows']:,}", path, str(len(ok)), f"{rate[path]:,.0f}",
                          _ratio(rate, path, "limit"), _paired(mine) if path == "naia" else "-",
                          _ratio(rate, path, "dlt"), f"{mid['seconds']:.2f}",
                          f"{max(r['peak_mb'] for r in ok):,.0f}",
                          f"{max(0.0, *(r['peak_mb'] - r['baseline_mb'] for r in ok)):,.0f}",
                          f"{mid['bytes'] / 2**20:,.1f}" if mid["bytes"] else "-")
        table.add_section()
    console.print(table)


@click.command("pg-source", help=__doc__.split("\n\n")[0])
@click.option("--shape", "shapes", multiple=True, type=click.Choice(["users", "samples"]),
              default=("users", "samples"), show_default=True)
@click.option("--rows", "sizes", multiple=True, type=click.IntRange(1), default=(1_000_000,), show_default=True,
              help="rows in the benchmark day (repeat for several sizes: memory should stay flat)")
@click.option("--repeat", type=click.IntRange(1), default=1, show_default=True,
              help="alternating runs of naia and the limit (medians); dlt runs once")
@click.option("--batch-rows", type=click.IntRange(1), default=10_000, show_default=True)
@click.option("--dlt/--no-dlt", "with_dlt", default=True, show_default=True, help="also run dlt's sql_database")
@click.option("--setup", is_flag=True, help="drop and rebuild the benchmark tables first")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="also write every run's figures here")
@click.option("--dsn", envvar="NAIA_PG_DSN", required=True, help="PostgreSQL DSN [env NAIA_PG_DSN]")
@click.option("--child", "child_path", hidden=True, type=click.Choice(PATHS))
def pg_source(shapes: tuple[str, ...], sizes: tuple[int, ...], repeat: int, batch_rows: int, with_dlt: bool,
              setup: bool, json_path: str | None, dsn: str, child_path: str | None) -> None:
    if child_path:
        print(json.dumps(child(child_path, shapes[0], sizes[0], batch_rows)))
        return
    console = Console(width=max(Console().width, 160))
    given = sys.argv[sys.argv.index("pg-source") + 1:] if "pg-source" in sys.argv else sys.argv[1:]
    console.print(f"[bold]naia-backfill bench pg-source {shlex.join(given)}[/]", highlight=False)
    dlt_note = None
    if with_dlt and importlib.util.find_spec("dlt") is None:
        with_dlt, dlt_note = False, "dlt is not installed (pip install 'dlt[sql_database,parquet]'): its row is skipped"
    with tables.connect(dsn) as conn:
        for shape in shapes:
            for rows in sizes:
                tables.ensure_day_table(conn, shape, rows, rebuild=setup)  # type: ignore[arg-type]
    runs: list[dict[str, Any]] = []
    for shape in shapes:
        for rows in sizes:
            console.print(f"{shape} {rows:,} rows: load average {os.getloadavg()[0]:.2f}")
            for i in range(repeat):
                for path in ("naia", "limit") + (("dlt",) if with_dlt and i == 0 else ()):
                    runs.append({**_run(path, shape, rows, batch_rows, dsn), "repeat": i})
                    r = runs[-1]
                    console.print(f"  {path}: " + (r["error"] if "error" in r else
                                  f"{r['rows']:,} rows in {r['seconds']:.2f} s ({r['rows'] / r['seconds']:,.0f} rows/s), "
                                  f"peak RSS {r['peak_mb']:,.0f} MB (+{r['peak_mb'] - r['baseline_mb']:,.0f})"),
                                  highlight=False)
    _render(console, runs)
    console.print(f"load average now {os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs. 'over baseline': peak RSS minus "
                  "the process's RSS after imports and the catalog lookup; naia and the limit: rows/s of the second copy "
                  "of the day in their process (a day of a running backfill), dlt: of its copy after one of the day "
                  "before (the table's few edge rows); the points listing of shape samples happens once per run, "
                  "before the clock.", highlight=False)
    if dlt_note:
        console.print(f"note: {dlt_note}", highlight=False)
    if json_path:
        Path(json_path).write_text(json.dumps({"command": sys.argv[1:], "runs": runs}, indent=1), encoding="utf-8")


command = pg_source  # what `naia-backfill bench` mounts (dev/benchmarks/cli.py BENCHMARKS)

if __name__ == "__main__":
    pg_source()
