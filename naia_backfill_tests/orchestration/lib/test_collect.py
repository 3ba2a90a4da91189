"""Collect jobs and schedules: one per point set collected forward, STOPPED, at its poll cadence."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from naia_backfill.lib.collect import collect_cron, polls_per_day
from naia_backfill.lib.definitions import build_definitions
from naia_backfill.settings import load_point_set
from naia_backfill_tests.conftest import write_point_set


def waqi(tmp_path, name: str = "air", **source: object):
    src = {"kind": "waqi", "token_env": "NAIA_WAQI_TOKEN", "uids": [1583, -475705], **source}
    return load_point_set(write_point_set(tmp_path, name, source=src, points={"name_filter": "*"},
                                          sinks=["parquet"]))


def test_a_waqi_point_set_gets_a_stopped_collect_schedule_at_its_cadence(tmp_path):
    ps, plain = waqi(tmp_path, poll_minutes=30), load_point_set(write_point_set(tmp_path, "plant"))
    repo = build_definitions({ps.name: ps, plain.name: plain}).get_repository_def()
    schedule = repo.get_schedule_def("air_collect")
    assert schedule.cron_schedule == "*/30 * * * *" and schedule.job_name == "air_collect"
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert {s.name for s in repo.schedule_defs} == {"air_collect", "air_daily", "plant_daily"}
    assert not any(j.name == "plant_collect" for j in repo.get_all_jobs())
    at = dt.datetime(2024, 1, 15, 3, 30, tzinfo=dt.UTC)
    request = schedule.evaluate_tick(dg.build_schedule_context(scheduled_execution_time=at)).run_requests[0]
    assert request.run_key == "air:collect:2024-01-15T03:30"


def test_the_collect_job_needs_the_token_resource(tmp_path):
    ps = waqi(tmp_path)
    job = build_definitions({ps.name: ps}).resolve_job_def("air_collect")
    assert "air_credentials" in job.required_resource_keys


def test_cadence():
    assert collect_cron(60) == "0 * * * *" and collect_cron(15) == "*/15 * * * *"
    assert polls_per_day(15) == 96
