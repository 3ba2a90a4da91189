"""Benchmark: synthetic source -> Parquet day, streamed (naia) vs the whole day in a pandas DataFrame.

Each variant runs in its own process so its peak RSS is its own. Default scale: one day of seed 002's
site, 4,583 points at one sample a minute (about 6.6M samples).

    naia-backfill bench synthetic [--points 4583] [--interval 60] [--days 1]
"""

from __future__ import annotations

import datetime as dt
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

DAY = dt.date(2024, 1, 1)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _variant(name: str, points: int, interval: float, days: int, lake: str) -> dict:
    from naia_backfill.connectors.synthetic import SyntheticConnector
    from naia_backfill.core.daycopy import day_window
    from naia_backfill.settings import SyntheticSource
    from naia_backfill.sinks.base import DayTarget
    from naia_backfill.sinks.lake_local import LocalLake
    from naia_backfill.sinks.parquet import ParquetDaySink

    src = SyntheticConnector(SyntheticSource(kind="synthetic", points=points, interval_seconds=interval, seed=2))
    names = src.list_points()
    baseline = _peak_mb()
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = usage0.ru_utime + usage0.ru_stime
    samples = size = 0
    started = time.perf_counter()
    for i in range(days):
        day = DAY + dt.timedelta(days=i)
        start, end = day_window(day)
        if name == "naia-streaming":
            writer = ParquetDaySink(LocalLake(lake)).open_day(DayTarget("bench", day))
            for batch in src.fetch(names, start, end):
                writer.write(batch)
            result = writer.commit()
            samples, size = samples + result.rows, size + result.bytes
        else:
            import pandas as pd

            frame = pd.concat([b.to_pandas() for b in src.fetch(names, start, end)], ignore_index=True)
            path = Path(lake) / f"pandas-{day}.parquet"
            frame.to_parquet(path, compression="zstd", index=False)
            samples, size = samples + len(frame), size + path.stat().st_size
            del frame
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"variant": name, "samples": samples, "seconds": seconds, "bytes": size,
            "cpu_seconds": usage.ru_utime + usage.ru_stime - cpu0,
            "peak_rss_mb": _peak_mb(), "import_rss_mb": baseline}


@click.command("synthetic")
@click.option("--points", type=click.IntRange(min=1), default=4583, show_default=True)
@click.option("--interval", type=click.FloatRange(min=0.001), default=60.0, show_default=True, help="Seconds between samples.")
@click.option("--days", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--only", type=click.Choice(["naia-streaming", "pandas-whole-day"]), help="Run one variant.")
@click.option("--child", is_flag=True, hidden=True)
@click.option("--lake", hidden=True)
def command(points: int, interval: float, days: int, only: str | None, child: bool, lake: str | None) -> None:
    """Synthetic source -> Parquet day: naia's streaming sink vs a whole-day pandas DataFrame."""
    if child:
        print(json.dumps(_variant(only, points, interval, days, lake)))
        return
    console = Console(width=max(Console().width, 130))
    command = f"naia-backfill bench synthetic --points {points} --interval {interval:g} --days {days}"
    console.print(f"[bold]{command}[/]  ({points} points, {interval:g}s interval, {days} day(s))")
    table = Table("variant", "samples", "seconds", "samples/s", "CPU s", "peak RSS MB", "RSS after imports MB",
                  "Parquet MB")
    for name in [only] if only else ["naia-streaming", "pandas-whole-day"]:
        with tempfile.TemporaryDirectory(prefix="naia-bench-") as tmp:
            proc = subprocess.run(
                [sys.executable, "-m", "naia_backfill.dev.benchmarks.synthetic_parquet", "--child", "--only", name,
                 "--points", str(points), "--interval", str(interval), "--days", str(days), "--lake", tmp],
                capture_output=True, text=True, check=False,
            )
        if proc.returncode != 0:
            raise click.ClickException(f"{name} failed:\n{proc.stderr[-2000:]}")
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        table.add_row(name, f"{r['samples']:,}", f"{r['seconds']:.2f}", f"{r['samples'] / r['seconds']:,.0f}",
                      f"{r['cpu_seconds']:.2f}", f"{r['peak_rss_mb']:.0f}", f"{r['import_rss_mb']:.0f}", f"{r['bytes'] / 1e6:.1f}")
    console.print(table)


if __name__ == "__main__":
    command()
