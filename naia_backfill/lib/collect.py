"""Forward collection in Dagster: for each point set whose source keeps no history (``poll_minutes`` in its
source settings, e.g. WAQI), a ``<name>_collect`` job that polls every station once and stages what it sees,
and a ``<name>_collect`` schedule running it every ``poll_minutes`` minutes, STOPPED like every schedule here.

Why every 15 minutes by default rather than hourly: the API serves only the newest reading, published 20-40
minutes after its hour; a station's reading is current for about an hour, give or take the spread of those
delays. One poll an hour at a fixed minute loses a reading whenever the next one is published before the poll
(it happens every day in +05:30 zones, where observations fall at hh:30 UTC); four polls an hour see each
reading at least twice, so one failed poll loses nothing. The cost is 4 x stations requests an hour, a few
percent of WAQI's 1000 requests a minute for a country's stations.

Each run records an observation on the point set's asset (stations polled, observations staged, requests,
values skipped, the stations' attributions). The point set's daily schedule then materializes each day, once
it is over, from the staged observations.

No ``from __future__ import annotations`` here: Dagster reads the op's context annotation.
"""

import datetime as dt
from typing import Any

import dagster as dg
import orjson

from naia_backfill.connectors import build_source
from naia_backfill.lib.copy_run import credentials_key
from naia_backfill.settings import PointSet


def collected_forward(point_sets: dict[str, PointSet]) -> list[PointSet]:
    """The point sets whose source must be polled forward (it has ``poll_minutes``)."""
    return [ps for ps in point_sets.values() if getattr(ps.source, "poll_minutes", None)]


def collect_cron(minutes: int) -> str:
    return "0 * * * *" if minutes >= 60 else f"*/{minutes} * * * *"


def polls_per_day(minutes: int) -> int:
    return 24 * 60 // minutes


def collect_metadata(report: Any, source: Any) -> dict[str, Any]:
    """What one poll did, and the attribution WAQI's terms require, for the asset's observation."""
    attributions = {}
    for uid in report.uids:
        info = source.staging.station(uid)
        if info:
            attributions[str(uid)] = {"name": info.get("name", ""), "attributions": info.get("attributions", [])}
    return {
        "stations": dg.MetadataValue.int(report.stations),
        "observations_staged": dg.MetadataValue.int(report.staged),
        "observations_already_staged": dg.MetadataValue.int(report.already),
        "stations_gone": dg.MetadataValue.json(report.stale),
        "values_skipped_dash": dg.MetadataValue.int(report.counts.dash),
        "values_skipped_missing": dg.MetadataValue.int(report.counts.missing),
        "requests": dg.MetadataValue.int(report.requests),
        "staging_area": dg.MetadataValue.text(source.staging.url),
        "attributions": dg.MetadataValue.json(orjson.loads(orjson.dumps(attributions))),
    }


def build_collect_job(ps: PointSet) -> dg.JobDefinition:
    key = credentials_key(ps)

    @dg.op(
        name=f"{ps.name}_poll", required_resource_keys={key} if key else set(),
        description=f"Poll every station of {ps.name} once and stage each observation in the lake.",
        tags={"naia/source": ps.source.kind},
    )
    def _collect(context: dg.OpExecutionContext) -> None:
        credentials = getattr(context.resources, key).credentials() if key else None
        with build_source(ps, credentials) as source:
            report = source.collect()  # type: ignore[attr-defined]
            metadata = collect_metadata(report, source)
        context.log_event(dg.AssetObservation(asset_key=dg.AssetKey(ps.name), metadata=metadata))
        context.log.info(f"{ps.name}: {report.stations} stations polled, {report.staged} new observation(s), "
                         f"{report.already} already staged, {report.requests} request(s)")  # fmt: skip

    @dg.job(name=f"{ps.name}_collect", description=f"Polls the stations of {ps.name} and stages their readings.",
            tags={"naia/point_set": ps.name, "naia/collect": "true"})  # fmt: skip
    def _job() -> None:
        _collect()

    return _job


def build_collect_schedule(ps: PointSet, job: dg.JobDefinition) -> dg.ScheduleDefinition:
    minutes = ps.source.poll_minutes  # type: ignore[union-attr]

    @dg.schedule(
        name=f"{ps.name}_collect", cron_schedule=collect_cron(minutes), execution_timezone="UTC", job=job,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description=f"Every {minutes} minutes: poll {ps.name}'s stations (its API keeps no history, so days are "
        "collected while they are current; the daily schedule materializes each day once it is over).",
    )
    def _schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        at = context.scheduled_execution_time or dt.datetime.now(dt.UTC)
        return dg.RunRequest(run_key=f"{ps.name}:collect:{at.astimezone(dt.UTC):%Y-%m-%dT%H:%M}",
                             tags={"naia/schedule": "collect"})  # fmt: skip

    return _schedule


def build_collect_definitions(point_sets: dict[str, PointSet]) -> tuple[list[dg.JobDefinition], list[dg.ScheduleDefinition]]:
    """The collect job and schedule of every point set collected forward."""
    jobs, schedules = [], []
    for ps in collected_forward(point_sets):
        job = build_collect_job(ps)
        jobs.append(job)
        schedules.append(build_collect_schedule(ps, job))
    return jobs, schedules
