"""One asset per point set."""

from __future__ import annotations

import dagster as dg

from naia_backfill.lib.factory import build_point_set_asset
from naia_backfill.settings import PointSet


def point_set_assets(point_sets: dict[str, PointSet]) -> list[dg.AssetsDefinition]:
    return [build_point_set_asset(ps) for ps in point_sets.values()]
