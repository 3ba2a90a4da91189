"""The daily and monthly schedules over every point set."""

from __future__ import annotations

import dagster as dg

from naia_backfill.lib.schedules import build_schedules
from naia_backfill.settings import PointSet


def schedules(point_sets: dict[str, PointSet]) -> list[dg.ScheduleDefinition]:
    return build_schedules(point_sets)
