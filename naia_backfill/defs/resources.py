"""Resources shared by every point set, plus each point set's source credentials."""

from __future__ import annotations

from typing import Any

from naia_backfill.lib.factory import credentials_key, credentials_resource
from naia_backfill.lib.resources import KafkaResource, LakeResource, QuestDBResource, duckdb_resource
from naia_backfill.settings import PointSet


def resources(point_sets: dict[str, PointSet]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "lake": LakeResource(), "duckdb": duckdb_resource(), "kafka": KafkaResource(), "questdb": QuestDBResource(),
    }
    for ps in point_sets.values():
        key = credentials_key(ps)
        if key:
            out[key] = credentials_resource(ps)
    return out
