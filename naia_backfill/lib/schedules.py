"""Schedules that keep point sets current, one per point set that chose one (``schedule:`` in its YAML),
each targeting that point set's job, so the UI shows the schedule on the asset and the asset on the
schedule. They start STOPPED: switch them on in the UI (Automation) or with `dagster schedule start`,
once the history has been backfilled.

- ``<point set>_daily``, 00:30 UTC: the newest complete day;
- ``<point set>_monthly``, 02:00 UTC on the 1st: the previous month's days not yet materialized, in runs of
  ``chunk_days`` days (seed 001's monthly run).
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

from naia_backfill.lib.factory import AssetJob
from naia_backfill.lib.partitions import contiguous_chunks, partition_range_tags
from naia_backfill.settings import PointSet

DAILY_CRON, MONTHLY_CRON = "30 0 * * *", "0 2 1 * *"


def in_history(ps: PointSet, day: dt.date) -> bool:
    return ps.start_date <= day and (ps.end_date is None or day <= ps.end_date)


def monthly_requests(ps: PointSet, now: dt.datetime, done: set[str]) -> list[dg.RunRequest]:
    """The previous month's days of ``ps`` not in ``done``, in runs of at most ``chunk_days`` days."""
    first_this_month = now.astimezone(dt.UTC).date().replace(day=1)
    last = first_this_month - dt.timedelta(days=1)
    month = [last.replace(day=1) + dt.timedelta(days=i) for i in range(last.day)]
    days = [d for d in month if in_history(ps, d) and d.isoformat() not in done]
    return [
        dg.RunRequest(run_key=f"{ps.name}:{chunk[0]}..{chunk[-1]}",
                      tags={**partition_range_tags(chunk[0], chunk[-1]), "naia/schedule": "monthly"})
        for chunk in contiguous_chunks(days, ps.chunk_days)
    ]


def daily_request(ps: PointSet, now: dt.datetime) -> dg.RunRequest | None:
    """The newest complete UTC day, if it is in the point set's history."""
    day = now.astimezone(dt.UTC).date() - dt.timedelta(days=1)
    if not in_history(ps, day):
        return None
    return dg.RunRequest(run_key=f"{ps.name}:{day}", partition_key=day.isoformat(), tags={"naia/schedule": "daily"})


def daily_schedule(ps: PointSet, job: AssetJob) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=f"{ps.name}_daily", cron_schedule=DAILY_CRON, execution_timezone="UTC", target=job,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description=f"Every day at 00:30 UTC: the newest complete day of {ps.name}.",
    )
    def _daily(context: dg.ScheduleEvaluationContext):
        request = daily_request(ps, context.scheduled_execution_time)
        return request or dg.SkipReason(f"yesterday is outside the history of {ps.name}")

    return _daily


def monthly_schedule(ps: PointSet, job: AssetJob) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=f"{ps.name}_monthly", cron_schedule=MONTHLY_CRON, execution_timezone="UTC", target=job,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description=f"On the 1st at 02:00 UTC: the previous month's missing days of {ps.name}, in runs of "
        f"{ps.chunk_days} days.",
    )
    def _monthly(context: dg.ScheduleEvaluationContext):
        done = context.instance.get_materialized_partitions(dg.AssetKey(ps.name))
        requests = monthly_requests(ps, context.scheduled_execution_time, done)
        return requests or dg.SkipReason(f"no day of the previous month of {ps.name} is missing")

    return _monthly


def build_schedules(point_sets: dict[str, PointSet], jobs: dict[str, AssetJob]) -> list:
    """Each point set's schedule, targeting its job; ``schedule: none`` gets none."""
    out = []
    for name, ps in point_sets.items():
        if ps.schedule == "daily":
            out.append(daily_schedule(ps, jobs[name]))
        elif ps.schedule == "monthly":
            out.append(monthly_schedule(ps, jobs[name]))
    return out
