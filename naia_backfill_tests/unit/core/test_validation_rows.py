"""Day checks of a table's own rows (the PostgreSQL source's ``shape: rows``): the day's object and its rows,
keys found twice with ``key_columns``, and no gap or range check (such a table has no points and times)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from naia_backfill.core.check_outcomes import ERROR, WARN
from naia_backfill.core.validation import validate_day, validate_range
from naia_backfill.settings import PointSet
from naia_backfill.sinks.base import DayTarget
from naia_backfill.sinks.lake import LocalLake
from naia_backfill.sinks.parquet import ParquetDaySink

DAY = dt.date(2024, 1, 2)
SCHEMA = pa.schema([("id", pa.int64()), ("email", pa.string()), ("created_at", pa.timestamp("us", tz="UTC"))])


def users(**source: Any) -> PointSet:
    return PointSet.model_validate({
        "name": "users", "start_date": "2024-01-01", "sinks": ["parquet"],
        "source": {"kind": "postgres", "dsn_env": "NAIA_PG_DSN", "table": "public.users",
                   "timestamp_column": "created_at", "shape": "rows", **source},
    })


def write_day(lake: LocalLake, ids: list[int], day: dt.date = DAY) -> None:
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    writer = ParquetDaySink(lake).open_day(DayTarget("users", day, schema=SCHEMA))
    if ids:
        writer.write(pa.RecordBatch.from_pydict({
            "id": ids, "email": [f"secret{i}@example.com" for i in ids],
            "created_at": [start + dt.timedelta(minutes=i) for i in range(len(ids))]}, schema=SCHEMA))
    writer.commit()


@pytest.fixture
def lake(tmp_path: Path) -> LocalLake:
    return LocalLake(str(tmp_path / "lake"))


def test_a_rows_day_counts_its_rows_and_finds_no_key_twice(lake: LocalLake):
    write_day(lake, list(range(1, 13)))
    report = validate_day(lake, users(key_columns=["id"]), DAY)
    assert report.status == "pass" and report.samples == 12 and len(report.objects) == 1
    present, dup = report.checks["samples_present"], report.checks["no_duplicates"]
    assert present.passed and present.summary == "12 rows" and present.details["rows"] == 12
    assert dup.passed and not dup.skipped and dup.summary == "no (id) twice"
    assert all(report.checks[n].skipped and report.checks[n].passed for n in ("gaps", "value_ranges"))
    assert report.point_samples.to_pylist() == [{"point": "public.users", "samples": 12}]


def test_keys_found_twice_fail_without_naming_the_rows(lake: LocalLake):
    write_day(lake, [1, 2, 2, 3, 3, 3, 4])
    report = validate_day(lake, users(key_columns=["id", "email"]), DAY)
    dup = report.checks["no_duplicates"]
    assert report.status == "fail" and not dup.passed and dup.severity == ERROR
    assert dup.details == {"key_columns": ["id", "email"], "duplicate_rows": 3, "duplicated_keys": 2}
    assert dup.summary == "3 row(s) repeat 2 value(s) of (id, email)" and "secret" not in repr(dup)


def test_without_key_columns_only_the_rows_are_checked(lake: LocalLake):
    write_day(lake, [1, 1])
    report = validate_day(lake, users(), DAY)
    assert report.status == "pass" and report.checks["no_duplicates"].skipped
    assert "key_columns" in report.checks["no_duplicates"].summary


def test_a_missing_day_fails_and_an_empty_one_warns(lake: LocalLake):
    write_day(lake, [], day=DAY + dt.timedelta(days=1))
    missing, empty = validate_range(lake, users(key_columns=["id"]), [DAY, DAY + dt.timedelta(days=1)])
    assert missing.status == "fail" and missing.checks["samples_present"].summary == "no object in the lake for this day"
    assert empty.status == "warn" and empty.checks["samples_present"].severity == WARN and empty.samples == 0
    assert empty.checks["no_duplicates"].passed and empty.points == 0
