"""A day's checks against the copy of that day (issue 15, goal 1: checks ≤ 10% of the copy).

One synthetic day (1/min, seed 2, one range rule over every point so all four checks have work) is copied into a
local lake by :func:`~naia_backfill.core.daycopy.copy_day` with :class:`~naia_backfill.core.day_stats.DayStats`
watching the batches, as runs do; the time spent in ``DayStats.add`` and ``report`` is the streamed checks' cost,
the rest of the copy's time is the copy. Then, in a second process, `validate`'s re-read mode
(:func:`~naia_backfill.core.validation.validate_day`, DuckDB over the day's object) checks the same day.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from typing import Any

from naia_backfill.dev.benchmarks.measures.child import in_child, peak_rss_mb
from naia_backfill.dev.benchmarks.measures.registry import Scale
from naia_backfill.dev.benchmarks.measures.rows import Goal, Row

DAY = dt.date(2024, 1, 1)
TARGET = "naia_backfill.dev.benchmarks.measures.checks"


def point_set(points: int) -> Any:
    from naia_backfill.settings import PointSet

    return PointSet.model_validate({
        "name": "bench", "start_date": DAY.isoformat(), "points": {"name_filter": "SYN*"},
        "source": {"kind": "synthetic", "points": points, "interval_seconds": 60, "seed": 2},
        "checks": {"ranges": [{"points": "SYN*", "min": -1000, "max": 1000}]},
    })


def copy(lake: str, points: int) -> dict[str, Any]:
    """Child: copy the day with the streamed checks; seconds of each."""
    from naia_backfill.connectors.synthetic import SyntheticConnector
    from naia_backfill.core.day_stats import DayStats
    from naia_backfill.core.daycopy import copy_day
    from naia_backfill.sinks.base import DayTarget
    from naia_backfill.sinks.lake_local import LocalLake
    from naia_backfill.sinks.parquet import ParquetDaySink

    class TimedStats(DayStats):
        """Counts the CPU time of the checks' own thread (the Parquet writer encodes on another thread, whose work
        a wall clock or the process's CPU clock would charge to the checks on a busy machine)."""

        cpu = wall = 0.0

        def add(self, batch: Any) -> None:
            c, w = time.thread_time(), time.perf_counter()
            super().add(batch)
            self.cpu += time.thread_time() - c
            self.wall += time.perf_counter() - w

    ps = point_set(points)
    source = SyntheticConnector(ps.source)
    names = source.list_points("SYN*")
    stats, baseline = TimedStats(ps, DAY), peak_rss_mb()
    cpu = time.process_time()
    result = copy_day(source, names, [ParquetDaySink(LocalLake(lake))], DayTarget(ps.name, DAY), stats=stats)
    cpu = time.process_time() - cpu
    c, w = time.thread_time(), time.perf_counter()
    report = stats.report(ps.name, result.uris, names)
    check_cpu, check_wall = stats.cpu + time.thread_time() - c, stats.wall + time.perf_counter() - w
    return {"samples": result.samples, "copy_cpu": cpu - stats.cpu, "check_cpu": check_cpu,
            "copy_seconds": result.seconds - stats.wall, "check_seconds": check_wall,
            "status": report.status, "checked_samples": report.samples, "baseline_mb": baseline}


def reread(lake: str, points: int) -> dict[str, Any]:
    """Child: `validate`'s re-read of the day the copy wrote."""
    from naia_backfill.connectors.synthetic import SyntheticConnector
    from naia_backfill.core.validation import validate_day
    from naia_backfill.sinks.lake_local import LocalLake

    ps = point_set(points)
    names = SyntheticConnector(ps.source).list_points("SYN*")
    baseline = peak_rss_mb()
    t = time.perf_counter()
    cpu = time.process_time()
    report = validate_day(LocalLake(lake), ps, DAY, names)
    return {"check_seconds": time.perf_counter() - t, "check_cpu": time.process_time() - cpu, "status": report.status,
            "checked_samples": report.samples, "baseline_mb": baseline}


def run(scale: Scale) -> list[Row]:
    points = int(scale.pick(50, 4583, 45830))
    with tempfile.TemporaryDirectory(prefix="naia-bench-checks-") as lake:
        c = in_child(f"{TARGET}:copy", lake=lake, points=points)
        r = in_child(f"{TARGET}:reread", lake=lake, points=points)
    agree = c["checked_samples"] == r["checked_samples"] == c["samples"] and c["status"] == r["status"]
    note = "" if agree else (f"[red]reports differ: streamed {c['checked_samples']:,} {c['status']}, re-read "
                             f"{r['checked_samples']:,} {r['status']}[/]")
    return [
        Row(f"checks while the day streams, {c['samples']:,} samples (vs the copy)", "CPU s", [c["check_cpu"]],
            "copy", [c["copy_cpu"]], Goal("<=", 0.10), peak_rss_mb=[c["peak_rss_mb"]],
            note=note or (f"wall {c['check_seconds']:.2f} s vs {c['copy_seconds']:.2f} s; "
                          f"+{c['peak_rss_mb'] - c['baseline_mb']:.0f} MB over baseline (copy and checks)")),
        Row("checks re-reading the day (validate) (vs the copy)", "CPU s", [r["check_cpu"]], "copy",
            [c["copy_cpu"]], peak_rss_mb=[r["peak_rss_mb"]],
            note=note or (f"wall {r['check_seconds']:.2f} s; "
                          f"+{r['peak_rss_mb'] - r['baseline_mb']:.0f} MB over baseline")),
    ]
