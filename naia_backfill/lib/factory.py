"""The point-set factory: each point set becomes exactly one daily-partitioned asset.

A run covers a range of days (``BackfillPolicy.multi_run(chunk_days)``) and copies them one after
another. Each finished day is recorded at once as its own materialization (with its own metadata), so a
run that fails on day 17 keeps days 1-16 materialized and names day 17 in its error.
"""


import datetime as dt
import time
import warnings
from typing import Any

import dagster as dg
from pydantic import Field

from naia_backfill.connectors import build_source, resolve_points
from naia_backfill.daycopy import DayResult, copy_day
from naia_backfill.errors import DayFailedError
from naia_backfill.lib.checks import DayChecks, check_specs
from naia_backfill.lib.partitions import daily_partitions
from naia_backfill.lib.resources import SourceCredentials, duckdb_connect
from naia_backfill.settings import PointSet
from naia_backfill.sinks import layout
from naia_backfill.sinks.base import DayTarget, Sink
from naia_backfill.sinks.duckdb import DuckDBViewSink
from naia_backfill.sinks.parquet import ParquetDaySink

# BackfillPolicy is marked beta, but it is what chunks a backfill into runs of chunk_days days.
warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*backfill_policy.*")

SINK_RESOURCE = {"parquet": "lake", "duckdb": "duckdb", "kafka": "kafka", "questdb": "questdb"}


class PointSetRunConfig(dg.Config):
    """Run config of a point-set asset. Empty: every point of the point set, written as the day's
    ``all.parquet``. A list: only these points (points added at the source after their days were
    backfilled), written as the day's ``points-<group>.parquet`` beside what is already there."""

    points: list[str] = Field(default_factory=list, description="Fetch only these points (a point group).")


def credentials_key(point_set: PointSet) -> str | None:
    return f"{point_set.name}_credentials" if point_set.secret_env() else None


def credentials_resource(point_set: PointSet) -> SourceCredentials | None:
    """Secrets named by the point set, read from the environment when a run starts."""
    names = point_set.secret_env()
    return SourceCredentials(**{field: dg.EnvVar(env) for field, env in names.items()}) if names else None


def build_sinks(point_set: PointSet, resources: Any) -> list[Sink]:
    sinks: list[Sink] = []
    for settings in point_set.sinks:
        if settings.kind == "parquet":
            sinks.append(ParquetDaySink(resources.lake.lake(), settings))
        elif settings.kind == "duckdb":
            sinks.append(DuckDBViewSink(resources.lake.lake(), duckdb_connect(resources.duckdb)))
        else:
            sinks.append(getattr(resources, SINK_RESOURCE[settings.kind]).sink(settings))
    return sinks


def day_metadata(result: DayResult) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "points": result.points,
        "samples": result.samples,
        "bytes": result.bytes,
        "seconds": round(result.seconds, 3),
        "samples_per_s": round(result.samples_per_second, 1),
    }
    for sink in result.sinks:
        if sink.uri:
            meta[f"{sink.sink}_uri"] = dg.MetadataValue.path(sink.uri)
        for k, v in sink.extra.items():
            meta[f"{sink.sink}_{k}"] = v
    return meta


def run_metadata(results: list[DayResult], points: int, seconds: float, failed: str | None) -> dict[str, Any]:
    samples = sum(r.samples for r in results)
    return {
        "days": len(results),
        "failed_day": failed or "",
        "points": points,
        "samples": samples,
        "bytes": sum(r.bytes for r in results),
        "seconds": round(seconds, 3),
        "samples_per_s": round(samples / seconds, 1) if seconds > 0 else 0.0,
        "object_uris": dg.MetadataValue.json([u for r in results for u in r.uris]),
    }


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


def build_point_set_asset(point_set: PointSet) -> dg.AssetsDefinition:
    ps = point_set
    creds_key = credentials_key(ps)
    resource_keys = {SINK_RESOURCE[s.kind] for s in ps.sinks} | ({"lake"} if ps.sink("duckdb") else set())
    if creds_key:
        resource_keys.add(creds_key)
    sink_kinds = [s.kind for s in ps.sinks]

    @dg.asset(
        name=ps.name,
        group_name=ps.name,
        description=ps.description or f"History of the {ps.name} point set, one partition per UTC day.",
        partitions_def=daily_partitions(ps),
        backfill_policy=dg.BackfillPolicy.multi_run(ps.chunk_days),
        pool=ps.source.pool_name,
        kinds={ps.source.kind, *sink_kinds},
        tags={"naia/source": ps.source.kind, **ps.tags},
        metadata={
            "point_set_file": str(ps.path) if ps.path else "",
            "source": ps.source.kind,
            "sinks": ", ".join(sink_kinds),
            "chunk_days": ps.chunk_days,
        },
        required_resource_keys=resource_keys,
        output_required=False,
        check_specs=check_specs(ps),
    )
    def _asset(context: dg.AssetExecutionContext, config: PointSetRunConfig):
        credentials = getattr(context.resources, creds_key).credentials() if creds_key else None
        days = [dt.date.fromisoformat(k) for k in context.partition_keys]
        finished = finished_in_run_group(context, list(context.partition_keys))
        if finished:
            context.log.info(f"{len(finished)} day(s) already done by earlier runs of this run group; not fetched again")
            days = [d for d in days if d.isoformat() not in finished]
        started = time.perf_counter()
        results: list[DayResult] = []
        failed: str | None = None
        points: list[str] = []
        checks = DayChecks(context, ps)
        try:
            with build_source(ps, credentials) as source, checks:
                points = source.resolve(names=config.points) if config.points else resolve_points(ps, source)
                group = layout.group_id(points) if config.points else None
                context.log.info(f"{len(points)} points, {len(days)} day(s) from {source.description}")
                for key in sorted(finished):  # their planned check results are recorded too
                    checks.record(dt.date.fromisoformat(key), points)
                sinks = build_sinks(ps, context.resources)
                try:
                    for day in days:
                        try:
                            target = DayTarget(ps.name, day, context.run.run_id, group)
                            result = copy_day(source, points, sinks, target)
                        except Exception as e:
                            failed = day.isoformat()
                            raise DayFailedError(ps.name, failed, e) from e
                        results.append(result)
                        context.log_event(
                            dg.AssetMaterialization(
                                asset_key=context.asset_key, partition=day.isoformat(),
                                metadata={**day_metadata(result), "point_group": group or "all"},
                            )
                        )
                        context.log.info(
                            f"{day}: {result.samples} samples in {result.seconds:.1f}s "
                            f"({result.samples_per_second:,.0f}/s)"
                        )
                        checks.record(day, points)
                finally:
                    for sink in sinks:
                        sink.close()
        finally:
            context.log_event(
                dg.AssetObservation(
                    asset_key=context.asset_key,
                    metadata=run_metadata(results, len(points), time.perf_counter() - started, failed),
                )
            )
        yield from checks.outputs()

    return _asset
