"""The new-points sensor evaluated with build_sensor_context: the first tick records, a tick after points
appeared requests only their history, for the days already materialized, through the point set's job."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg

from naia_backfill.lib.definitions import build_definitions
from naia_backfill.settings import load_point_set
from naia_backfill_tests.conftest import write_point_set


def tick(folder: Path, instance: dg.DagsterInstance, cursor: str | None, points: int) -> dg.SensorResult:
    """One tick with the synthetic source offering ``points`` points; the tick's events are stored as the
    daemon stores them."""
    ps = load_point_set(write_point_set(folder, "plant", chunk_days=2,
                                        source={"kind": "synthetic", "points": points, "interval_seconds": 600}))
    d = build_definitions({ps.name: ps})
    sensor = d.get_sensor_def("new_points_sensor")
    with dg.build_sensor_context(instance=instance, cursor=cursor, definitions=d) as context:
        result = sensor.evaluate_tick(context)
    for event in result.asset_events:
        instance.report_runless_asset_event(event)
    return result


def test_new_points_get_their_history_for_materialized_days_only(tmp_path: Path):
    with dg.instance_for_test() as instance:
        first = tick(tmp_path, instance, None, points=6)
        assert first.run_requests == []  # the first tick only records
        cursor = json.loads(first.cursor)
        assert cursor["plant"]["count"] == 6

        for day in ("2024-01-01", "2024-01-02", "2024-01-03", "2024-01-05"):
            instance.report_runless_asset_event(dg.AssetMaterialization("plant", partition=day))
        same = tick(tmp_path, instance, first.cursor, points=6)
        assert same.run_requests == [] and same.cursor == first.cursor

        grown = tick(tmp_path, instance, first.cursor, points=8)
    requests = grown.run_requests
    assert {r.job_name for r in requests} == {"plant_job"}
    assert all(r.run_config == {"ops": {"plant": {"config": {"points": ["SYN00006", "SYN00007"]}}}} for r in requests)
    ranges = [(r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"]) for r in requests]
    assert ranges == [("2024-01-01", "2024-01-02"), ("2024-01-03", "2024-01-03"), ("2024-01-05", "2024-01-05")]
    assert json.loads(grown.cursor)["plant"]["count"] == 8


def test_disappeared_points_are_reported_not_requested(tmp_path: Path):
    with dg.instance_for_test() as instance:
        first = tick(tmp_path, instance, None, points=6)
        shrunk = tick(tmp_path, instance, first.cursor, points=4)
    assert shrunk.run_requests == []
    gone = [e for e in shrunk.asset_events if "disappeared_points" in e.metadata]
    assert gone[0].metadata["disappeared_points"].value == ["SYN00004", "SYN00005"]


def test_the_cursor_stays_small_for_ten_thousand_points(tmp_path: Path):
    with dg.instance_for_test() as instance:
        first = tick(tmp_path, instance, None, points=10_000)
        assert len(first.cursor) < 200
        grown = tick(tmp_path, instance, first.cursor, points=10_001)
    assert grown.run_requests == []  # nothing materialized yet: no history to fetch
    assert json.loads(grown.cursor)["plant"]["count"] == 10_001 and len(grown.cursor) < 200
    listing = [e for e in grown.asset_events if e.metadata.get("kind") and e.metadata["kind"].value == "points_listing"]
    assert len(listing[0].metadata["points"].value) == 10_001


def test_point_sets_with_named_points_are_not_watched(tmp_path: Path):
    ps = load_point_set(write_point_set(tmp_path, "named", points={"names": ["SYN00001"]}))
    assert list(build_definitions({ps.name: ps}).sensors or []) == []
