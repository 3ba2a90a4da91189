"""The new-points sensor over every point set that selects its points by filter or file."""

from __future__ import annotations

import dagster as dg

from naia_backfill.lib.sensors import build_new_points_sensor
from naia_backfill.settings import PointSet


def sensors(point_sets: dict[str, PointSet]) -> list[dg.SensorDefinition]:
    return [build_new_points_sensor(point_sets)]
