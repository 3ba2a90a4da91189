"""Benchmark: ways to read one UTC day of a PostgreSQL table into Arrow record batches of ~10,000 rows.

Readers: the ADBC PostgreSQL driver (binary COPY with the day bounds in bound session settings, and with bound
$1/$2 parameters), psycopg 3 binary COPY and server-side cursor, DuckDB's postgres scanner, connectorx
(streamed and whole), and dlt's ``sql_database`` source as the peer. Each run is its own process; its RSS is
sampled with psutil every 20 ms. Tables (``bench_pg.users_<rows>``, ``bench_pg.samples_<rows>``) are created
server-side when missing.

    naia-backfill bench pg-readers [--shape users --shape samples] [--rows 1000000 --rows 10000000]
        [--variant adbc-copy ...] [--sink parquet|discard] [--repeat 3] [--cancel-after 3] [--types]

Needs NAIA_PG_DSN (``source .services/env``).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import click
import psutil
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from naia_backfill.dev.benchmarks import pg_readers_tables as tables
from naia_backfill.dev.benchmarks.pg_readers_arrow import summarise
from naia_backfill.dev.benchmarks.pg_readers_variants import READERS

VARIANTS = (*READERS, "dlt")
DEFAULT_VARIANTS = ("adbc-copy", "adbc-bound", "psycopg-copy", "psycopg-cursor", "duckdb", "connectorx-stream",
                    "connectorx-table", "dlt")
PARAMS = {"adbc-copy": "bound settings", "adbc-bound": "bound $1/$2", "psycopg-copy": "bound settings",
          "psycopg-cursor": "bound %s", "duckdb": "duckdb ? (literal to PG)", "connectorx-stream": "literal only",
          "connectorx-table": "literal only", "dlt": "bound (SQLAlchemy)"}


@dataclass
class Run:
    """One child process's figures, plus its sampled memory."""

    shape: str
    rows_asked: int
    variant: str
    sink: str
    result: dict[str, Any]
    peak_rss: float
    cpu_seconds: float
    error: str | None = None


def _watch(cmd: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float, float]:
    """Run ``cmd``; return it, the peak RSS (bytes) of it and its children sampled every 20 ms, and their CPU
    seconds (user + system; on a loaded machine a steadier figure than the wall-clock rate)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = psutil.Popen(cmd, stdout=out, stderr=err, env=env)
        peak = cpu = 0.0
        while proc.poll() is None:
            try:
                procs = [proc, *proc.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in procs))
                cpu = max(cpu, sum(sum(p.cpu_times()[:4]) for p in procs))
            except psutil.Error:
                pass
            time.sleep(0.02)
        out.seek(0)
        err.seek(0)
        done = subprocess.CompletedProcess(cmd, proc.returncode, out.read().decode(), err.read().decode())
    return done, peak, cpu


def _run(variant: str, shape: str, rows: int, sink: str, opts: dict[str, Any]) -> Run:
    table = tables.table_name(shape, rows)
    cmd = [sys.executable, "-m", "naia_backfill.dev.benchmarks.pg_readers", "--child", variant, "--shape", shape,
           "--rows", str(rows), "--sink", sink, "--batch-rows", str(opts["batch_rows"]),
           "--cancel-after", str(opts.get("cancel_after", 0)), "--hours", str(opts["hours"]),
           *(["--adbc-batch-bytes", str(opts["adbc_batch_bytes"])] if opts["adbc_batch_bytes"] else [])]
    done, peak, cpu = _watch(cmd, {**os.environ, "NAIA_PG_DSN": opts["dsn"], "NAIA_BENCH_TABLE": table})
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return Run(shape, rows, variant, sink, {}, peak, cpu, last[:160])
    return Run(shape, rows, variant, sink, json.loads(done.stdout.strip().splitlines()[-1]), peak, cpu)


def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value / 2**20:,.0f}"


def _render(console: Console, runs: list[Run], stops: dict[tuple, Any]) -> None:
    """One table: per (shape, rows, variant, sink) the median over repeats; ratio to the best of its group."""
    groups: dict[tuple, list[Run]] = {}
    for run in runs:
        groups.setdefault((run.shape, run.rows_asked, run.variant, run.sink), []).append(run)
    rates = {k: [r.result["rows"] / r.result["seconds"] for r in v if not r.error] for k, v in groups.items()}
    table = Table("shape", "rows", "variant", "sink", "params", "rows/s", "ratio", "s", "client CPU s", "1st batch s",
                  "driver batch", "peak RSS MB", "over base MB", "stop s / server s", title="PostgreSQL day readers")
    for shape, rows in dict.fromkeys((k[0], k[1]) for k in groups):
        keys = [k for k in groups if k[:2] == (shape, rows)]
        summary = summarise({k: rates[k] for k in keys if rates[k]})
        for key in keys:
            table.add_row(*_row(key, groups[key], summary.get(key), stops.get(key)))
        table.add_section()
    console.print(table)


def _row(key: tuple, runs: list[Run], summary: tuple[float, float] | None, stop: Any) -> list[str]:
    """The cells of one (shape, rows, variant, sink): the median run's figures, the highest peak RSS."""
    shape, rows, variant, sink = key
    ok = [r for r in runs if not r.error]
    if not ok or summary is None:
        return [shape, f"{rows:,}", variant, sink, PARAMS[variant], f"[red]{escape(runs[0].error or '')}[/]"]
    mid = sorted(ok, key=lambda r: r.result["rows"] / r.result["seconds"])[len(ok) // 2]
    res = mid.result
    peak = max(r.peak_rss for r in ok)
    first, largest = res["first_batch_s"], res["largest_batch"]
    return [shape, f"{res['rows']:,}", variant, sink, PARAMS[variant], f"{summary[0]:,.0f}", f"{summary[1]:.2f}",
            f"{res['seconds']:.2f}", f"{mid.cpu_seconds:.1f}", "-" if first is None else f"{first:.2f}",
            "-" if largest is None else f"{largest:,}", _mb(peak), _mb(peak - res["baseline_rss"]), _stop(stop)]


def _stop(value: tuple[float | None, float | None] | str | None) -> str:
    if value is None or isinstance(value, str):
        return value or "-"
    return " / ".join("-" if v is None else f"{v:.3f}" for v in value)


def _measure_all(console: Console, shapes: Sequence[str], sizes: Sequence[int], variants: Sequence[str], sink: str,
                 repeat: int, cancel_after: int, limit: str, opts: dict[str, Any]) -> tuple[list[Run], dict]:
    """Every (shape, size, variant) ``repeat`` times (dlt once), the limit, and the stop timings."""
    runs: list[Run] = []
    stops: dict[tuple, Any] = {}
    for shape in shapes:
        for rows in sizes:
            load = os.getloadavg()
            console.print(f"{shape} {rows:,} rows: load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
            for i in range(repeat):
                once = [v for v in variants if v != "dlt" or i == 0]  # dlt is 10x slower: one run of it
                plan = [(v, "parquet" if v == "dlt" else sink) for v in once]
                for v, to in plan + ([(limit, "discard")] if sink != "discard" else []):
                    runs.append(_run(v, shape, rows, to, opts))
                    _progress(console, runs[-1])
            if cancel_after:
                measured = _measure_stops(variants, shape, rows, opts, cancel_after)
                stops.update({(shape, rows, v, s): t for v, t in measured.items() for s in ("parquet", "discard")})
    return runs, stops


def _progress(console: Console, run: Run) -> None:
    """One line per finished run, so that a long benchmark shows (and keeps in its log) what it measured."""
    if run.error:
        console.print(f"  {run.variant} -> {run.sink}: [red]{escape(run.error)}[/]")
        return
    r = run.result
    console.print(f"  {run.variant} -> {run.sink}: {r['rows']:,} rows in {r['seconds']:.2f} s "
                  f"({r['rows'] / r['seconds']:,.0f} rows/s), client CPU {run.cpu_seconds:.1f} s, peak RSS "
                  f"{_mb(run.peak_rss)} MB (+{_mb(run.peak_rss - r['baseline_rss'])}), load {os.getloadavg()[0]:.1f}")


def _measure_stops(variants: Sequence[str], shape: str, rows: int, opts: dict[str, Any],
                   cancel_after: int) -> dict[str, Any]:
    """Per reader, seconds to let go of the read after ``cancel_after`` batches of the day (rows discarded)."""
    out: dict[str, Any] = {}
    for v in (v for v in variants if v != "dlt"):
        run = _run(v, shape, rows, "discard", {**opts, "cancel_after": cancel_after})
        out[v] = run.error[:40] if run.error else (run.result["stop_s"], run.result["server_busy_s"])
    return out


@click.command("pg-readers", help=__doc__.split("\n\n")[0])
@click.option("--shape", "shapes", multiple=True, type=click.Choice(["users", "samples"]),
              default=("users", "samples"), show_default=True)
@click.option("--rows", "sizes", multiple=True, type=click.IntRange(1), default=(1_000_000,), show_default=True,
              help="rows in the benchmark day (repeat for several sizes: memory should stay flat)")
@click.option("--variant", "variants", multiple=True, type=click.Choice(VARIANTS), default=DEFAULT_VARIANTS,
              show_default=True)
@click.option("--sink", type=click.Choice(["parquet", "discard"]), default="parquet", show_default=True,
              help="where the readers' batches go (the --limit row always discards)")
@click.option("--batch-rows", type=click.IntRange(1), default=10_000, show_default=True)
@click.option("--repeat", type=click.IntRange(1), default=1, show_default=True, help="runs per variant (median)")
@click.option("--cancel-after", type=click.IntRange(0), default=3, show_default=True,
              help="also time stopping each reader after this many batches (0: skip)")
@click.option("--hours", type=click.FloatRange(0, 24, min_open=True), default=24.0, show_default=True,
              help="read only the first HOURS of the day (an index-using reader then reads less of the table)")
@click.option("--adbc-batch-bytes", type=click.IntRange(1), help="ADBC batch size hint (driver default 16 MiB)")
@click.option("--limit", type=click.Choice(list(READERS)), default="adbc-copy", show_default=True,
              help="the reader whose run with rows discarded is the limit row")
@click.option("--setup", is_flag=True, help="drop and rebuild the benchmark tables first")
@click.option("--types/--no-types", default=True, show_default=True, help="print the type-fidelity table")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="also write every run's figures here")
@click.option("--dsn", envvar="NAIA_PG_DSN", required=True, help="PostgreSQL DSN [env NAIA_PG_DSN]")
@click.option("--child", hidden=True)
def pg_readers(shapes: tuple[str, ...], sizes: tuple[int, ...], variants: tuple[str, ...], sink: str,
               batch_rows: int, repeat: int, cancel_after: int, hours: float, adbc_batch_bytes: int | None,
               limit: str, setup: bool, types: bool, json_path: str | None, dsn: str, child: str | None) -> None:
    if child:
        from naia_backfill.dev.benchmarks.pg_readers_child import child_main

        options = {"hint_bytes": str(adbc_batch_bytes)} if adbc_batch_bytes else {}
        child_main(child, dsn, os.environ["NAIA_BENCH_TABLE"], shapes[0], batch_rows, sink, cancel_after, hours,
                   options)
        return
    console = Console(width=max(Console().width, 180))
    console.print(f"[bold]naia-backfill bench pg-readers {shlex.join(sys.argv[1:])}[/]")
    with tables.connect(dsn) as conn:
        for shape in shapes:
            for rows in sizes:
                tables.ensure_day_table(conn, shape, rows, rebuild=setup)  # type: ignore[arg-type]
        tables.ensure_type_tables(conn)
    opts = {"dsn": dsn, "batch_rows": batch_rows, "cancel_after": 0, "hours": hours,
            "adbc_batch_bytes": adbc_batch_bytes}
    runs, stops = _measure_all(console, shapes, sizes, variants, sink, repeat, cancel_after, limit, opts)
    _render(console, runs, stops)
    if json_path:
        with open(json_path, "w", encoding="utf-8") as f:
            json.dump({"command": sys.argv[1:], "runs": [asdict(r) for r in runs],
                       "stops": [[*k, v] for k, v in stops.items()]}, f, indent=1)
    stop_note = (f"'stop s': time to let go of the read after {cancel_after} batches, 'server s': then until "
                 "PostgreSQL stopped running it; ") if cancel_after else ""
    console.print(f"load average now {os.getloadavg()[0]:.2f}; {psutil.cpu_count()} CPUs. 'over base': peak RSS "
                  f"minus the child's RSS after imports and catalog lookup; {stop_note}"
                  "'driver batch': largest batch the reader produced (sliced to --batch-rows for the sink); "
                  "'client CPU s': the child process (imports included), not the PostgreSQL server.")
    if types:
        from naia_backfill.dev.benchmarks.pg_readers_types import fidelity_report

        fidelity_report(console, dsn, [v for v in variants if v != "dlt"])


command = pg_readers  # what `naia-backfill bench` mounts (dev/benchmarks/cli.py BENCHMARKS)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry for ``naia-backfill bench pg-readers`` (passthrough of the remaining arguments)."""
    pg_readers.main(args=list(argv or []), prog_name="naia-backfill bench pg-readers")  # exits (2 on bad usage)
    return 0


if __name__ == "__main__":
    pg_readers()
