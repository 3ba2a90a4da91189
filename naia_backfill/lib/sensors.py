"""The new-points sensor: points that appear at a source get their history, and only theirs.

For every point set that selects its points by ``name_filter`` (or a ``file`` of names), the sensor lists
the points at each tick. Its cursor holds, per point set, a digest and a count of the points seen, so it
stays small for any number of points; the list itself is kept as an asset observation (``points_listing``)
whenever it changes, and read back by digest on the next change. New points are requested for the days
already materialized, in runs of ``chunk_days`` days of the point set's job whose run config names only the
new points, so each such day gains a ``points-<group>.parquet`` object and nothing already in the lake is
fetched again. Days not yet materialized pick the new points up when they run. Points that disappear are
reported (log and an asset observation), never deleted. The first tick only records.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import dagster as dg

from naia_backfill.connectors import build_source, resolve_points
from naia_backfill.errors import NaiaError
from naia_backfill.lib.copy_run import credentials_key
from naia_backfill.lib.factory import job_name
from naia_backfill.lib.partitions import contiguous_chunks, partition_range_tags
from naia_backfill.settings import PointSet
from naia_backfill.sinks import layout

LISTING = "points_listing"


def watched(point_sets: dict[str, PointSet]) -> dict[str, PointSet]:
    return {n: ps for n, ps in point_sets.items() if ps.points.names is None}


def digest(points: list[str]) -> str:
    return hashlib.sha256("\n".join(points).encode("utf-8")).hexdigest()[:32]


def listing_event(ps: PointSet, points: list[str]) -> dg.AssetObservation:
    """The point list as seen at the source, kept in the instance for the next comparison."""
    return dg.AssetObservation(asset_key=dg.AssetKey(ps.name), metadata={
        "kind": dg.MetadataValue.text(LISTING), "points_digest": dg.MetadataValue.text(digest(points)),
        "point_count": dg.MetadataValue.int(len(points)), "points": dg.MetadataValue.json(points),
    })


def recorded_listing(instance: dg.DagsterInstance, ps: PointSet, wanted: str) -> list[str] | None:
    """The point list whose digest is ``wanted``, from the asset's recent observations."""
    records = instance.fetch_observations(dg.AssetKey(ps.name), limit=50).records
    for record in records:
        meta = record.asset_observation.metadata if record.asset_observation else {}
        if meta.get("kind") and meta["kind"].value == LISTING and meta["points_digest"].value == wanted:
            return list(meta["points"].value)
    return None


def added_points_requests(ps: PointSet, added: list[str], days: list[dt.date]) -> list[dg.RunRequest]:
    group = layout.group_id(added)
    return [
        dg.RunRequest(
            run_key=f"{ps.name}:points-{group}:{chunk[0]}", job_name=job_name(ps),
            run_config={"ops": {ps.name: {"config": {"points": added}}}},
            tags={**partition_range_tags(chunk[0], chunk[-1]), "naia/point_group": group, "naia/sensor": "new_points"},
        )
        for chunk in contiguous_chunks(days, ps.chunk_days)
    ]


def compare(context: dg.SensorEvaluationContext, ps: PointSet, current: list[str], known: dict) -> tuple[list, list]:
    """Requests and events for one point set whose listing changed since ``known`` (digest, count)."""
    previous = recorded_listing(context.instance, ps, known["digest"])
    events: list = [listing_event(ps, current)]
    if previous is None:
        context.log.warning(f"{ps.name}: the previous point list is no longer recorded; {len(current)} points recorded")
        return [], events
    added, gone = sorted(set(current) - set(previous)), sorted(set(previous) - set(current))
    if gone:
        context.log.warning(f"{ps.name}: {len(gone)} point(s) no longer at the source (kept in the lake): {gone[:20]}")
        events.append(dg.AssetObservation(asset_key=dg.AssetKey(ps.name), metadata={
            "disappeared_points": dg.MetadataValue.json(gone), "disappeared_count": dg.MetadataValue.int(len(gone)),
        }))
    if not added:
        return [], events
    done = context.instance.get_materialized_partitions(dg.AssetKey(ps.name))
    days = sorted(dt.date.fromisoformat(d) for d in done)
    context.log.info(f"{ps.name}: {len(added)} new point(s); their history for {len(days)} day(s)")
    return added_points_requests(ps, added, days), events


def evaluate(context: dg.SensorEvaluationContext, point_sets: dict[str, PointSet]) -> dg.SensorResult:
    cursor: dict[str, dict] = json.loads(context.cursor) if context.cursor else {}
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
        cursor[ps.name] = {"digest": digest(current), "count": len(current)}
        if known is None:
            context.log.info(f"{ps.name}: {len(current)} points recorded")
            events.append(listing_event(ps, current))
        elif known["digest"] != cursor[ps.name]["digest"]:
            new_requests, new_events = compare(context, ps, current, known)
            requests += new_requests
            events += new_events
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor, sort_keys=True), asset_events=events)


def build_new_points_sensor(point_sets: dict[str, PointSet], jobs: dict) -> dg.SensorDefinition | None:
    """The sensor over the point sets that select points by filter or file; None when there are none."""
    targets = watched(point_sets)
    if not targets:
        return None
    resource_keys = {k for ps in targets.values() if (k := credentials_key(ps))}

    @dg.sensor(
        name="new_points_sensor", jobs=[jobs[name] for name in targets], minimum_interval_seconds=300,
        required_resource_keys=resource_keys, default_status=dg.DefaultSensorStatus.STOPPED,
        description="Backfills the history of points that appear at a source (point sets selected by "
        "name_filter or file), for the days already materialized, without re-fetching other points.",
    )
    def new_points_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        return evaluate(context, point_sets)

    return new_points_sensor
