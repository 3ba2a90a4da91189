"""Ranged runs of a point-set asset, in-process, into a temporary lake and DuckDB file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow.parquet as pq

from naia_backfill_tests.conftest import run_job, write_point_set

DAYS = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(3)]


def materialize(workdir: Path, name: str = "plant", days=DAYS, tags=None, **overrides):
    return run_job(write_point_set(workdir, name, **overrides), days, tags)


def test_ranged_run_writes_one_object_per_day_with_per_day_materializations(workdir: Path):
    result, instance = materialize(workdir)
    assert result.success
    assert instance.get_materialized_partitions(dg.AssetKey("plant")) == {d.isoformat() for d in DAYS}
    mats = result.asset_materializations_for_node("plant")
    assert sorted(m.partition for m in mats) == [d.isoformat() for d in DAYS]
    for m in mats:
        uri = m.metadata["parquet_uri"].value
        assert uri == str(workdir / f"lake/point_set=plant/date={m.partition}/all.parquet")
        assert pq.read_metadata(uri).num_rows == m.metadata["samples"].value > 6 * 144
        assert m.metadata["points"].value == 6 and m.metadata["bytes"].value == Path(uri).stat().st_size
    summary = [e for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"][-1]
    meta = summary.event_specific_data.asset_observation.metadata
    assert meta["days"].value == 3 and meta["samples"].value == sum(m.metadata["samples"].value for m in mats)
    assert len(meta["object_uris"].value) == 3 and "failed_day" not in meta
    with duckdb.connect(str(workdir / "naia.duckdb"), read_only=True) as con:
        assert con.sql("SELECT count(DISTINCT date) FROM plant").fetchone()[0] == 3


def test_rerun_writes_the_same_rows(workdir: Path):
    materialize(workdir)
    first = {d: pq.read_table(workdir / f"lake/point_set=plant/date={d}/all.parquet") for d in DAYS}
    result, _ = materialize(workdir)
    assert result.success
    for d in DAYS:
        assert pq.read_table(workdir / f"lake/point_set=plant/date={d}/all.parquet").equals(first[d])
    with duckdb.connect(str(workdir / "naia.duckdb"), read_only=True) as con:
        assert con.sql("SELECT count(*) FROM plant").fetchone()[0] == sum(t.num_rows for t in first.values())


def test_a_failed_day_fails_the_run_names_the_day_and_keeps_earlier_days(workdir: Path):
    # A file where day 2's folder must go makes that day's write fail for real.
    blocked = workdir / "lake/point_set=plant/date=2024-01-02"
    blocked.parent.mkdir(parents=True)
    blocked.write_text("not a folder")
    result, instance = materialize(workdir)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "day 2024-01-02 failed" in str(failure.step_failure_data.error.to_string())
    assert instance.get_materialized_partitions(dg.AssetKey("plant")) == {"2024-01-01"}
    assert not (workdir / "lake/point_set=plant/date=2024-01-03").exists()


def test_unknown_points_fail_the_run_clearly(workdir: Path):
    result, instance = materialize(workdir, points={"names": ["SYN00001", "NOT_A_POINT"]})
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "not found at synthetic source" in failure.step_failure_data.error.to_string()
    assert "NOT_A_POINT" in failure.step_failure_data.error.to_string()
    assert not instance.get_materialized_partitions(dg.AssetKey("plant"))
    assert not (workdir / "lake").exists()


def test_a_reexecuted_run_skips_the_days_its_run_group_finished(workdir: Path):
    blocked = workdir / "lake/point_set=plant/date=2024-01-03"
    blocked.parent.mkdir(parents=True)
    blocked.write_text("not a folder")
    first, instance = materialize(workdir)
    assert not first.success and instance.get_materialized_partitions(dg.AssetKey("plant")) == {"2024-01-01", "2024-01-02"}
    blocked.unlink()
    objects = {d: workdir / f"lake/point_set=plant/date={d}/all.parquet" for d in DAYS}
    stamps = {d: objects[d].stat().st_mtime_ns for d in DAYS[:2]}

    # What "re-execute from failure" starts: a run of the same range in the first run's group.
    group = {"dagster/root_run_id": first.run_id, "dagster/parent_run_id": first.run_id}
    again, _ = materialize(workdir, tags=group)
    assert again.success
    mats = [e.event_specific_data.materialization for e in again.all_events if e.event_type_value == "ASSET_MATERIALIZATION"]
    assert [m.partition for m in mats] == ["2024-01-03"]  # days 1 and 2 were not fetched again
    assert {d: objects[d].stat().st_mtime_ns for d in DAYS[:2]} == stamps and objects[DAYS[2]].is_file()

    fresh, _ = materialize(workdir)  # a new run (not a re-execution) of the same days writes them all
    mats = [e.event_specific_data.materialization for e in fresh.all_events if e.event_type_value == "ASSET_MATERIALIZATION"]
    assert [m.partition for m in mats] == [d.isoformat() for d in DAYS]
