"""Day checks over small lakes in tmp_path: each kind of problem is found, exactly, and nothing else is."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner

from naia_backfill.cli import Ctx
from naia_backfill.connectors.synthetic import SyntheticConnector, point_kind
from naia_backfill.core.daycopy import copy_day
from naia_backfill.schema import from_columns
from naia_backfill.settings import PointSet
from naia_backfill.sinks import layout
from naia_backfill.sinks.base import DayTarget
from naia_backfill.sinks.lake import LocalLake, S3Lake
from naia_backfill.sinks.parquet import ParquetDaySink
from naia_backfill.core.check_outcomes import ERROR, WARN, gap_threshold_seconds
from naia_backfill.core.validation import validate_day, validate_range
from naia_backfill.cli.validate import coverage_matrix, validate_cmd

DAY = dt.date(2024, 1, 2)
T0 = int(dt.datetime.combine(DAY, dt.time(), dt.UTC).timestamp()) * 10**9
MIN = 60 * 10**9


def point_set(**overrides: Any) -> PointSet:
    doc: dict[str, Any] = {
        "name": "plant",
        "source": {"kind": "synthetic", "points": 6, "interval_seconds": 600, "seed": 7},
        "start_date": "2024-01-01",
        "sinks": ["parquet"],
    }
    return PointSet.model_validate(doc | overrides)


def synthetic_day(lake: LocalLake, ps: PointSet, day: dt.date = DAY, points: list[str] | None = None,
                  group: str | None = None) -> list[str]:
    src = SyntheticConnector(ps.source)
    names = src.list_points() if points is None else points
    copy_day(src, names, [ParquetDaySink(lake)], DayTarget(ps.name, day, group=group))
    return names


def handcrafted(lake: LocalLake, rows: dict[str, list], day: dt.date = DAY, group: str | None = None) -> None:
    """Write one object from column lists; ``ts`` in ns since the epoch."""
    ts = pa.array(rows.pop("ts"), pa.int64()).view(pa.timestamp("ns", tz="UTC"))
    writer = ParquetDaySink(lake).open_day(DayTarget("plant", day, group=group))
    writer.write(from_columns(ts=ts, **rows))
    writer.commit()


def every_minute(point: str, skip: range = range(0)) -> dict[str, list]:
    minutes = [m for m in range(1440) if m not in skip]
    return {"point": [point] * len(minutes), "ts": [T0 + m * MIN for m in minutes]}


def concat(*parts: dict[str, list]) -> dict[str, list]:
    return {k: [v for p in parts for v in p[k]] for k in parts[0]}


def statuses(report) -> dict[str, tuple[bool, str]]:
    return {name: (c.passed, c.severity) for name, c in report.checks.items()}


def test_a_good_synthetic_day_passes_every_check(tmp_path: Path):
    ps = point_set(checks={"ranges": [{"points": "SYN*", "min": -1000, "max": 1000}]})
    lake = LocalLake(tmp_path)
    names = synthetic_day(lake, ps)
    report = validate_day(lake, ps, DAY, names)
    assert report.status == "pass", {n: c.summary for n, c in report.checks.items()}
    assert report.points == 6 and report.samples == sum(report.point_samples.column("samples").to_pylist())
    assert report.objects == [str(tmp_path / "point_set=plant/date=2024-01-02/all.parquet")]
    # The synthetic source writes runs of equal timestamps: the ordinal keeps them apart.
    assert report.samples > 6 * 144
    assert report.checks["no_duplicates"].details["duplicate_rows"] == 0
    assert report.checks["gaps"].details == {"threshold_seconds": 1800.0, "gaps": 0, "points": 0, "top": []}
    numeric = [n for n in names if point_kind(n) == "numeric"]  # only numeric points have values
    assert report.checks["value_ranges"].details["rules"][0]["points"] == len(numeric) > 0


def test_a_missing_day_fails_and_other_checks_are_skipped(tmp_path: Path):
    ps = point_set()
    lake = LocalLake(tmp_path)
    synthetic_day(lake, ps, DAY)
    report = validate_day(lake, ps, DAY + dt.timedelta(days=1), ["SYN00000"])
    assert report.status == "fail" and report.objects == [] and report.samples == 0
    assert statuses(report)["samples_present"] == (False, ERROR)
    assert report.checks["samples_present"].summary == "no object in the lake for this day"
    assert all(report.checks[n].skipped and report.checks[n].passed for n in ("no_duplicates", "gaps", "value_ranges"))


def test_an_empty_day_only_warns(tmp_path: Path):
    ps = point_set()
    lake = LocalLake(tmp_path)
    synthetic_day(lake, ps, points=[])
    report = validate_day(lake, ps, DAY, ["SYN00000", "SYN00001"])
    assert (tmp_path / "point_set=plant/date=2024-01-02/all.parquet").is_file()
    assert report.status == "warn" and report.samples == 0
    assert statuses(report) == {"samples_present": (False, WARN), "no_duplicates": (True, ERROR),
                                "gaps": (True, WARN), "value_ranges": (True, WARN)}
    assert "no rows" in report.checks["samples_present"].summary


def test_expected_points_without_events_are_listed(tmp_path: Path):
    ps = point_set()
    lake = LocalLake(tmp_path)
    names = SyntheticConnector(ps.source).list_points()
    synthetic_day(lake, ps, points=names[:4])
    check = validate_day(lake, ps, DAY, [*names, "NOT_THERE"]).checks["samples_present"]
    assert (check.passed, check.severity) == (False, WARN)
    assert check.details["missing"] == ["SYN00004", "SYN00005", "NOT_THERE"] and check.details["missing_points"] == 3
    assert check.details["unexpected_points"] == 0
    assert "3 expected point(s) without events: SYN00004, SYN00005, NOT_THERE" == check.summary


def test_a_point_in_all_parquet_and_in_a_points_object_is_a_duplicate(tmp_path: Path):
    ps = point_set()
    lake = LocalLake(tmp_path)
    names = synthetic_day(lake, ps)
    again = ["SYN00003"]
    synthetic_day(lake, ps, points=again, group=layout.group_id(again))
    added = synthetic_day(lake, ps, points=[], group=layout.group_id(["SYN_EMPTY"]))  # an extra empty object
    assert added == []
    report = validate_day(lake, ps, DAY, names)
    per_point = dict(zip(*report.point_samples.to_pydict().values(), strict=True))
    check = report.checks["no_duplicates"]
    assert (check.passed, check.severity, report.status) == (False, ERROR, "fail")
    assert check.details["duplicate_rows"] == per_point["SYN00003"] // 2 and check.details["time_reversals"] == 0
    assert check.details["points"] == 1
    top = check.details["top"][0]
    assert top["point"] == "SYN00003"
    assert top["objects"] == ["all.parquet", f"points-{layout.group_id(again)}.parquet"]
    assert len(report.objects) == 3 and report.checks["samples_present"].passed


def test_a_point_written_twice_into_one_object_is_a_duplicate(tmp_path: Path):
    ps = point_set(source={"kind": "synthetic", "points": 2, "interval_seconds": 60})
    lake = LocalLake(tmp_path)
    handcrafted(lake, concat(every_minute("A"), every_minute("B"), every_minute("A")))
    check = validate_day(lake, ps, DAY, ["A", "B"]).checks["no_duplicates"]
    assert not check.passed and check.details["time_reversals"] == 1 and check.details["duplicate_rows"] == 0
    assert [t["point"] for t in check.details["top"]] == ["A"]


def test_equal_timestamps_are_not_duplicates(tmp_path: Path):
    ps = point_set(source={"kind": "synthetic", "points": 1, "interval_seconds": 60})
    lake = LocalLake(tmp_path)
    rows = every_minute("A")
    rows = {"point": rows["point"] + ["A", "A"], "ts": rows["ts"] + [rows["ts"][-1]] * 2}  # 3 events at 23:59
    handcrafted(lake, rows)
    assert validate_day(lake, ps, DAY, ["A"]).status == "pass"


def test_gaps_over_the_threshold_are_counted_with_the_largest_first(tmp_path: Path):
    ps = point_set(source={"kind": "synthetic", "points": 3, "interval_seconds": 60}, checks={"max_gap_seconds": 300})
    lake = LocalLake(tmp_path)
    # A misses 10:01..10:10 (a 660 s gap); B starts at 01:00 (3600 s from midnight); C has no gap.
    handcrafted(lake, concat(every_minute("A", skip=range(601, 611)), every_minute("B", skip=range(60)),
                             every_minute("C")))
    check = validate_day(lake, ps, DAY, ["A", "B", "C"]).checks["gaps"]
    assert (check.passed, check.severity) == (False, WARN)
    assert check.details["gaps"] == 2 and check.details["points"] == 2 and check.details["threshold_seconds"] == 300
    assert check.details["top"] == [
        {"point": "B", "gaps": 1, "largest_seconds": 3600.0, "from": "2024-01-02T00:00:00Z", "to": "2024-01-02T01:00:00Z"},
        {"point": "A", "gaps": 1, "largest_seconds": 660.0, "from": "2024-01-02T10:00:00Z", "to": "2024-01-02T10:11:00Z"},
    ]


def test_gap_threshold_defaults_to_three_intervals_and_is_skipped_without_one(tmp_path: Path):
    assert gap_threshold_seconds(point_set()) == 1800
    assert gap_threshold_seconds(point_set(checks={"max_gap_seconds": 90})) == 90
    pi = point_set(source={"kind": "pi_web_api", "base_url": "https://pi.example.com/piwebapi", "data_server": "S"})
    assert gap_threshold_seconds(pi) is None
    lake = LocalLake(tmp_path)
    handcrafted(lake, every_minute("A", skip=range(100, 900)))
    check = validate_day(lake, pi, DAY, ["A"]).checks["gaps"]
    assert check.passed and check.skipped and "max_gap_seconds" in check.summary


def test_values_outside_the_ranges_are_counted_per_rule(tmp_path: Path):
    ps = point_set(checks={"ranges": [
        {"points": "temp*", "min": 0, "max": 100},   # matches TEMP1 and TEMP2, case-insensitively
        {"points": "P?", "max": 10},
        {"points": "O'BRIEN*", "min": 0},            # a quote in a pattern is a value, not SQL
        {"points": "NOTHING*", "min": 0},
    ]})
    lake = LocalLake(tmp_path)
    handcrafted(lake, {
        "point": ["TEMP1"] * 5 + ["TEMP2"] * 2 + ["P1"] * 3 + ["P10"] * 2 + ["O'BRIEN"] * 2,
        "ts": [T0 + i * MIN for i in range(5)] + [T0, T0 + MIN] + [T0 + i * MIN for i in range(3)] + [T0, T0 + MIN] + [T0, T0 + MIN],
        "value": [-1.0, 50.0, 101.0, 150.0, None, 20.0, 30.0, 5.0, 11.0, 12.0, 99.0, 99.0, -3.0, 1.0],
        "good": [True, True, False, True, True, True, True, True, True, True, True, True, True, True],
    })
    check = validate_day(lake, ps, DAY).checks["value_ranges"]
    assert (check.passed, check.severity) == (False, WARN) and check.details["violations"] == 6
    rules = check.details["rules"]
    assert [(r["rule"], r["points"], r["values"], r["violations"], r["not_good"]) for r in rules] == [
        ("temp* in [0, 100]", 2, 6, 3, 1),
        ("P? in [-inf, 10]", 1, 3, 2, 0),
        ("O'BRIEN* in [0, inf]", 1, 2, 1, 0),
        ("NOTHING* in [0, inf]", 0, 0, 0, 0),
    ]
    assert rules[0]["top"] == [{"point": "TEMP1", "violations": 3, "min": -1.0, "max": 150.0}]
    assert check.summary.startswith("temp* in [0, 100]: 3 value(s) outside; P? in [-inf, 10]: 2")


def test_an_unreadable_object_fails(tmp_path: Path):
    ps = point_set()
    path = tmp_path / "point_set=plant/date=2024-01-02/all.parquet"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not parquet")
    report = validate_day(LocalLake(tmp_path), ps, DAY)
    assert statuses(report)["samples_present"] == (False, ERROR) and "cannot be read" in report.checks["samples_present"].summary


def test_validate_range_reports_every_day_in_order(tmp_path: Path):
    ps = point_set()
    lake = LocalLake(tmp_path)
    for d in (1, 2, 4):
        synthetic_day(lake, ps, dt.date(2024, 1, d))
    days = [dt.date(2024, 1, d) for d in range(1, 5)]
    reports = validate_range(lake, ps, days)
    assert [r.day for r in reports] == days and [r.status for r in reports] == ["pass", "pass", "fail", "pass"]
    points, counts, no_object = coverage_matrix(reports, ["SYN00000", "EXTRA"])
    assert points == ["EXTRA", *[f"SYN{i:05d}" for i in range(6)]]
    assert no_object.tolist() == [False, False, True, False]
    assert counts[0].tolist() == [0, 0, 0, 0] and np.all(counts[1:, [0, 1, 3]] > 100) and not counts[:, 2].any()


class FakeS3:
    """The part of the boto3 S3 client the lake and the validation use, over a folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def get_paginator(self, _: str) -> FakeS3:
        return self

    def paginate(self, Bucket: str, Prefix: str, Delimiter: str | None = None) -> list[dict[str, Any]]:
        files = sorted(p for p in (self.root / Bucket).rglob("*") if p.is_file())
        keys = [str(p.relative_to(self.root / Bucket)) for p in files]
        keys = [k for k in keys if k.startswith(Prefix) and not (Delimiter and Delimiter in k[len(Prefix):])]
        return [{"Contents": [{"Key": k} for k in keys]}]

    def download_file(self, bucket: str, key: str, filename: str) -> None:
        Path(filename).write_bytes((self.root / bucket / key).read_bytes())


def test_s3_objects_are_downloaded_and_checked_like_local_ones(tmp_path: Path):
    ps = point_set()
    names = synthetic_day(LocalLake(tmp_path / "bucket/lake"), ps)
    synthetic_day(LocalLake(tmp_path / "bucket/lake"), ps, points=names[:1], group=layout.group_id(names[:1]))
    lake = S3Lake("s3://bucket/lake", FakeS3(tmp_path))
    report = validate_range(lake, ps, [DAY], names)[0]
    assert report.objects == ["s3://bucket/lake/point_set=plant/date=2024-01-02/all.parquet",
                              f"s3://bucket/lake/point_set=plant/date=2024-01-02/points-{layout.group_id(names[:1])}.parquet"]
    assert report.checks["no_duplicates"].details["top"][0]["objects"] == [
        "all.parquet", f"points-{layout.group_id(names[:1])}.parquet"]
    assert validate_day(lake, ps, DAY, names).checks["no_duplicates"].details == report.checks["no_duplicates"].details


def invoke(*args: str):
    return CliRunner().invoke(validate_cmd, list(args), obj=Ctx(()), catch_exceptions=False)


@pytest.fixture
def plant_lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import yaml

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NAIA_LAKE_URL", str(tmp_path / "lake"))
    monkeypatch.delenv("NAIA_POINT_SETS", raising=False)
    path = tmp_path / "plant.yaml"
    path.write_text(yaml.safe_dump({"name": "plant", "source": {"kind": "synthetic", "points": 6, "interval_seconds": 600},
                                    "start_date": "2024-01-01", "sinks": ["parquet"]}))
    return path


def test_cli_exit_codes_and_coverage_picture(tmp_path: Path, plant_lake: Path):
    ps = point_set()
    lake = LocalLake(tmp_path / "lake")
    for d in (1, 2, 3):
        synthetic_day(lake, ps, dt.date(2024, 1, d))
    res = invoke(str(plant_lake), "--start", "2024-01-01", "--end", "2024-01-03", "--no-record")
    assert res.exit_code == 0, res.output
    assert res.output.count(" PASS ") == 3 and "samples_present" in res.output
    picture = tmp_path / "data/coverage-plant-2024-01-01-2024-01-03.png"
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    res = invoke(str(plant_lake), "--start", "2024-01-01", "--end", "2024-01-04", "--png", "out/c.png", "--no-record")
    assert res.exit_code == 1 and "2024-01-04  FAIL" in res.output and "no object in the lake" in res.output
    assert "1 day(s) failed an ERROR-level check: 2024-01-04" in res.output
    assert (tmp_path / "out/c.png").is_file()


@pytest.mark.parametrize("args, message", [
    (["--start", "2024-13-01"], "is not a date"),
    (["--start", "2024-01-05", "--end", "2024-01-02"], "is after --end"),
    (["--start", "2023-12-31"], "before the start_date"),
    (["--lake", "ftp://x/y"], "--lake"),
])
def test_cli_bad_input_exits_2(plant_lake: Path, args: list[str], message: str):
    res = invoke(str(plant_lake), *args, "--no-record")
    assert res.exit_code == 2 and message in res.output


def test_cli_unknown_point_set_and_no_lake_exit_2(tmp_path: Path, plant_lake: Path):
    assert invoke("nope", "--no-record").exit_code == 2
    kafka_only = tmp_path / "k.yaml"
    kafka_only.write_text(plant_lake.read_text().replace("- parquet", "- kafka").replace("name: plant", "name: k"))
    res = invoke(str(kafka_only), "--no-record")
    assert res.exit_code == 2 and "no Parquet lake" in res.output
