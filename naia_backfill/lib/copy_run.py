"""The body of a point-set asset run: copy its days one after another, record each as it finishes.

A run covers a range of days (``BackfillPolicy.multi_run(chunk_days)``). Each finished day is recorded at
once as its own materialization, so a run that fails on day 17 keeps days 1-16 materialized and names
day 17 in its error. A re-executed run skips the days its run group already finished.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import dagster as dg
from pydantic import Field

from naia_backfill.connectors import Source, build_source, resolve_points
from naia_backfill.core.daycopy import DayResult, copy_day
from naia_backfill.errors import DayFailedError
from naia_backfill.lib.checks import DayChecks
from naia_backfill.lib.metadata import day_metadata, run_metadata
from naia_backfill.settings import SINKS, PointSet
from naia_backfill.sinks import layout
from naia_backfill.sinks.base import DayTarget, Sink
from naia_backfill.sinks.lake import Lake
from naia_backfill.sinks.preflight import check_sinks


class PointSetRunConfig(dg.Config):
    """Run config of a point-set asset. Empty: every point of the point set, written as the day's
    ``all.parquet``. A list: only these points (points added at the source after their days were
    backfilled), written as the day's ``points-<group>.parquet`` beside what is already there."""

    points: list[str] = Field(default_factory=list, description="Fetch only these points (a point group).")


def credentials_key(point_set: PointSet) -> str | None:
    """The resource key of the point set's source credentials, if it has secrets."""
    return f"{point_set.name}_credentials" if point_set.secret_env() else None


def sink_resource_keys(point_set: PointSet) -> set[str]:
    """The resources the point set's sinks are built from (the lake too when a sink reads it)."""
    keys = {SINKS[s.kind].resource for s in point_set.sinks}
    if any(SINKS[s.kind].needs_lake for s in point_set.sinks):
        keys.add(SINKS["parquet"].resource)
    return keys


def build_sinks(point_set: PointSet, resources: Any) -> tuple[list[Sink], Lake | None]:
    """One writer per sink of the point set, each built by the resource its registry entry names, and the
    lake they write to (None without a lake)."""
    lake = resources.lake.lake() if hasattr(resources, "lake") else None
    return [getattr(resources, SINKS[s.kind].resource).sink(s, lake, point_set) for s in point_set.sinks], lake


def finished_in_run_group(context: dg.AssetExecutionContext, keys: list[str]) -> dict[str, str]:
    """Days of ``keys`` already materialized by an earlier run of this run's re-execution group.

    A re-executed run (from failure, or of a run killed mid-chunk and marked failed) skips them, so a
    retry re-fetches none of the days its parent finished. Returns day -> run id.
    """
    root = context.run.root_run_id or context.run.tags.get("dagster/root_run_id")
    if not root:
        return {}
    instance = context.instance
    group = {root} | {r.run_id for r in instance.get_runs(filters=dg.RunsFilter(tags={"dagster/root_run_id": root}))}
    group.discard(context.run.run_id)
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=context.asset_key, asset_partitions=keys), limit=10 * len(keys) + 100
    ).records
    return {r.partition_key: r.run_id for r in records if r.run_id in group and r.partition_key}


class CopyRun:
    """One run of a point-set asset over its partition range."""

    def __init__(self, context: dg.AssetExecutionContext, point_set: PointSet, config: PointSetRunConfig) -> None:
        self.context, self.point_set, self.config = context, point_set, config
        self.results: list[DayResult] = []
        self.failed: str | None = None
        self.points: list[str] = []

    def days(self) -> tuple[list[dt.date], dict[str, str]]:
        """The days to copy, and the days an earlier run of this run group already finished."""
        keys = list(self.context.partition_keys)
        finished = finished_in_run_group(self.context, keys)
        if finished:
            self.context.log.info(f"{len(finished)} day(s) already done by earlier runs of this run group; not fetched again")
        return [dt.date.fromisoformat(k) for k in keys if k not in finished], finished

    def execute(self) -> Iterator[dg.Output]:
        ctx, ps = self.context, self.point_set
        key = credentials_key(ps)
        credentials = getattr(ctx.resources, key).credentials() if key else None
        days, finished = self.days()
        started = time.perf_counter()
        checks = DayChecks(ctx, ps)
        try:
            with build_source(ps, credentials) as source, checks:
                if self.config.points:
                    self.points = source.resolve(names=self.config.points)
                else:
                    self.points = resolve_points(ps, source)
                ctx.log.info(f"{len(self.points)} points, {len(days)} day(s) from {source.description}")
                for day in sorted(finished):  # their planned check results are recorded too
                    checks.record(dt.date.fromisoformat(day), self.points)
                self.copy(source, days, checks)
        finally:
            elapsed = time.perf_counter() - started
            ctx.log_event(dg.AssetObservation(
                asset_key=ctx.asset_key, metadata=run_metadata(self.results, len(self.points), elapsed, self.failed),
            ))
        yield from checks.outputs()

    def copy(self, source: Source, days: list[dt.date], checks: DayChecks) -> None:
        ctx, ps = self.context, self.point_set
        group = layout.group_id(self.points) if self.config.points else None
        resources = ctx.resources
        check_sinks(ps, getattr(getattr(resources, "lake", None), "url", None),
                    getattr(getattr(resources, "duckdb", None), "database", None))
        sinks, lake = build_sinks(ps, resources)
        lake_url = lake.url if lake is not None and ps.sink("parquet") else None
        try:
            for day in days:
                stats = checks.stats(day) if group is None else None  # a point group is checked by re-reading
                try:
                    target = DayTarget(ps.name, day, ctx.run.run_id, group)
                    result = copy_day(source, self.points, sinks, target, stats=stats)
                except Exception as e:
                    self.failed = day.isoformat()
                    raise DayFailedError(ps.name, self.failed, e) from e
                self.results.append(result)
                ctx.log_event(dg.AssetMaterialization(
                    asset_key=ctx.asset_key, partition=day.isoformat(), metadata=day_metadata(result, group, lake_url),
                ))
                objects = [s.uri for s in result.sinks if s.sink == "parquet" and s.uri]
                checks.record(day, self.points, stats, objects)
        finally:
            for sink in sinks:
                sink.close()
