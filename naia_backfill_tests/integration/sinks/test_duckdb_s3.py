"""The DuckDB sink, the checks and `validate` over an S3 lake on a real S3 server (SeaweedFS)."""

from __future__ import annotations

import datetime as dt
import importlib.util
import io
import uuid
from pathlib import Path

import boto3
import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from naia_backfill.cli import cli
from naia_backfill.core.validation import validate_range
from naia_backfill.errors import SinkConfigError
from naia_backfill.settings import BUNDLED_DIR, load_point_set
from naia_backfill.sinks.duckdb_conn import connect_warehouse
from naia_backfill.sinks.lake import lake_from_url
from naia_backfill.sinks.preflight import check_sinks
from naia_backfill_tests.conftest import run_job, write_point_set

pytestmark = pytest.mark.integration
DAYS = [dt.date(2024, 2, 1) + dt.timedelta(days=i) for i in range(3)]
DEMO = BUNDLED_DIR / "demo.yaml"


@pytest.fixture
def s3_lake(workdir: Path, service_env, monkeypatch: pytest.MonkeyPatch):
    """A fresh prefix of the test bucket as the lake of the runs ($NAIA_LAKE_URL), and a boto3 client."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"):
        monkeypatch.setenv(name, service_env.require(name))
    url = f"s3://{service_env.s3_bucket}/duckdb-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("NAIA_LAKE_URL", url)
    s3 = boto3.client("s3")
    yield url, s3
    bucket, prefix = url.removeprefix("s3://").split("/", 1)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        for obj in page.get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=obj["Key"])


def objects(s3, url: str) -> dict[str, int | None]:
    """Key -> row count of every object under the lake ``url`` (None: not readable Parquet)."""
    bucket, prefix = url.removeprefix("s3://").split("/", 1)
    out: dict[str, int | None] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        for o in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
            try:
                out[o["Key"]] = pq.read_metadata(io.BytesIO(body)).num_rows
            except pa.ArrowInvalid:
                out[o["Key"]] = None
    return out


def day_counts(url: str, relation: str, where: str = "") -> dict[str, int]:
    with connect_warehouse(lake_url=url, read_only=True) as con:
        rows = con.execute(f"SELECT date, count(*) FROM {relation} {where} GROUP BY ALL ORDER BY ALL").fetchall()
    return {d.isoformat(): n for d, n in rows}


def by_day(counts: dict[str, int]) -> dict[str, int]:
    return {k.split("date=")[1].split("/")[0]: n for k, n in counts.items()}


def test_demo_into_s3_then_the_view_counts_equal_the_objects(workdir: Path, s3_lake, service_env):
    url, s3 = s3_lake
    result, instance = run_job(DEMO, DAYS)
    assert result.success
    stored = objects(s3, url)
    assert len(stored) == 3 and by_day(stored) == day_counts(url, "demo")
    assert instance.get_materialized_partitions(dg.AssetKey("demo")) == {d.isoformat() for d in DAYS}
    checks = [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    assert len(checks) == 9 and all(c.passed for c in checks)  # 3 checks x 3 days, over S3
    database = workdir / "naia.duckdb"
    secret = service_env.s3_secret_key.encode()
    for path in database.parent.glob("naia.duckdb*"):
        if path.is_file():
            assert secret not in path.read_bytes(), path  # the secret lives in memory only
    with duckdb.connect(str(database), read_only=True) as con:
        assert service_env.s3_secret_key not in con.execute("SELECT sql FROM duckdb_views()").fetchall()[-1][0]


def test_a_corrupt_s3_object_blocks_no_other_day(workdir: Path, s3_lake):
    url, s3 = s3_lake
    assert run_job(DEMO, DAYS)[0].success
    bucket, prefix = url.removeprefix("s3://").split("/", 1)
    first = f"{prefix}/point_set=demo/date={DAYS[0]}/all.parquet"
    body = s3.get_object(Bucket=bucket, Key=first)["Body"].read()
    s3.put_object(Bucket=bucket, Key=first, Body=body[: len(body) // 2])
    (workdir / "naia.duckdb").unlink()
    new_day = dt.date(2024, 2, 4)
    assert run_job(DEMO, [new_day])[0].success
    stored = by_day(objects(s3, url))
    assert stored[DAYS[0].isoformat()] is None  # the truncated object
    good = {d: n for d, n in stored.items() if d != DAYS[0].isoformat()}
    assert day_counts(url, "demo", f"WHERE date > DATE '{DAYS[0]}'") == good and new_day.isoformat() in good
    with pytest.raises(duckdb.Error, match="all.parquet"):
        day_counts(url, "demo")


def test_validate_over_s3_reports_what_a_local_copy_reports(workdir: Path, s3_lake):
    url, s3 = s3_lake
    assert run_job(DEMO, DAYS[:2])[0].success
    local = workdir / "copy"
    bucket, prefix = url.removeprefix("s3://").split("/", 1)
    for key in objects(s3, url):
        target = local / key.removeprefix(prefix + "/")
        target.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, key, str(target))
    ps = load_point_set(DEMO)
    days = [*DAYS, dt.date(2024, 2, 5)]  # two written, two missing

    def summary(lake_url: str) -> list:
        return [(r.day, r.status, r.samples, r.points, len(r.objects),
                 {c.name: (c.passed, c.severity, c.summary) for c in r.checks.values()})
                for r in validate_range(lake_from_url(lake_url), ps, days)]

    assert summary(url) == summary(str(local))
    outputs = []
    for lake in (url, str(local)):
        res = CliRunner().invoke(cli, ["validate", "demo", "--start", str(days[0]), "--end", str(days[-1]),
                                       "--lake", lake, "--no-record"], catch_exceptions=False)
        assert res.exit_code == 1  # the missing days fail samples_present
        outputs.append(" ".join(res.output.replace(lake, "LAKE").split()))  # the same words, wrapped alike or not
    assert outputs[0] == outputs[1]


def test_an_impossible_combination_is_refused_before_any_object(workdir: Path, s3_lake, monkeypatch):
    url, s3 = s3_lake
    with duckdb.connect(str(workdir / "naia.duckdb")) as con:  # a table where the view would go
        con.execute("CREATE TABLE plant (x INTEGER)")
    result, _ = run_job(write_point_set(workdir, "plant"), DAYS[:1])
    assert not result.success and objects(s3, url) == {}
    message = next(e.event_specific_data.error.cause.message for e in result.all_events if e.is_step_failure)
    assert "set mode: table on the duckdb sink" in message
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda n, *a: None if n == "duckdb_extension_httpfs" else real(n, *a))
    with pytest.raises(SinkConfigError, match="duckdb-extension-httpfs"):
        check_sinks(load_point_set(write_point_set(workdir, "other")), url)
    result, _ = run_job(write_point_set(workdir, "other"), DAYS[:1])
    assert not result.success and objects(s3, url) == {}


def test_table_mode_over_s3_rerun_changes_nothing(workdir: Path, s3_lake):
    url, s3 = s3_lake
    path = write_point_set(workdir, "plant", sinks=["parquet", {"kind": "duckdb", "mode": "table"}])
    assert run_job(path, DAYS)[0].success
    with duckdb.connect(str(workdir / "naia.duckdb"), read_only=True) as con:
        first = con.execute("SELECT * FROM plant ORDER BY ALL").fetchall()
        counts = dict(con.execute("SELECT date::VARCHAR, count(*) FROM plant GROUP BY ALL").fetchall())
    assert counts == by_day(objects(s3, url))
    assert run_job(path, DAYS)[0].success
    with duckdb.connect(str(workdir / "naia.duckdb"), read_only=True) as con:
        assert con.execute("SELECT * FROM plant ORDER BY ALL").fetchall() == first


def test_validate_with_refused_s3_credentials_is_bad_input(workdir: Path, s3_lake, monkeypatch):
    url, _ = s3_lake
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    res = CliRunner().invoke(cli, ["validate", "demo", "--start", "2024-02-01", "--end", "2024-02-01", "--lake", url,
                                   "--no-record"], catch_exceptions=False)
    assert res.exit_code == 2 and "S3 refused the credentials" in res.output
    assert "not-the-secret" not in res.output
