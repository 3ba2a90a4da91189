"""Benchmark: one 6.6M-sample day (4,583 points at 1/min, seed 002's site) into the local lake and into S3
(multipart upload + size/ETag verification), the day's checks over each, and the DuckDB table mode, in one run.

Each step runs in its own process so that its peak RSS is its own. Needs an S3 server and its variables
(``naia-backfill services up s3`` and ``set -a; . .services/env; set +a``); the objects go under a fresh
prefix of ``$NAIA_S3_BUCKET`` and are removed afterwards.

    naia-backfill bench s3-lake [--points 4583] [--interval 60] [--repeat 1] [--json PATH]
"""

from __future__ import annotations

import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

DAY = dt.date(2024, 1, 1)
STEPS = ("copy-local", "copy-s3", "checks-local", "checks-s3", "duckdb-table")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _copy(lake_url: str, points: int, interval: float, table: str | None) -> dict:
    import contextlib

    import duckdb

    from naia_backfill.connectors.synthetic import SyntheticConnector
    from naia_backfill.core.daycopy import copy_day
    from naia_backfill.settings import SyntheticSource
    from naia_backfill.sinks.base import DayTarget
    from naia_backfill.sinks.duckdb import CONNECTION_CONFIG
    from naia_backfill.sinks.duckdb_table import DuckDBTableSink
    from naia_backfill.sinks.lake import lake_from_url
    from naia_backfill.sinks.parquet import ParquetDaySink

    src = SyntheticConnector(SyntheticSource(kind="synthetic", points=points, interval_seconds=interval, seed=2))
    if table:
        @contextlib.contextmanager
        def connect():  # noqa: ANN202
            con = duckdb.connect(table, config=CONNECTION_CONFIG)  # as the WarehouseResource opens it
            try:
                yield con
            finally:
                con.close()

        sink = DuckDBTableSink(connect, Path(table).with_suffix(".spool"))
    else:
        sink = ParquetDaySink(lake_from_url(lake_url))
    result = copy_day(src, src.list_points(), [sink], DayTarget("bench", DAY))
    return {"samples": result.samples, "bytes": result.bytes}


def _checks(lake_url: str) -> dict:
    from naia_backfill.core.validation import validate_day
    from naia_backfill.settings import PointSet
    from naia_backfill.sinks.lake import lake_from_url

    ps = PointSet.model_validate({"name": "bench", "source": {"kind": "synthetic", "interval_seconds": 60},
                                  "start_date": DAY.isoformat()})
    report = validate_day(lake_from_url(lake_url), ps, DAY)
    return {"samples": report.samples, "bytes": 0, "status": report.status}


def _step(step: str, lake_url: str, points: int, interval: float) -> dict:
    import boto3  # noqa: F401 -- imports are not what is measured
    import duckdb  # noqa: F401

    import naia_backfill.core.daycopy  # noqa: F401
    import naia_backfill.core.validation  # noqa: F401
    import naia_backfill.sinks.duckdb_table  # noqa: F401
    import naia_backfill.sinks.parquet  # noqa: F401

    baseline = _peak_mb()
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    if step.startswith("copy"):
        out = _copy(lake_url, points, interval, None)
    elif step == "duckdb-table":
        out = _copy(lake_url, points, interval, os.path.join(lake_url, "bench.duckdb"))
    else:
        out = _checks(lake_url)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - usage0.ru_utime - usage0.ru_stime
    return {**out, "seconds": time.perf_counter() - started, "cpu_seconds": cpu,
            "peak_rss_mb": _peak_mb(), "import_rss_mb": baseline}


def _run_child(step: str, lake_url: str, points: int, interval: float) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "naia_backfill.dev.benchmarks.s3_lake", "--child", step, "--lake", lake_url,
         "--points", str(points), "--interval", str(interval)],
        capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        raise click.ClickException(f"{step} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _remove_prefix(url: str) -> None:
    import boto3

    bucket, prefix = url.removeprefix("s3://").split("/", 1)
    s3 = boto3.client("s3")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        for obj in page.get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=obj["Key"])


@click.command("s3-lake")
@click.option("--points", type=click.IntRange(min=1), default=4583, show_default=True)
@click.option("--interval", type=click.FloatRange(min=0.001), default=60.0, show_default=True, help="Seconds between samples.")
@click.option("--repeat", type=click.IntRange(min=1), default=1, show_default=True, help="Runs of each step; medians shown.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write every run's figures here.")
@click.option("--child", type=click.Choice(STEPS), hidden=True)
@click.option("--lake", hidden=True)
def command(points: int, interval: float, repeat: int, json_path: str | None, child: str | None,
            lake: str | None) -> None:
    """One large day into the local lake vs S3 (upload + verify), its checks over each, and DuckDB table mode."""
    if child:
        print(json.dumps(_step(child, lake or "", points, interval)))
        return
    bucket = os.environ.get("NAIA_S3_BUCKET")
    if not bucket or not os.environ.get("AWS_ENDPOINT_URL"):
        raise click.ClickException("needs an S3 server: naia-backfill services up s3, then export .services/env")
    console = Console(width=max(Console().width, 130))
    console.print(f"[bold]naia-backfill bench s3-lake --points {points} --interval {interval:g} --repeat {repeat}[/]"
                  f"  (load before: {os.getloadavg()[0]:.2f})")
    runs: dict[str, list[dict]] = {s: [] for s in STEPS}
    for _ in range(repeat):
        s3_url = f"s3://{bucket}/bench-{uuid.uuid4().hex[:8]}"
        with tempfile.TemporaryDirectory(prefix="naia-bench-") as local:
            try:
                for step in STEPS:
                    url = s3_url if step.endswith("s3") else local
                    runs[step].append(_run_child(step, url, points, interval))
            finally:
                _remove_prefix(s3_url)
    table = Table("step", "samples", "seconds", "samples/s", "CPU s", "peak RSS MB", "RSS after imports MB", "object MB")
    for step, results in runs.items():
        med = {k: statistics.median(r[k] for r in results) for k in ("seconds", "cpu_seconds", "peak_rss_mb", "import_rss_mb", "bytes")}
        samples = results[0]["samples"]
        table.add_row(step, f"{samples:,}", f"{med['seconds']:.2f}", f"{samples / med['seconds']:,.0f}",
                      f"{med['cpu_seconds']:.2f}", f"{med['peak_rss_mb']:.0f}", f"{med['import_rss_mb']:.0f}",
                      f"{med['bytes'] / 1e6:.1f}" if med["bytes"] else "")
    console.print(table)
    console.print(f"load after: {os.getloadavg()[0]:.2f} (1-min average; the machine has {os.cpu_count()} cores)")
    if json_path:
        Path(json_path).write_text(json.dumps({"runs": runs}, indent=1), encoding="utf-8")


if __name__ == "__main__":
    command()
