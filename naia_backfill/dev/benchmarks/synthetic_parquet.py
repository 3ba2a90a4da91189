"""Benchmark: synthetic source -> Parquet day, streamed (naia) vs the whole day in a pandas DataFrame; with
``--sink-alone``, also naia's lake sink against pyarrow's ``ParquetWriter`` writing the same batches.

Each variant runs in its own process so its peak RSS is its own. Default scale: one day of seed 002's
site, 4,583 points at one sample a minute (about 6.6M samples).

- ``naia-streaming``: the lake sink as runs use it, row groups streamed as the source yields them (source
  generation included in the time);
- ``pandas-whole-day``: the common alternative, the day collected in a DataFrame and written at once;
- ``naia-sink`` and ``pyarrow-writer`` (``--sink-alone``): the day's batches are generated first, untimed; then
  only writing them is timed: through :class:`~naia_backfill.sinks.parquet.ParquetDaySink` (open, write, commit
  with its fsync), or straight through ``pyarrow.parquet.ParquetWriter`` with the sink's settings (zstd,
  dictionary-encoded ``point`` and ``text``, statistics, the same 250,000-row row groups) -- the limit.

    naia-backfill bench synthetic [--points 4583] [--interval 60] [--days 1] [--sink-alone] [--json PATH]
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
from typing import Any

import click
from rich.console import Console
from rich.table import Table

DAY = dt.date(2024, 1, 1)
VARIANTS = ("naia-streaming", "pandas-whole-day")
SINK_ALONE = ("naia-sink", "pyarrow-writer")
MODULE = "naia_backfill.dev.benchmarks.synthetic_parquet"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _write_alone(name: str, batches: list, lake: str, day: dt.date) -> tuple[int, int]:
    """Write one day's ready batches with the sink or with the bare ParquetWriter: (rows, bytes)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from naia_backfill.schema import SAMPLE_SCHEMA
    from naia_backfill.settings import ParquetSink
    from naia_backfill.sinks.base import DayTarget
    from naia_backfill.sinks.lake_local import LocalLake
    from naia_backfill.sinks.parquet import ParquetDaySink

    if name == "naia-sink":
        writer = ParquetDaySink(LocalLake(lake)).open_day(DayTarget("bench", day))
        for batch in batches:
            writer.write(batch)
        result = writer.commit()
        return result.rows, result.bytes
    settings = ParquetSink(kind="parquet")
    path = Path(lake) / f"pyarrow-{day}.parquet"
    with pq.ParquetWriter(path, SAMPLE_SCHEMA, compression=settings.compression, use_dictionary=["point", "text"],
                          write_statistics=True) as writer:
        table = pa.Table.from_batches(batches, schema=SAMPLE_SCHEMA)
        writer.write_table(table, row_group_size=settings.row_group_rows)
    return table.num_rows, path.stat().st_size


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
    untimed = untimed_cpu = 0.0  # generating the batches of the sink-alone variants
    for i in range(days):
        day = DAY + dt.timedelta(days=i)
        start, end = day_window(day)
        if name in SINK_ALONE:
            t, c = time.perf_counter(), time.process_time()
            batches = list(src.fetch(names, start, end))
            untimed, untimed_cpu = untimed + time.perf_counter() - t, untimed_cpu + time.process_time() - c
            rows, written = _write_alone(name, batches, lake, day)
            samples, size = samples + rows, size + written
            del batches
        elif name == "naia-streaming":
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
    seconds = time.perf_counter() - started - untimed
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"variant": name, "samples": samples, "seconds": seconds, "bytes": size,
            "cpu_seconds": usage.ru_utime + usage.ru_stime - cpu0 - untimed_cpu,
            "peak_rss_mb": _peak_mb(), "import_rss_mb": baseline}


def run_variant(name: str, points: int, interval: float = 60.0, days: int = 1) -> dict[str, Any]:
    """One variant in its own process (and a temporary lake): its figures, as the table shows them."""
    with tempfile.TemporaryDirectory(prefix="naia-bench-") as tmp:
        proc = subprocess.run(
            [sys.executable, "-m", MODULE, "--child", "--only", name, "--points", str(points), "--interval",
             str(interval), "--days", str(days), "--lake", tmp],
            capture_output=True, text=True, check=False,
        )
    if proc.returncode != 0:
        raise click.ClickException(f"{name} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


@click.command("synthetic")
@click.option("--points", type=click.IntRange(min=1), default=4583, show_default=True)
@click.option("--interval", type=click.FloatRange(min=0.001), default=60.0, show_default=True, help="Seconds between samples.")
@click.option("--days", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--only", type=click.Choice([*VARIANTS, *SINK_ALONE]), help="Run one variant.")
@click.option("--sink-alone", is_flag=True, help="Also time writing ready batches: naia's sink vs pyarrow's ParquetWriter.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write every variant's figures here.")
@click.option("--child", is_flag=True, hidden=True)
@click.option("--lake", hidden=True)
def command(points: int, interval: float, days: int, only: str | None, sink_alone: bool, json_path: str | None,
            child: bool, lake: str | None) -> None:
    """Synthetic source -> Parquet day: naia's streaming sink vs a whole-day pandas DataFrame."""
    if child:
        print(json.dumps(_variant(only, points, interval, days, lake)))
        return
    console = Console(width=max(Console().width, 130))
    command = (f"naia-backfill bench synthetic --points {points} --interval {interval:g} --days {days}"
               + (f" --only {only}" if only else "") + (" --sink-alone" if sink_alone else ""))
    console.print(f"[bold]{command}[/]  ({points} points, {interval:g}s interval, {days} day(s))")
    table = Table("variant", "samples", "seconds", "samples/s", "CPU s", "peak RSS MB", "RSS after imports MB",
                  "Parquet MB")
    names = [only] if only else [*VARIANTS, *(SINK_ALONE if sink_alone else ())]
    results = []
    for name in names:
        r = run_variant(name, points, interval, days)
        results.append(r)
        table.add_row(name, f"{r['samples']:,}", f"{r['seconds']:.2f}", f"{r['samples'] / r['seconds']:,.0f}",
                      f"{r['cpu_seconds']:.2f}", f"{r['peak_rss_mb']:.0f}", f"{r['import_rss_mb']:.0f}", f"{r['bytes'] / 1e6:.1f}")
    console.print(table)
    by = {r["variant"]: r for r in results}
    if all(v in by for v in SINK_ALONE):
        console.print(f"sink alone (batches ready, untimed generation): naia-sink / pyarrow-writer CPU s = "
                      f"{by['naia-sink']['cpu_seconds'] / by['pyarrow-writer']['cpu_seconds']:.2f} (goal ≈ 1.0)")
    if json_path:
        Path(json_path).write_text(json.dumps({"command": command, "results": results}, indent=1), encoding="utf-8")


if __name__ == "__main__":
    command()
