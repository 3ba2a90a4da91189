"""The new-points sensor: points that appear at a source get their history, and only theirs.

For every point set that selects its points by ``name_filter`` (or a ``file`` of names), the sensor
lists the points at each tick and compares them with its cursor (JSON: point set -> sorted names). New
points are requested for the days already materialized, in runs of ``chunk_days`` days whose run config
names only the new points, so each such day gains a ``points-<group>.parquet`` object and nothing already
in the lake is fetched again. Days not yet materialized pick the new points up when they run. Points that
disappear are reported (log and an asset observation), never deleted. The first tick only records.
"""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg

from naia_backfill.connectors import build_source, resolve_points
from naia_backfill.errors import NaiaError
from naia_backfill.lib.factory import credentials_key
from naia_backfill.lib.partitions import contiguous_chunks, range_tags
from naia_backfill.lib.schedules import ASSET_JOB
from naia_backfill.settings import PointSet
from naia_backfill.sinks import layout


def watched(point_sets: dict[str, PointSet]) -> dict[str, PointSet]:
    return {n: ps for n, ps in point_sets.items() if ps.points.names is None}


def added_points_requests(ps: PointSet, added: list[str], days: list[dt.date]) -> list[dg.RunRequest]:
    group = layout.group_id(added)
    return [
        dg.RunRequest(
            run_key=f"{ps.name}:points-{group}:{chunk[0]}",
            asset_selection=[dg.AssetKey(ps.name)],
            run_config={"ops": {ps.name: {"config": {"points": added}}}},
            tags={**range_tags(chunk[0], chunk[-1]), "naia/point_group": group, "naia/sensor": "new_points"},
        )
        for chunk in contiguous_chunks(days, ps.chunk_days)
    ]


def evaluate(context: dg.SensorEvaluationContext, point_sets: dict[str, PointSet]) -> dg.SensorResult:
    cursor: dict[str, list[str]] = json.loads(context.cursor) if context.cursor else {}
    requests: list[dg.RunRequest] = []
    events: list[dg.AssetObservation] = []
    for ps in watched(point_sets).values():
        key = credentials_key(ps)
        credentials = getattr(context.resources, key).credentials() if key else None
        try:
            with build_source(ps, credentials) as source:
                current = sorted(resolve_points(ps, source))
        except NaiaError as e:
            context.log.warning(f"{ps.name}: cannot list points, trying again next tick: {e}")
            continue
        known = cursor.get(ps.name)
        cursor[ps.name] = current
        if known is None:
            context.log.info(f"{ps.name}: {len(current)} points recorded")
            continue
        added = sorted(set(current) - set(known))
        gone = sorted(set(known) - set(current))
        if gone:
            context.log.warning(f"{ps.name}: {len(gone)} point(s) no longer at the source (kept in the lake): {gone[:20]}")
            events.append(dg.AssetObservation(
                asset_key=dg.AssetKey(ps.name),
                metadata={"disappeared_points": dg.MetadataValue.json(gone), "disappeared_count": len(gone)},
            ))
        if added:
            done = context.instance.get_materialized_partitions(dg.AssetKey(ps.name))
            days = sorted(dt.date.fromisoformat(d) for d in done)
            context.log.info(f"{ps.name}: {len(added)} new point(s); their history for {len(days)} day(s)")
            requests.extend(added_points_requests(ps, added, days))
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor, sort_keys=True), asset_events=events)


def build_new_points_sensor(point_sets: dict[str, PointSet]) -> dg.SensorDefinition:
    resource_keys = {k for ps in watched(point_sets).values() if (k := credentials_key(ps))}

    @dg.sensor(
        name="new_points_sensor", job_name=ASSET_JOB, minimum_interval_seconds=300,
        required_resource_keys=resource_keys, default_status=dg.DefaultSensorStatus.STOPPED,
        description="Backfills the history of points that appear at a source (point sets selected by "
        "name_filter or file), for the days already materialized, without re-fetching other points.",
    )
    def new_points_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        return evaluate(context, point_sets)

    return new_points_sensor
