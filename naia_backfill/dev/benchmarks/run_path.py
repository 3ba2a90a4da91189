"""Benchmark: the `naia-backfill run` path as users run it (Dagster instance, checks, every sink of the point set).

- **memory**: one day at 0.66M, 6.6M and 66M samples (458, 4,583 and 45,830 points at one sample a minute), each
  in its own process: peak RSS over the process's baseline (after imports and loading the definitions).
- **overhead**: N days of a `demo`-like point set (50 points at 1/min): the fixed cost per day, (total - data
  time) / N, where data time is what the days' own materializations say they spent fetching and writing.
- **events**: what Dagster itself costs per stored event (an asset materialization with typical metadata), on a
  SQLite instance and, when dagster-postgres is installed and NAIA_PG_DSN is set, on PostgreSQL.

    naia-backfill bench run-path [--scales 458,4583,45830] [--days 365] [--events 300]
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

MODULE = "naia_backfill.dev.benchmarks.run_path"
GOAL_MB, GOAL_MS = 200.0, 50.0


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextlib.contextmanager
def _workdir() -> Iterator[Path]:
    """A Dagster home with the packaged instance settings, a lake and a DuckDB file, all temporary."""
    from naia_backfill.cli.common import DEFAULT_INSTANCE

    with tempfile.TemporaryDirectory(prefix="naia-bench-run-") as tmp:
        root = Path(tmp)
        (root / "home").mkdir()
        shutil.copyfile(DEFAULT_INSTANCE, root / "home" / "dagster.yaml")
        os.environ.update(DAGSTER_HOME=str(root / "home"), NAIA_LAKE_URL=str(root / "lake"),
                          NAIA_DUCKDB_PATH=str(root / "naia.duckdb"))
        yield root


def _point_set(root: Path, points: int) -> Path:
    path = root / "bench.yaml"
    path.write_text(
        "name: bench\nstart_date: 2024-01-01\nsinks: [parquet, duckdb]\nchunk_days: 30\n"
        f"source: {{kind: synthetic, points: {points}, interval_seconds: 60, seed: 3}}\n"
        "points: {name_filter: 'SYN*'}\n"
    )
    return path


def _run(root: Path, points: int, days: int) -> dict:
    import datetime as dt

    import dagster as dg

    from naia_backfill.cli.common import ensure_dagster_home
    from naia_backfill.cli.runner import run_days
    from naia_backfill.settings import load_point_set

    ps = load_point_set(_point_set(root, points))
    ensure_dagster_home()
    baseline = _peak_mb()
    day_list = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(days)]
    started = time.perf_counter()
    failed = run_days({ps.name: ps}, ps, day_list, console=Console(file=io.StringIO()))
    total = time.perf_counter() - started
    instance = dg.DagsterInstance.get()
    records = instance.fetch_materializations(dg.AssetKey(ps.name), limit=days + 10).records
    meta = [r.asset_materialization.metadata for r in records]
    events = sum(len(instance.all_logs(run.run_id)) for run in instance.get_runs())
    return {"days": days, "failed": failed, "seconds": total, "baseline_mb": baseline, "peak_mb": _peak_mb(),
            "samples": sum(m["samples"].value for m in meta), "data_seconds": sum(m["seconds"].value for m in meta),
            "events": events}


def _events(backend: str, count: int) -> dict:
    import dagster as dg

    metadata = {"points": dg.MetadataValue.int(50), "samples": dg.MetadataValue.int(72_000),
                "bytes": dg.MetadataValue.int(1_000_000), "seconds": dg.MetadataValue.float(0.3),
                "parquet_uri": dg.MetadataValue.path("/lake/point_set=bench/date=2024-01-01/all.parquet")}
    if backend == "postgres":
        from dagster_postgres import DagsterPostgresStorage  # noqa: F401  (the backend must be installed)

        schema = f"bench_{uuid.uuid4().hex[:8]}"
        # As docker/dagster.yaml: postgres_db with the psycopg2 scheme (SQLAlchemy 2.1 would pick psycopg 3 for a
        # plain URL, which dagster-postgres' NOTIFY does not work with); the tables go to a schema of their own.
        dsn = urllib.parse.urlsplit(os.environ["NAIA_PG_DSN"])
        db = {"hostname": dsn.hostname or "127.0.0.1", "port": dsn.port or 5432, "username": dsn.username or "postgres",
              "db_name": dsn.path.lstrip("/") or "postgres", "scheme": "postgresql+psycopg2",
              "params": {"options": f"-c search_path={schema}"}}
        if dsn.password:
            db["password"] = urllib.parse.unquote(dsn.password)
        config = {"storage": {"postgres": {"postgres_db": db}}}
        import psycopg2

        with psycopg2.connect(os.environ["NAIA_PG_DSN"]) as conn, conn.cursor() as cur:
            cur.execute(f"CREATE SCHEMA {schema}")
        cm = dg.instance_for_test(overrides=config)
    else:
        cm = dg.instance_for_test()
    with cm as instance:
        instance.report_runless_asset_event(dg.AssetMaterialization("warm", metadata=metadata))
        started = time.perf_counter()
        for i in range(count):
            instance.report_runless_asset_event(
                dg.AssetMaterialization("bench", partition=f"p{i}", metadata=metadata))
        seconds = time.perf_counter() - started
    return {"backend": backend, "events": count, "ms_per_event": 1000 * seconds / count}


def _child(args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, "-m", MODULE, "--child", *args], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise click.ClickException(f"{' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


@click.command("run-path")
@click.option("--scales", default="458,4583,45830", show_default=True,
              help="Points (at 1/min) of the one-day runs whose memory is measured.")
@click.option("--days", type=click.IntRange(min=1), default=365, show_default=True, help="Days of the overhead run.")
@click.option("--events", type=click.IntRange(min=10), default=300, show_default=True,
              help="Events stored to measure Dagster's cost per event.")
@click.option("--child", hidden=True, nargs=2, type=str, default=None)
def command(scales: str, days: int, events: int, child: tuple[str, str] | None) -> None:
    """The `run` path: memory from 0.66M to 66M samples a day, fixed cost per day, Dagster's cost per event."""
    if child:
        kind, value = child
        if kind == "events":
            backend, count = value.split(":")
            print(json.dumps(_events(backend, int(count))))
            return
        with _workdir() as root:
            points, n = (int(value), 1) if kind == "memory" else (50, int(value))
            print(json.dumps(_run(root, points, n)))
        return
    report(scales, days, events)


def report(scales: str, days: int, events: int) -> None:
    console = Console(width=max(Console().width, 130))
    console.print(f"[bold]naia-backfill bench run-path --scales {scales} --days {days} --events {events}[/]  "
                  f"(load average {os.getloadavg()[0]:.2f})")
    mem = Table("samples/day", "seconds", "samples/s", "baseline MB", "peak MB", "over baseline MB", f"goal <= {GOAL_MB:g}")
    over = []
    for points in [int(p) for p in scales.split(",") if p]:
        r = _child(["memory", str(points)])
        over.append(r["peak_mb"] - r["baseline_mb"])
        mem.add_row(f"{r['samples']:,}", f"{r['seconds']:.1f}", f"{r['samples'] / r['seconds']:,.0f}",
                    f"{r['baseline_mb']:.0f}", f"{r['peak_mb']:.0f}", f"{over[-1]:.0f}",
                    "[green]met[/]" if over[-1] <= GOAL_MB else "[red]missed[/]")
    console.print(mem)
    if len(over) > 1:
        console.print(f"memory flatness: largest/smallest over-baseline = {max(over) / max(min(over), 1):.2f} "
                      "(goal: within 10%, i.e. <= 1.10)")
    r = _child(["overhead", str(days)])
    per_day = 1000 * (r["seconds"] - r["data_seconds"]) / r["days"]
    console.print(f"{r['days']} days, {r['samples']:,} samples: {r['seconds']:.1f} s in all, {r['data_seconds']:.1f} s "
                  f"fetching and writing -> fixed cost {per_day:.1f} ms per day (goal <= {GOAL_MS:g} ms, "
                  f"{'met' if per_day <= GOAL_MS else 'missed'}); {r['events'] / r['days']:.1f} Dagster events stored "
                  f"per day; peak RSS {r['peak_mb']:.0f} MB")
    backends = ["sqlite"] + (["postgres"] if os.environ.get("NAIA_PG_DSN") and _has_postgres() else [])
    for backend in backends:
        e = _child(["events", f"{backend}:{events}"])
        dagster_ms = e["ms_per_event"] * r["events"] / r["days"]
        note = (f"; of the fixed cost, storing the day's events takes ~{dagster_ms:.0f} ms, the rest "
                f"{per_day - dagster_ms:.0f} ms") if backend == "sqlite" else ""
        console.print(f"Dagster, {backend} instance: {e['ms_per_event']:.2f} ms per stored event ({events} events){note}")


def _has_postgres() -> bool:
    try:
        import dagster_postgres  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    command()
