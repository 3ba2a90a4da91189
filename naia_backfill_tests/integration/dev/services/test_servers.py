"""The real servers answer over their own protocols: Kafka, QuestDB, S3 (SeaweedFS) and PostgreSQL.

The servers come from ``naia_backfill.dev.services.ensure`` (see conftest.py), or from the NAIA_* / AWS_*
variables of your own. These checks come first when an integration run fails: they say which server is missing
or misconfigured before the pipeline tests do. MongoDB (FerretDB) has its round trip in test_lifecycle.py.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import time
import uuid
from typing import TYPE_CHECKING

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from questdb import Sender, TimestampNanos

if TYPE_CHECKING:
    from naia_backfill_tests.integration.conftest import ServiceEnv

pytestmark = pytest.mark.integration

DEADLINE_S = 60.0


def _unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def _psql() -> str:
    found = shutil.which("psql") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"), reverse=True)), None)
    if found is None:
        pytest.fail("psql not found: install the PostgreSQL client (scripts/services.sh up installs it)", pytrace=False)
    return found


def _run_psql(dsn: str, sql: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        [_psql(), dsn, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-tA", "-c", sql],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**os.environ, **(env or {})},
    )
    assert proc.returncode == 0, f"psql {dsn!r} failed ({proc.returncode}): {proc.stderr.strip()}"
    return proc.stdout.strip()


def _questdb_exec(http: str, query: str) -> dict:
    response = httpx.get(f"http://{http}/exec", params={"query": query}, timeout=30)
    assert response.status_code == 200, f"QuestDB /exec {query!r}: HTTP {response.status_code} {response.text[:500]}"
    return response.json()


def _s3(env: ServiceEnv, access_key: str | None = None, secret_key: str | None = None):
    return boto3.client(
        "s3",
        endpoint_url=env.s3_endpoint,
        aws_access_key_id=access_key or env.s3_access_key,
        aws_secret_access_key=secret_key or env.s3_secret_key,
        region_name=env.s3_region,
        config=Config(retries={"max_attempts": 1}, connect_timeout=10, read_timeout=30),
    )


def test_kafka_produces_and_consumes_one_message_in_a_group(service_env: ServiceEnv):
    bootstrap = service_env.kafka_bootstrap
    topic = _unique("naia.services-check")
    group = _unique("naia-services-check")
    payload = uuid.uuid4().bytes
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(timeout=30)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 1000,
        }
    )
    try:
        producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
        delivered = []
        producer.produce(topic, key=b"check", value=payload, on_delivery=lambda err, msg: delivered.append(err))
        assert producer.flush(30) == 0, "Kafka producer could not deliver within 30 s"
        assert delivered == [None]

        consumer.subscribe([topic])
        deadline = time.monotonic() + DEADLINE_S
        message = None
        while message is None and time.monotonic() < deadline:
            polled = consumer.poll(1.0)
            if polled is not None:
                if polled.error():
                    raise KafkaException(polled.error())
                message = polled
        assert message is not None, f"no message from {topic} within {DEADLINE_S:.0f} s"
        assert (message.key(), message.value()) == (b"check", payload)

        consumer.commit(message=message, asynchronous=False)
        [committed] = consumer.committed([TopicPartition(topic, 0)], timeout=30)
        assert committed.offset == message.offset() + 1
    finally:
        consumer.close()
        admin.delete_topics([topic])[topic].result(timeout=30)


def test_questdb_rest_answers_select_1(service_env: ServiceEnv):
    body = _questdb_exec(service_env.questdb_http, "select 1")
    assert body["dataset"] == [[1]]


def test_questdb_ilp_tcp_row_is_queryable_over_rest_and_pgwire(service_env: ServiceEnv):
    http, ilp_tcp = service_env.questdb_http, service_env.questdb_ilp_tcp
    pg_host, pg_port = service_env.questdb_pg.rsplit(":", 1)
    table = _unique("naia_services_check")
    host, port = ilp_tcp.rsplit(":", 1)
    try:
        with Sender.from_conf(f"tcp::addr={host}:{port};") as sender:
            sender.row(table, symbols={"point": "p1"}, columns={"value": 1.5}, at=TimestampNanos.now())
        deadline = time.monotonic() + DEADLINE_S
        rows: list = []
        while time.monotonic() < deadline:
            tables = _questdb_exec(http, f"select table_name from tables() where table_name = '{table}'")
            if tables["dataset"]:
                rows = _questdb_exec(http, f"select point, value from '{table}'")["dataset"]
                if rows:
                    break
            time.sleep(0.25)
        assert rows == [["p1", 1.5]], f"ILP/TCP row not visible in {table} within {DEADLINE_S:.0f} s"

        # QuestDB's default PGWire login (admin/quest) is part of its out-of-the-box configuration.
        answer = _run_psql(
            f"postgresql://admin@{pg_host}:{pg_port}/qdb?sslmode=disable",
            f"select point, value from '{table}'",
            env={"PGPASSWORD": "quest"},
        )
        assert answer == "p1|1.5"
    finally:
        _questdb_exec(http, f"drop table if exists '{table}'")


def test_s3_put_get_delete_object(service_env: ServiceEnv):
    s3 = _s3(service_env)
    bucket = service_env.s3_bucket
    key = f"services-check/{uuid.uuid4().hex}.bin"
    body = os.urandom(64 * 1024)
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    try:
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
        ranged = s3.get_object(Bucket=bucket, Key=key, Range="bytes=10-19")["Body"].read()
        assert ranged == body[10:20]
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=key)
        assert [item["Key"] for item in listed.get("Contents", [])] == [key]
    finally:
        s3.delete_object(Bucket=bucket, Key=key)
    with pytest.raises(ClientError) as missing:
        s3.head_object(Bucket=bucket, Key=key)
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


@pytest.mark.parametrize(
    ("access_key", "secret_key"),
    [
        pytest.param(None, "not-the-secret", id="wrong-secret"),
        pytest.param("naia-unknown-key", "not-the-secret", id="unknown-key"),
    ],
)
def test_s3_rejects_bad_credentials(service_env: ServiceEnv, access_key: str | None, secret_key: str):
    s3 = _s3(service_env, access_key=access_key, secret_key=secret_key)
    with pytest.raises(ClientError) as denied:
        s3.put_object(Bucket=service_env.s3_bucket, Key=f"services-check/{uuid.uuid4().hex}", Body=b"x")
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError) as denied_list:
        s3.list_objects_v2(Bucket=service_env.s3_bucket)
    assert denied_list.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_postgres_accepts_connections_to_the_database(service_env: ServiceEnv):
    dsn = service_env.pg_dsn
    expected_db = dsn.rsplit("/", 1)[-1].split("?", 1)[0]
    assert _run_psql(dsn, "select current_database() || '|' || (1 + 1)::text") == f"{expected_db}|2"
    table = _unique("naia_services_check")
    try:
        _run_psql(dsn, f"create table {table} (ts timestamptz primary key, value double precision)")
        _run_psql(dsn, f"insert into {table} values ('2024-01-01T00:00:00Z', 1.5)")
        assert _run_psql(dsn, f"select value from {table}") == "1.5"
    finally:
        _run_psql(dsn, f"drop table if exists {table}")
