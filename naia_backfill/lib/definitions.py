"""Definitions of a set of point sets: per point set an asset, a job and (if it chose one) a schedule; the
new-points sensor; the sink resources and each point set's source credentials."""

from __future__ import annotations

from typing import Any

import dagster as dg

from naia_backfill.lib.collect import build_collect_definitions
from naia_backfill.lib.copy_run import credentials_key
from naia_backfill.lib.factory import build_point_set_asset, build_point_set_job
from naia_backfill.lib.resources import SourceCredentials, sink_resources
from naia_backfill.lib.schedules import build_schedules
from naia_backfill.lib.sensors import build_new_points_sensor
from naia_backfill.settings import PointSet


def credentials_resource(point_set: PointSet) -> SourceCredentials | None:
    """Secrets named by the point set, read from the environment when a run starts."""
    names = point_set.secret_env()
    return SourceCredentials(**{field: dg.EnvVar(env) for field, env in names.items()}) if names else None


def build_definitions(point_sets: dict[str, PointSet], lake_url: str | None = None) -> dg.Definitions:
    jobs = {name: build_point_set_job(ps) for name, ps in point_sets.items()}
    resources: dict[str, Any] = sink_resources(lake_url, point_sets)
    for ps in point_sets.values():
        if key := credentials_key(ps):
            resources[key] = credentials_resource(ps)
    sensor = build_new_points_sensor(point_sets, jobs)
    collect_jobs, collect_schedules = build_collect_definitions(point_sets)  # sources without history
    return dg.Definitions(
        assets=[build_point_set_asset(ps) for ps in point_sets.values()],
        jobs=list(jobs.values()) + collect_jobs,
        schedules=build_schedules(point_sets, jobs) + collect_schedules,
        sensors=[sensor] if sensor else [],
        resources=resources,
    )
