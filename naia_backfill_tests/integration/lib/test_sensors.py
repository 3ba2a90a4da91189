"""The new-points sensor against the PI Web API simulator: a point added while it serves gets its history
for the days already in the lake, and only that point is fetched."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow.compute as pc
import pytest

from naia_backfill.lib.definitions import build_definitions
from naia_backfill.lib.partitions import partition_range_tags
from naia_backfill.settings import load_point_set
from naia_backfill.dev.simulators.pi_web_api.simulator import PiSimulator, SimPoint, serve
from naia_backfill.sinks import layout
from naia_backfill_tests.conftest import write_point_set

pytestmark = pytest.mark.integration
DAYS = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(3)]


def recorded_webids(sim: PiSimulator) -> set[str]:
    ids: set[str] = set()
    for entry in sim.request_log:
        if entry["path"].endswith("/streamsets/recorded"):
            ids.update(v for k, v in entry["query"] if k == "webId")
    return ids


def test_new_point_history_is_added_to_materialized_days_only(workdir: Path):
    sim = PiSimulator(seed=3, points=[SimPoint("PLANT.A1", interval_s=60), SimPoint("PLANT.A2", interval_s=120),
                                      SimPoint("PLANT.B1", point_type="Digital", digital_set="Modes", interval_s=300),
                                      SimPoint("OTHER.X", interval_s=60)])
    with serve(sim) as url:
        ps = load_point_set(write_point_set(
            workdir, "plant", source={"kind": "pi_web_api", "base_url": url, "data_server": "PISRV1"},
            points={"name_filter": "PLANT.*"}, chunk_days=2, sinks=["parquet", "duckdb"]))
        defs = build_definitions({"plant": ps})
        job = defs.resolve_job_def("plant_job")
        instance = dg.DagsterInstance.get()
        assert job.execute_in_process(instance=instance, tags=partition_range_tags(DAYS[0], DAYS[-1])).success
        sensor = defs.get_sensor_def("new_points_sensor")

        def tick(cursor):
            with dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs) as ctx:
                result = sensor.evaluate_tick(ctx)
            for event in result.asset_events:  # stored as the daemon stores a tick's events
                instance.report_runless_asset_event(event)
            return result

        first = tick(None)
        assert first.run_requests == [] and json.loads(first.cursor)["plant"]["count"] == 3
        listed = first.asset_events[0].metadata["points"].value
        assert listed == ["PLANT.A1", "PLANT.A2", "PLANT.B1"]  # OTHER.X does not match the filter

        sim.add_point(SimPoint("PLANT.A3", point_type="Float64", interval_s=30))
        sim.remove_point("PLANT.B1")
        sim.clear_log()
        second = tick(first.cursor)
        group = layout.group_id(["PLANT.A3"])
        assert [(r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
                for r in second.run_requests] == [("2024-01-01", "2024-01-02"), ("2024-01-03", "2024-01-03")]
        assert all(r.run_config == {"ops": {"plant": {"config": {"points": ["PLANT.A3"]}}}} for r in second.run_requests)
        assert all(r.tags["naia/point_group"] == group for r in second.run_requests)
        gone = [e.metadata["disappeared_points"].value for e in second.asset_events if "disappeared_points" in e.metadata]
        assert gone == [["PLANT.B1"]]

        for request in second.run_requests:
            assert request.job_name == "plant_job"
            result = job.execute_in_process(instance=instance, run_config=request.run_config, tags=request.tags)
            assert result.success
        assert recorded_webids(sim) == {sim.webid("PLANT.A3")}  # nothing already in the lake was fetched

        third = tick(second.cursor)
        assert third.run_requests == [] and third.asset_events == []

    lake = workdir / "lake/point_set=plant"
    for day in DAYS:
        assert sorted(p.name for p in (lake / f"date={day}").iterdir()) == ["all.parquet", f"points-{group}.parquet"]
    start = dt.datetime.combine(DAYS[0], dt.time(), dt.UTC)
    truth = sim.truth(["PLANT.A3"], start, start + dt.timedelta(days=3))
    with duckdb.connect(str(workdir / "naia.duckdb"), read_only=True) as con:
        per_point = dict(con.sql("SELECT point, count(*) FROM plant GROUP BY point").fetchall())
        rows = con.sql("SELECT * EXCLUDE (point_set, date) FROM plant WHERE point = 'PLANT.A3' ORDER BY ts").to_arrow_table()
    assert set(per_point) == {"PLANT.A1", "PLANT.A2", "PLANT.B1", "PLANT.A3"}
    assert per_point["PLANT.A3"] == truth.num_rows > 0
    # DuckDB reads tz-aware nanosecond timestamps as microseconds (the Parquet objects keep 100 ns ticks).
    micros = pc.cast(pc.floor_temporal(truth.column("ts"), unit="microsecond"), rows.column("ts").type)
    assert rows.column("ts").to_pylist() == micros.to_pylist()


def test_first_tick_records_and_unreachable_source_is_retried_next_tick(workdir: Path):
    ps = load_point_set(write_point_set(
        workdir, "plant", source={"kind": "pi_web_api", "base_url": "http://127.0.0.1:9", "data_server": "PISRV1",
                                  "max_retries": 0, "timeout_seconds": 2},
        points={"name_filter": "PLANT.*"}))
    defs = build_definitions({"plant": ps})
    with dg.build_sensor_context(instance=dg.DagsterInstance.get(), cursor=None, definitions=defs) as ctx:
        result = defs.get_sensor_def("new_points_sensor").evaluate_tick(ctx)
    assert result.run_requests == [] and result.cursor == "{}"
