"""Schedules that keep point sets current: one daily, one monthly, each covering every point set that
chose it (``schedule: daily|monthly`` in its YAML). Both start STOPPED: switch them on in the UI
(Automation) or with `dagster schedule start`, once the history has been backfilled.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

from naia_backfill.lib.partitions import contiguous_chunks, range_tags
from naia_backfill.settings import PointSet

#: The code location's implicit asset job: it holds every point-set asset, whatever their partitions,
#: so one schedule can request runs of any of them (a job per point set would not scale).
ASSET_JOB = "__ASSET_JOB"


def in_history(ps: PointSet, day: dt.date) -> bool:
    return ps.start_date <= day and (ps.end_date is None or day <= ps.end_date)


def daily_requests(point_sets: dict[str, PointSet], now: dt.datetime) -> list[dg.RunRequest]:
    """The newest complete UTC day of every daily point set."""
    day = now.astimezone(dt.UTC).date() - dt.timedelta(days=1)
    return [
        dg.RunRequest(run_key=f"{ps.name}:{day}", asset_selection=[dg.AssetKey(ps.name)],
                      partition_key=day.isoformat(), tags={"naia/schedule": "daily"})
        for ps in point_sets.values()
        if ps.schedule == "daily" and in_history(ps, day)
    ]


def monthly_requests(
    point_sets: dict[str, PointSet], now: dt.datetime, instance: dg.DagsterInstance | None
) -> list[dg.RunRequest]:
    """The previous month's days not yet materialized, in runs of at most ``chunk_days`` days."""
    first_this_month = now.astimezone(dt.UTC).date().replace(day=1)
    last = first_this_month - dt.timedelta(days=1)
    month = [last.replace(day=1) + dt.timedelta(days=i) for i in range(last.day)]
    requests = []
    for ps in point_sets.values():
        if ps.schedule != "monthly":
            continue
        done = instance.get_materialized_partitions(dg.AssetKey(ps.name)) if instance else set()
        days = [d for d in month if in_history(ps, d) and d.isoformat() not in done]
        for chunk in contiguous_chunks(days, ps.chunk_days):
            requests.append(dg.RunRequest(
                run_key=f"{ps.name}:{chunk[0]}..{chunk[-1]}", asset_selection=[dg.AssetKey(ps.name)],
                tags={**range_tags(chunk[0], chunk[-1]), "naia/schedule": "monthly"},
            ))
    return requests


def build_schedules(point_sets: dict[str, PointSet]) -> list[dg.ScheduleDefinition]:
    @dg.schedule(
        name="daily_backfill", cron_schedule="30 0 * * *", execution_timezone="UTC", job_name=ASSET_JOB,
        description="Every day at 00:30 UTC: the newest complete day of each point set with schedule: daily.",
    )
    def daily_backfill(context: dg.ScheduleEvaluationContext):
        requests = daily_requests(point_sets, context.scheduled_execution_time)
        return requests or dg.SkipReason("no point set has schedule: daily and that day in its history")

    @dg.schedule(
        name="monthly_backfill", cron_schedule="0 2 1 * *", execution_timezone="UTC", job_name=ASSET_JOB,
        description="On the 1st at 02:00 UTC: the previous month's missing days of each point set with "
        "schedule: monthly, in runs of chunk_days days.",
    )
    def monthly_backfill(context: dg.ScheduleEvaluationContext):
        requests = monthly_requests(point_sets, context.scheduled_execution_time, context.instance)
        return requests or dg.SkipReason("nothing missing in the previous month")

    return [daily_backfill, monthly_backfill]
