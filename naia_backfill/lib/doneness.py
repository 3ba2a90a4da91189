"""Which days are really done: recorded by Dagster *and* present in this lake as recorded.

A day counts as done for `naia-backfill run` only when its latest full-day materialization (and any point
group added after it) names objects that exist in the current lake with the recorded size — one stat or
HEAD per object. A day whose object was deleted, truncated or written to another lake is fetched again, and
the reason is said. Point sets without a Parquet lake rely on Dagster's record alone.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable

import dagster as dg

from naia_backfill.settings import PointSet
from naia_backfill.sinks.lake import Lake


@dataclasses.dataclass(frozen=True)
class RecordedObject:
    """An object a materialization says it wrote."""

    uri: str
    size: int | None


def _text(meta: dict, key: str) -> str | None:
    value = meta.get(key)
    return str(value.value) if value is not None else None


def recorded_objects(records: Iterable) -> list[RecordedObject] | None:
    """The objects that make up a day, from its materialization records (newest first): the latest full-day
    object and every point group written after it; None if no full day was recorded."""
    found = []
    for record in records:
        meta = record.asset_materialization.metadata if record.asset_materialization else {}
        uri = _text(meta, "parquet_uri")
        if uri:
            size = meta.get("parquet_bytes") or meta.get("bytes")
            found.append(RecordedObject(uri, int(size.value) if size is not None else None))
        if _text(meta, "point_group") in (None, "all"):
            return found
    return None


def day_records(instance: dg.DagsterInstance, point_set: PointSet, days: list[dt.date]) -> dict[dt.date, list]:
    """Materialization records of each of ``days``, newest first."""
    keys = [d.isoformat() for d in days]
    out: dict[dt.date, list] = defaultdict(list)
    for start in range(0, len(keys), 500):
        batch = keys[start:start + 500]
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(point_set.name), asset_partitions=batch),
            limit=20 * len(batch) + 100,
        ).records
        for record in records:
            out[dt.date.fromisoformat(record.partition_key)].append(record)
    for rows in out.values():
        rows.sort(key=lambda r: r.storage_id, reverse=True)
    return out


def audit(
    instance: dg.DagsterInstance, point_set: PointSet, days: list[dt.date], lake: Lake | None
) -> tuple[set[dt.date], dict[dt.date, str]]:
    """(days done, days recorded but not done in this lake -> why)."""
    done: set[dt.date] = set()
    stale: dict[dt.date, str] = {}
    records = day_records(instance, point_set, days)
    for day in days:
        rows = records.get(day)
        if not rows:
            continue
        if lake is None or point_set.sink("parquet") is None:
            done.add(day)
            continue
        reason = _why_not_done(recorded_objects(rows), lake)
        if reason:
            stale[day] = reason
        else:
            done.add(day)
    return done, stale


def _why_not_done(objects: list[RecordedObject] | None, lake: Lake) -> str | None:
    if not objects:
        return "recorded without a Parquet object"
    for obj in objects:
        if not obj.uri.startswith(lake.url.rstrip("/") + "/"):
            return f"recorded in another lake ({obj.uri}), not in {lake.url}"
        size = lake.object_size(obj.uri)
        if size is None:
            return f"its object {obj.uri} is missing"
        if obj.size is not None and size != obj.size:
            return f"its object {obj.uri} has {size:,} bytes, {obj.size:,} were written"
    return None
