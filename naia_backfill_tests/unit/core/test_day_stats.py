"""The checks computed while a day streams (DayStats) equal the checks computed by reading the day back."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa

from naia_backfill.connectors.synthetic import SyntheticConnector
from naia_backfill.core.day_stats import DayStats
from naia_backfill.core.daycopy import copy_day
from naia_backfill.core.validation import validate_day
from naia_backfill.settings import PointSet
from naia_backfill.sinks.base import DayTarget
from naia_backfill.sinks.lake_local import LocalLake
from naia_backfill.sinks.parquet import ParquetDaySink
from naia_backfill.schema import from_columns

DAY = dt.date(2024, 1, 1)


def point_set(**checks: object) -> PointSet:
    return PointSet.model_validate({
        "name": "plant", "start_date": "2024-01-01", "sinks": ["parquet"], "checks": checks,
        "source": {"kind": "synthetic", "points": 40, "interval_seconds": 300, "seed": 4},
    })


def compare(tmp_path: Path, ps: PointSet, source) -> None:
    lake = LocalLake(tmp_path / "lake")
    stats = DayStats(ps, DAY)
    points = source.list_points()
    result = copy_day(source, points, [ParquetDaySink(lake)], DayTarget(ps.name, DAY), stats=stats)
    streamed = stats.report(ps.name, result.uris, points)
    reread = validate_day(lake, ps, DAY, points)
    assert streamed.samples == reread.samples == result.samples
    assert streamed.point_samples.equals(reread.point_samples)
    for name, check in reread.checks.items():
        got = streamed.checks[name]
        assert (got.passed, got.severity, got.summary, got.details) == (check.passed, check.severity, check.summary,
                                                                        check.details), name


def test_streamed_checks_equal_reread_checks_passing_and_failing(tmp_path: Path):
    ps = point_set(max_gap_seconds=400, ranges=[{"points": "SYN0001*", "min": -0.5, "max": 0.5},
                                                {"points": "SYN0002?", "max": 1e9}])
    compare(tmp_path, ps, SyntheticConnector(ps.source))


class Scripted:
    """A source whose day has gaps, a point going back in time, and points only some batches carry."""

    description = "scripted"

    def __init__(self) -> None:
        t0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
        self.batches = [
            from_columns(point=["A", "B", "A", "B"], ts=[t0 + dt.timedelta(minutes=m) for m in (1, 2, 3, 4)],
                         value=[1.0, 2.0, None, 500.0]),
            from_columns(point=["A", "C"], ts=[t0 + dt.timedelta(hours=5), t0 + dt.timedelta(hours=6)], value=[3.0, 4.0]),
            from_columns(point=["B"], ts=[t0 + dt.timedelta(minutes=3)], value=[5.0]),  # B goes back in time
        ]

    def list_points(self, name_filter: str = "*") -> list[str]:
        return ["A", "B", "C", "D"]

    def fetch(self, points, start, end):
        yield from self.batches

    def stats(self) -> dict:
        return {}

    def day_metadata(self, points, start, end) -> dict:
        return {}


def test_streamed_checks_equal_reread_checks_on_gaps_reversals_and_missing_points(tmp_path: Path):
    ps = point_set(max_gap_seconds=3600, ranges=[{"points": "*", "min": 0, "max": 100}])
    compare(tmp_path, ps, Scripted())
    stats = DayStats(ps, DAY)
    for batch in Scripted().batches:
        stats.add(batch)
    report = stats.report("plant", ["x/all.parquet"], ["A", "B", "C", "D"])
    assert not report.checks["no_duplicates"].passed and report.checks["no_duplicates"].details["time_reversals"] == 1
    assert report.checks["samples_present"].details["missing"] == ["D"]
    assert report.checks["value_ranges"].details["violations"] == 1


def test_an_empty_day_only_warns():
    stats = DayStats(point_set(), DAY)
    stats.add(pa.RecordBatch.from_pylist([], schema=from_columns(point=[], ts=[]).schema))
    report = stats.report("plant", ["x/all.parquet"], None)
    assert report.samples == 0 and report.status == "warn"
    assert report.checks["samples_present"].summary.startswith("the day's object holds no rows")
