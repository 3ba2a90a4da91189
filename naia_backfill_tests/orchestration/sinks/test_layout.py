"""A point set with a key template and a column mapping, run through its Dagster job: objects at the
templated keys, recorded in each day's metadata, rewritten in place by a re-run."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq

from naia_backfill_tests.conftest import run_job, write_point_set

SINK = {"kind": "parquet", "key_template": "export/{point_set}/{yyyy}{mm}{dd}.parquet",
        "columns": {"ts": "time_ms", "point": "tag", "value": "val"}, "constant_columns": {"set": "{point_set}"},
        "timestamp_unit": "ms", "timestamp_as": "int64", "compression": "snappy", "row_group_rows": 1_000}


def test_templated_days_through_the_job(workdir: Path):
    path = write_point_set(workdir, "plant_t", sinks=[SINK])
    days = [dt.date(2024, 1, 1), dt.date(2024, 1, 2)]
    result, instance = run_job(path, days)
    assert result.success
    files = sorted((workdir / "lake/export/plant_t").iterdir())
    assert [f.name for f in files] == ["20240101.parquet", "20240102.parquet"]
    records = instance.fetch_materializations(dg.AssetKey("plant_t"), limit=10).records
    meta = {r.partition_key: r.asset_materialization.metadata for r in records}
    assert [meta[str(d)]["parquet_uri"].value for d in days] == [str(f) for f in files]
    table = pq.read_table(files[0])
    assert table.column_names == ["time_ms", "tag", "val", "set"]
    assert table.num_rows == meta["2024-01-01"]["samples"].value > 0
    before = files[1].read_bytes()
    assert run_job(path, days[1:])[0].success
    assert files[1].read_bytes() == before and len(list((workdir / "lake").rglob("*.parquet"))) == 2
