"""The daily and monthly schedules, evaluated at chosen times with build_schedule_context."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg

from naia_backfill.definitions import build_definitions
from naia_backfill.settings import load_point_set
from naia_backfill_tests.conftest import write_point_set


def definitions(folder: Path) -> dg.Definitions:
    sets = {}
    for name, extra in {
        "daily_a": {"schedule": "daily"},
        "daily_ended": {"schedule": "daily", "end_date": "2024-03-10"},
        "monthly_b": {"schedule": "monthly", "chunk_days": 30},
        "monthly_small": {"schedule": "monthly", "chunk_days": 7, "start_date": "2024-02-20"},
        "manual": {"schedule": "none"},
    }.items():
        sets[name] = load_point_set(write_point_set(folder, name, **extra))
    return build_definitions(sets)


def tick(d: dg.Definitions, name: str, at: dt.datetime, instance=None):
    context = dg.build_schedule_context(
        scheduled_execution_time=at, instance=instance, repository_def=d.get_repository_def()
    )
    return d.get_schedule_def(name).evaluate_tick(context)


def test_schedules_are_stopped_by_default_and_target_the_asset_job(tmp_path: Path):
    d = definitions(tmp_path)
    for name, cron in (("daily_backfill", "30 0 * * *"), ("monthly_backfill", "0 2 1 * *")):
        schedule = d.get_schedule_def(name)
        assert schedule.cron_schedule == cron and schedule.execution_timezone == "UTC"
        assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
        assert schedule.job_name == "__ASSET_JOB"


def test_daily_requests_the_newest_complete_day_of_daily_point_sets(tmp_path: Path):
    result = tick(definitions(tmp_path), "daily_backfill", dt.datetime(2024, 3, 15, 0, 30, tzinfo=dt.UTC))
    requests = sorted(result.run_requests, key=lambda r: r.run_key)
    assert [(r.run_key, r.partition_key, r.asset_selection) for r in requests] == [
        ("daily_a:2024-03-14", "2024-03-14", [dg.AssetKey("daily_a")]),
    ]  # daily_ended ended on 2024-03-10; monthly and manual point sets are not daily
    again = tick(definitions(tmp_path), "daily_backfill", dt.datetime(2024, 3, 15, 0, 30, tzinfo=dt.UTC))
    assert [r.run_key for r in again.run_requests] == ["daily_a:2024-03-14"]  # same tick, same run key


def test_daily_inside_an_ended_history(tmp_path: Path):
    result = tick(definitions(tmp_path), "daily_backfill", dt.datetime(2024, 3, 10, 0, 30, tzinfo=dt.UTC))
    assert sorted(r.run_key for r in result.run_requests) == ["daily_a:2024-03-09", "daily_ended:2024-03-09"]


def test_monthly_requests_the_previous_month_in_chunks(tmp_path: Path):
    with dg.instance_for_test() as instance:
        result = tick(definitions(tmp_path), "monthly_backfill", dt.datetime(2024, 3, 1, 2, tzinfo=dt.UTC), instance)
    got = {(r.asset_selection[0].to_user_string(), r.tags["dagster/asset_partition_range_start"],
            r.tags["dagster/asset_partition_range_end"]) for r in result.run_requests}
    assert got == {
        ("monthly_b", "2024-02-01", "2024-02-29"),  # 29 days <= chunk_days 30: one run
        ("monthly_small", "2024-02-20", "2024-02-26"),  # starts 2024-02-20, 7-day chunks
        ("monthly_small", "2024-02-27", "2024-02-29"),
    }
    assert all(r.run_key and r.tags["naia/schedule"] == "monthly" for r in result.run_requests)


def test_monthly_splits_a_31_day_month_and_skips_materialized_days(tmp_path: Path):
    d = definitions(tmp_path)
    with dg.instance_for_test() as instance:
        for day in ("2024-01-10", "2024-01-11"):
            instance.report_runless_asset_event(dg.AssetMaterialization("monthly_b", partition=day))
        result = tick(d, "monthly_backfill", dt.datetime(2024, 2, 1, 2, tzinfo=dt.UTC), instance)
    ranges = sorted((r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
                    for r in result.run_requests if r.asset_selection == [dg.AssetKey("monthly_b")])
    assert ranges == [("2024-01-01", "2024-01-09"), ("2024-01-12", "2024-01-31")]


def test_monthly_with_nothing_to_do_skips(tmp_path: Path):
    with dg.instance_for_test() as instance:
        result = tick(definitions(tmp_path), "monthly_backfill", dt.datetime(2023, 6, 1, 2, tzinfo=dt.UTC), instance)
    assert result.run_requests == [] and "nothing missing" in result.skip_message
