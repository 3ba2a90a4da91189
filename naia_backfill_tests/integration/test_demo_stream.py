"""`naia-backfill run demo_stream` fills S3 Parquet, the Kafka backfill topic (consumed into QuestDB) and
QuestDB directly with equal counts; running the same days again changes no count."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import uuid

import boto3
import pyarrow.parquet as pq
import pytest

from naia_backfill.sinks.questdb import QuestDBRest, wait_for_wal

pytestmark = pytest.mark.integration
DAYS = ("2024-01-01", "2024-01-03")
WHERE = "point_set = 'demo_stream' AND ts >= '2024-01-01' AND ts < '2024-01-04'"


def cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "naia_backfill.cli", *args], capture_output=True, text=True,
                          env=env, timeout=900)


def s3_rows(env, prefix: str) -> int:
    s3 = boto3.client("s3", endpoint_url=env.s3_endpoint, region_name=env.s3_region,
                      aws_access_key_id=env.s3_access_key, aws_secret_access_key=env.s3_secret_key)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=env.s3_bucket, Prefix=prefix).get("Contents", [])]
    assert len(keys) == 3 and all(k.endswith("/all.parquet") for k in keys)
    body = lambda k: io.BytesIO(s3.get_object(Bucket=env.s3_bucket, Key=k)["Body"].read())
    return sum(pq.read_metadata(body(k)).num_rows for k in keys)


def consume(table: str, group: str, env: dict) -> None:
    proc = cli("consume", "--topic", "naia.datapoints.backfill", "--group", group, "--table", table,
               "--exit-when-idle", "5", "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=1000", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_demo_stream_fills_every_sink_with_equal_counts(workdir, service_env):
    prefix = f"demo-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "NAIA_KAFKA_BOOTSTRAP": service_env.kafka_bootstrap,
           "NAIA_QUESTDB_HTTP": service_env.questdb_http, "AWS_ENDPOINT_URL": service_env.s3_endpoint,
           "AWS_ACCESS_KEY_ID": service_env.s3_access_key, "AWS_SECRET_ACCESS_KEY": service_env.s3_secret_key,
           "AWS_REGION": service_env.s3_region}
    lake = f"s3://{service_env.s3_bucket}/{prefix}"
    rest = QuestDBRest(service_env.questdb_http)
    consumed = f"test_demo_consumed_{uuid.uuid4().hex[:8]}"
    counts = []
    for attempt in range(2):
        args = ["run", "demo_stream", "--start", DAYS[0], "--end", DAYS[1], "--lake", lake]
        proc = cli(*args, *(["--force"] if attempt else []), env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        consume(consumed, f"test-demo-{uuid.uuid4().hex[:8]}", env)  # a new group reads the topic from the start
        wait_for_wal(rest, "naia_samples_direct")
        wait_for_wal(rest, consumed)
        counts.append((s3_rows(service_env, prefix), rest.count("naia_samples_direct", WHERE), rest.count(consumed, WHERE)))
    parquet, direct, via_kafka = counts[0]
    assert parquet > 200 * 1440 * 3
    assert parquet == direct == via_kafka  # every sink holds every sample once
    assert counts[1] == counts[0]  # the re-run replaced, nothing doubled
    rest.exec(f"DROP TABLE '{consumed}'")
