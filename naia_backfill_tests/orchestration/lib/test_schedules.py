"""Each point set's schedule, evaluated at chosen times with build_schedule_context: what it targets and
which days it requests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg

from naia_backfill.lib.definitions import build_definitions
from naia_backfill.settings import load_point_set
from naia_backfill_tests.conftest import write_point_set

SETS = {
    "daily_a": {"schedule": "daily"},
    "daily_ended": {"schedule": "daily", "end_date": "2024-03-10"},
    "monthly_b": {"schedule": "monthly", "chunk_days": 30},
    "monthly_small": {"schedule": "monthly", "chunk_days": 7, "start_date": "2024-02-20"},
    "manual": {"schedule": "none"},
}


def definitions(folder: Path) -> dg.Definitions:
    return build_definitions({name: load_point_set(write_point_set(folder, name, **extra)) for name, extra in SETS.items()})


def tick(d: dg.Definitions, name: str, at: dt.datetime, instance=None):
    context = dg.build_schedule_context(
        scheduled_execution_time=at, instance=instance, repository_def=d.get_repository_def()
    )
    return d.get_schedule_def(name).evaluate_tick(context)


def ranges(result) -> list[tuple[str, str]]:
    return sorted((r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
                  for r in result.run_requests)


def test_each_point_set_has_the_schedule_it_chose_stopped_and_targeting_its_own_job(tmp_path: Path):
    d = definitions(tmp_path)
    repo = d.get_repository_def()
    assert sorted(s.name for s in repo.schedule_defs) == [
        "daily_a_daily", "daily_ended_daily", "monthly_b_monthly", "monthly_small_monthly"]  # manual: none
    for schedule in repo.schedule_defs:
        point_set = schedule.name.rsplit("_", 1)[0]
        assert schedule.job_name == f"{point_set}_job"
        assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED and schedule.execution_timezone == "UTC"
        assert repo.get_job(schedule.job_name).asset_layer.selected_asset_keys == {dg.AssetKey(point_set)}
    assert d.get_schedule_def("daily_a_daily").cron_schedule == "30 0 * * *"
    assert d.get_schedule_def("monthly_b_monthly").cron_schedule == "0 2 1 * *"


def test_daily_requests_the_newest_complete_day(tmp_path: Path):
    with dg.instance_for_test() as instance:
        result = tick(definitions(tmp_path), "daily_a_daily", dt.datetime(2024, 3, 15, 0, 30, tzinfo=dt.UTC), instance)
    assert [(r.partition_key, r.run_key) for r in result.run_requests] == [("2024-03-14", "daily_a:2024-03-14")]


def test_daily_after_an_ended_history_requests_nothing(tmp_path: Path):
    d = definitions(tmp_path)
    with dg.instance_for_test() as instance:
        inside = tick(d, "daily_ended_daily", dt.datetime(2024, 3, 10, 0, 30, tzinfo=dt.UTC), instance)
        after = tick(d, "daily_ended_daily", dt.datetime(2024, 3, 20, 0, 30, tzinfo=dt.UTC), instance)
    assert [r.partition_key for r in inside.run_requests] == ["2024-03-09"]
    assert after.run_requests == [] and "outside the history" in after.skip_message


def test_monthly_requests_the_previous_month_in_chunks(tmp_path: Path):
    d = definitions(tmp_path)
    with dg.instance_for_test() as instance:
        big = tick(d, "monthly_b_monthly", dt.datetime(2024, 3, 1, 2, tzinfo=dt.UTC), instance)
        small = tick(d, "monthly_small_monthly", dt.datetime(2024, 3, 1, 2, tzinfo=dt.UTC), instance)
    assert ranges(big) == [("2024-02-01", "2024-02-29")]  # 29 days <= chunk_days 30: one run
    assert ranges(small) == [("2024-02-20", "2024-02-26"), ("2024-02-27", "2024-02-29")]  # from its start_date
    assert all(r.run_key and r.tags["naia/schedule"] == "monthly" for r in [*big.run_requests, *small.run_requests])


def test_monthly_splits_a_31_day_month_and_skips_materialized_days(tmp_path: Path):
    d = definitions(tmp_path)
    with dg.instance_for_test() as instance:
        for day in ("2024-01-10", "2024-01-11"):
            instance.report_runless_asset_event(dg.AssetMaterialization("monthly_b", partition=day))
        result = tick(d, "monthly_b_monthly", dt.datetime(2024, 2, 1, 2, tzinfo=dt.UTC), instance)
    assert ranges(result) == [("2024-01-01", "2024-01-09"), ("2024-01-12", "2024-01-31")]


def test_monthly_with_nothing_to_do_skips(tmp_path: Path):
    with dg.instance_for_test() as instance:
        result = tick(definitions(tmp_path), "monthly_b_monthly", dt.datetime(2023, 6, 1, 2, tzinfo=dt.UTC), instance)
    assert result.run_requests == [] and "missing" in result.skip_message
