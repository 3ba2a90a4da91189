"""The Parquet lake on a real S3 server (SeaweedFS from scripts/services.sh): same keys, verified uploads."""

from __future__ import annotations

import datetime as dt
import io
import uuid

import boto3
import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from naia_backfill.cli import cli
from naia_backfill.connectors.synthetic import SyntheticConnector
from naia_backfill.core.daycopy import day_window
from naia_backfill.errors import SinkError
from naia_backfill.schema import SAMPLE_SCHEMA
from naia_backfill.settings import ParquetSink, SyntheticSource, load_point_set
from naia_backfill.sinks.base import DayTarget
from naia_backfill.sinks.lake_s3 import S3Lake
from naia_backfill.sinks.parquet import ParquetDaySink
from naia_backfill_tests.conftest import write_point_set

pytestmark = pytest.mark.integration
DAY = dt.date(2024, 1, 2)


def client(env, **override):
    return boto3.client(
        "s3", endpoint_url=env.s3_endpoint, region_name=env.s3_region,
        aws_access_key_id=override.get("key", env.s3_access_key),
        aws_secret_access_key=override.get("secret", env.s3_secret_key),
    )


def day_batches(points: int, day: dt.date = DAY, interval: float = 60):
    src = SyntheticConnector(SyntheticSource(kind="synthetic", points=points, seed=3, interval_seconds=interval))
    start, end = day_window(day)
    return list(src.fetch(src.list_points(), start, end))


def keys(s3, bucket: str, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for p in pages for o in p.get("Contents", []))


def read(s3, bucket: str, key: str) -> pa.Table:
    return pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))


def test_multipart_day_is_verified_and_readable(service_env):
    s3 = client(service_env)
    prefix = f"t-{uuid.uuid4().hex[:8]}"
    lake = S3Lake(f"s3://{service_env.s3_bucket}/{prefix}", s3, part_size=5 * 1024 * 1024)
    data = day_batches(600, interval=20)  # ~2.6M samples: several 5 MiB parts
    writer = ParquetDaySink(lake, ParquetSink(kind="parquet", compression="none")).open_day(DayTarget("plant", DAY))
    for b in data:
        writer.write(b)
    result = writer.commit()
    key = f"{prefix}/point_set=plant/date=2024-01-02/all.parquet"
    assert result.uri == f"s3://{service_env.s3_bucket}/{key}"
    head = s3.head_object(Bucket=service_env.s3_bucket, Key=key)
    assert head["ContentLength"] == result.bytes > 10 * 1024 * 1024
    assert head["ETag"].strip('"').endswith(f"-{-(-result.bytes // (5 * 1024 * 1024))}")
    got = read(s3, service_env.s3_bucket, key)
    assert got.num_rows == sum(b.num_rows for b in data) == result.rows
    assert got.equals(pa.Table.from_batches(data, schema=SAMPLE_SCHEMA).replace_schema_metadata(got.schema.metadata))
    assert lake.list_days("plant") == {DAY: ["all.parquet"]}


def test_abort_leaves_no_object_and_no_pending_upload(service_env):
    s3 = client(service_env)
    prefix = f"t-{uuid.uuid4().hex[:8]}"
    lake = S3Lake(f"s3://{service_env.s3_bucket}/{prefix}", s3)
    writer = ParquetDaySink(lake, ParquetSink(kind="parquet", compression="none")).open_day(DayTarget("plant", DAY))
    for b in day_batches(600, interval=20):
        writer.write(b)  # parts already sent
    writer.abort()
    assert keys(s3, service_env.s3_bucket, prefix) == []
    uploads = s3.list_multipart_uploads(Bucket=service_env.s3_bucket, Prefix=prefix).get("Uploads", [])
    assert uploads == []


def test_bad_credentials_and_missing_bucket_fail_clearly(service_env):
    bad = S3Lake(f"s3://{service_env.s3_bucket}/x", client(service_env, secret="wrong-secret"))
    with pytest.raises(SinkError, match="S3 refused the credentials") as err:
        ParquetDaySink(bad).open_day(DayTarget("plant", DAY))
    assert "wrong-secret" not in str(err.value)
    name = f"no-such-bucket-{uuid.uuid4().hex[:6]}"
    missing = S3Lake(f"s3://{name}/x", client(service_env))
    with pytest.raises(SinkError, match="does not exist"):
        ParquetDaySink(missing).open_day(DayTarget("plant", DAY))
    assert name not in [b["Name"] for b in client(service_env).list_buckets()["Buckets"]]


def test_cli_run_into_s3_twice_writes_the_same_rows(workdir, service_env, monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"):
        monkeypatch.setenv(name, service_env.require(name))
    prefix = f"t-{uuid.uuid4().hex[:8]}"
    url = f"s3://{service_env.s3_bucket}/{prefix}"
    path = write_point_set(workdir, "plant", sinks=["parquet"])
    args = ["run", str(path), "--start", "2024-01-01", "--end", "2024-01-03", "--lake", url]
    res = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    s3 = client(service_env)
    expected = [f"{prefix}/point_set=plant/date=2024-01-0{d}/all.parquet" for d in (1, 2, 3)]
    assert keys(s3, service_env.s3_bucket, prefix) == expected
    first = {k: read(s3, service_env.s3_bucket, k) for k in expected}
    res = CliRunner().invoke(cli, [*args, "--force"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert keys(s3, service_env.s3_bucket, prefix) == expected
    for k in expected:
        assert read(s3, service_env.s3_bucket, k).equals(first[k])
    mats = dg.DagsterInstance.get().fetch_materializations(dg.AssetKey("plant"), limit=1).records
    assert mats[0].asset_materialization.metadata["parquet_uri"].value.startswith(url)


def test_cli_run_with_bad_s3_credentials_is_refused_before_any_run(workdir, service_env, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", service_env.s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", service_env.s3_access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "definitely-wrong")
    monkeypatch.setenv("AWS_REGION", service_env.s3_region)
    path = write_point_set(workdir, "plant", sinks=["parquet"])
    res = CliRunner().invoke(cli, ["run", str(path), "--start", "2024-01-01", "--end", "2024-01-01",
                                   "--lake", f"s3://{service_env.s3_bucket}/bad"], catch_exceptions=False)
    assert res.exit_code == 2, res.output  # the lake is checked before a run starts: bad input, nothing recorded
    assert "S3 refused the credentials" in res.output and "definitely-wrong" not in res.output
    instance = dg.DagsterInstance.get()
    assert not instance.get_runs() and not instance.get_materialized_partitions(dg.AssetKey("plant"))
    assert load_point_set(path).name == "plant"
