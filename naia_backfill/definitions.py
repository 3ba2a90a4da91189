"""The code location: every point set in naia_backfill/point_sets/ and in $NAIA_POINT_SETS."""

from __future__ import annotations

import dagster as dg

from naia_backfill.defs import assets, resources, schedules, sensors
from naia_backfill.settings import PointSet, extra_locations, load_point_sets


def build_definitions(point_sets: dict[str, PointSet]) -> dg.Definitions:
    return dg.Definitions(
        assets=assets.point_set_assets(point_sets),
        resources=resources.resources(point_sets),
        schedules=schedules.schedules(point_sets),
        sensors=sensors.sensors(point_sets),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(load_point_sets(extra_locations()))
