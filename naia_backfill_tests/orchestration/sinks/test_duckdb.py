"""The DuckDB sink through the point-set job (WarehouseResource): table mode re-runs, and a corrupt object in the
lake that does not stop the next day."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow.parquet as pq

from naia_backfill.sinks import layout
from naia_backfill_tests.conftest import run_job, write_point_set

DAYS = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(3)]


def lake_rows(workdir: Path, name: str = "plant") -> dict[dt.date, int]:
    out = {}
    for folder in sorted((workdir / "lake" / layout.point_set_prefix(name)).iterdir()):
        try:
            out[layout.parse_day(folder.name)] = sum(pq.read_metadata(p).num_rows for p in folder.glob("*.parquet"))
        except Exception:  # noqa: BLE001 -- a day the test broke on purpose
            continue
    return out


def query(workdir: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(workdir / "naia.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_table_mode_through_the_job_equals_the_lake_and_reruns_change_nothing(workdir: Path):
    path = write_point_set(workdir, "plant", sinks=["parquet", {"kind": "duckdb", "mode": "table"}])
    result, instance = run_job(path, DAYS)
    assert result.success
    first = query(workdir, "SELECT * FROM plant ORDER BY ALL")
    assert dict(query(workdir, "SELECT date, count(*) FROM plant GROUP BY ALL")) == lake_rows(workdir)
    assert run_job(path, DAYS[1:])[0].success
    assert query(workdir, "SELECT * FROM plant ORDER BY ALL") == first
    meta = instance.fetch_materializations(dg.AssetKey("plant"), limit=1).records[0].asset_materialization.metadata
    assert meta["duckdb_table"].value == "plant"


def test_a_truncated_object_does_not_fail_the_next_day(workdir: Path):
    path = write_point_set(workdir, "plant")  # parquet + duckdb view
    assert run_job(path, DAYS)[0].success
    broken = workdir / "lake" / layout.object_key("plant", DAYS[0])
    broken.write_bytes(broken.read_bytes()[:200])
    (workdir / "naia.duckdb").unlink()
    new_day = dt.date(2024, 1, 4)
    result, instance = run_job(path, [new_day])
    assert result.success
    assert new_day.isoformat() in instance.get_materialized_partitions(dg.AssetKey("plant"))
    good = lake_rows(workdir)
    assert DAYS[0] not in good and new_day in good
    assert dict(query(workdir, f"SELECT date, count(*) FROM plant WHERE date > DATE '{DAYS[0]}' GROUP BY ALL")) == good
