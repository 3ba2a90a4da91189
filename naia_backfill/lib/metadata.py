"""Typed metadata of a point set's day materializations and of a run's summary observation."""

from __future__ import annotations

import json
from typing import Any

import dagster as dg

from naia_backfill.core.daycopy import DayResult


def _uri(uri: str) -> dg.MetadataValue:
    return dg.MetadataValue.url(uri) if "://" in uri else dg.MetadataValue.path(uri)


def day_metadata(result: DayResult, group: str | None, lake_url: str | None = None) -> dict[str, Any]:
    """What one day left behind: points, samples, bytes, time, rate, each sink's object (URI and size, which
    `naia-backfill run` checks before it skips a day) or table, and the lake it was written to."""
    meta: dict[str, Any] = {
        "points": dg.MetadataValue.int(result.points),
        "samples": dg.MetadataValue.int(result.samples),
        "bytes": dg.MetadataValue.int(result.bytes),
        "seconds": dg.MetadataValue.float(round(result.seconds, 3)),
        "samples_per_second": dg.MetadataValue.float(round(result.samples_per_second, 1)),
        "point_group": dg.MetadataValue.text(group or "all"),
    }
    if lake_url:
        meta["lake"] = dg.MetadataValue.text(lake_url)
    for k, v in result.metadata.items():  # the source's, e.g. waqi.attributions (JSON) and waqi.missing_hours
        meta[k] = dg.MetadataValue.json(json.loads(v)) if v[:1] in ("[", "{") else dg.MetadataValue.text(v)
    for key, value in result.source_stats.items():  # the engine's own counts (samples) win
        meta.setdefault(key, dg.MetadataValue.int(value))
    for sink in result.sinks:
        if sink.uri:
            meta[f"{sink.sink}_uri"] = _uri(sink.uri)
            meta[f"{sink.sink}_bytes"] = dg.MetadataValue.int(sink.bytes)
        for k, v in sink.extra.items():
            meta[f"{sink.sink}_{k}"] = v
    return meta


def run_metadata(results: list[DayResult], points: int, seconds: float, failed: str | None) -> dict[str, Any]:
    """The run's summary: days done, totals, rate, objects written, and the day that failed, if one did."""
    samples = sum(r.samples for r in results)
    meta: dict[str, Any] = {
        "days": dg.MetadataValue.int(len(results)),
        "points": dg.MetadataValue.int(points),
        "samples": dg.MetadataValue.int(samples),
        "bytes": dg.MetadataValue.int(sum(r.bytes for r in results)),
        "seconds": dg.MetadataValue.float(round(seconds, 3)),
        "samples_per_second": dg.MetadataValue.float(round(samples / seconds, 1) if seconds > 0 else 0.0),
    }
    uris = [u for r in results for u in r.uris]
    if uris:
        meta["object_uris"] = dg.MetadataValue.json(uris)
    if failed:
        meta["failed_day"] = dg.MetadataValue.text(failed)
    return meta
