"""The Kafka sink and the direct QuestDB sink against the real servers, and the helpers the consumer's tests
(naia_backfill_tests/integration/core/test_consumer.py) share: day batches, producing days, expected and
observed counts.

Needs NAIA_KAFKA_BOOTSTRAP and NAIA_QUESTDB_HTTP (``source .services/env`` after ``scripts/services.sh up``);
a missing variable fails the test (see conftest.py).
Every test uses its own topics, consumer group and table, and removes them afterwards.
"""

from __future__ import annotations

import datetime as dt
import socket
import uuid
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from naia_backfill.errors import SinkError
from naia_backfill.schema import SAMPLE_SCHEMA
from naia_backfill.settings import KafkaSink, QuestDBSink
from naia_backfill.sinks.base import DayTarget
from naia_backfill.sinks.kafka import KafkaDaySink
from naia_backfill.sinks.kafka_messages import encode_value, headers_for, iter_messages
from naia_backfill.sinks.questdb import QuestDBDaySink, QuestDBRest, ensure_table, wait_for_wal

pytestmark = pytest.mark.integration
DAY0 = dt.date(2024, 3, 1)


@pytest.fixture
def bootstrap(service_env) -> str:
    return service_env.kafka_bootstrap


@pytest.fixture
def questdb_http(service_env) -> str:
    return service_env.questdb_http


@pytest.fixture
def names(bootstrap: str, questdb_http: str) -> Iterator[dict[str, str]]:
    u = uuid.uuid4().hex[:10]
    n = {"topic": f"test.kq.backfill.{u}", "realtime": f"test.kq.realtime.{u}", "group": f"test-kq-{u}",
         "table": f"test_kq_{u}"}
    yield n
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for fut in admin.delete_topics([n["topic"], n["realtime"]], operation_timeout=10).values():
        try:
            fut.result(30)
        except KafkaException as e:
            if e.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:  # a test that never created it
                raise
    rest = QuestDBRest(questdb_http)
    rest.exec(f"DROP TABLE IF EXISTS {n['table']}")
    rest.close()


def day_batches(day: dt.date, points: int = 40, interval_s: int = 60, seed: int = 0) -> list[pa.RecordBatch]:
    """One day like a real source yields it: hourly batches with every point interleaved, numeric, digital and
    string points, system states, flags, NaN, and runs of three events at one timestamp."""
    rng = np.random.default_rng(seed + day.toordinal())
    t0 = int(dt.datetime.combine(day, dt.time(), dt.UTC).timestamp()) * 10**9
    per_hour = 3600 // interval_s
    out = []
    for hour in range(24):
        grid = t0 + (hour * per_hour + np.arange(per_hour, dtype=np.int64)) * interval_s * 10**9
        point = np.repeat(np.arange(points), per_hour)
        ts = np.tile(grid, points)
        rep = np.where(rng.random(len(ts)) < 0.01, 3, 1)
        point, ts = np.repeat(point, rep), np.repeat(ts, rep) + (rng.integers(0, 10, len(ts)) * 100).repeat(rep)
        n = len(ts)
        kind = point % 10  # 0: digital, 1: string, else numeric
        system = (kind > 1) & (rng.random(n) < 0.01)
        value = np.where((kind > 1) & ~system, rng.normal(50, 10, n), np.nan)
        value[rng.random(n) < 0.005] = np.nan
        text = np.where(kind == 1, rng.choice(["idle", "running", "fault"], n), None)
        text = np.where(system, "I/O Timeout", text)
        state = np.where(kind == 0, rng.integers(0, 3, n), np.where(system, 246, -1))
        text = np.where(kind == 0, np.array(["Off", "On", "Fault"])[np.clip(state, 0, 2)], text)
        order = np.lexsort((np.arange(n), ts))  # interleave points, keep each point's events in order
        cols = {
            "point": pa.array([f"TEST.P{p:03d}" for p in point[order]]),
            "ts": pa.array(ts[order], pa.timestamp("ns", tz="UTC")),
            "value": pa.array(value[order], mask=np.isnan(value[order]) & (rng.random(n) < 0.5)),
            "text": pa.array(text[order].tolist(), pa.string()),
            "state_code": pa.array(state[order].astype(np.int32), mask=state[order] < 0),
            "is_system": pa.array(system[order]),
            "good": pa.array(~system[order] & (rng.random(n) > 0.01)),
            "questionable": pa.array(rng.random(n) < 0.01),
            "substituted": pa.array(rng.random(n) < 0.01),
            "annotated": pa.array(rng.random(n) < 0.01),
        }
        out.append(pa.RecordBatch.from_arrays(list(cols.values()), schema=SAMPLE_SCHEMA))
    return out


def expected(days: dict[dt.date, list[pa.RecordBatch]]) -> dict[str, int]:
    table = pa.Table.from_batches([b for bs in days.values() for b in bs])
    text = table.column("text")
    return {"rows": table.num_rows, "text": len(text) - text.null_count,
            "states": len(table) - table.column("state_code").null_count,
            "flags": sum(pa.compute.sum(table.column(f)).as_py() for f in
                         ("is_system", "good", "questionable", "substituted", "annotated"))}


def observed(rest: QuestDBRest, table: str) -> dict[str, int]:
    wait_for_wal(rest, table)
    row = rest.rows(f"SELECT count(), count(text), count(state_code), sum(is_system::int + good::int + "
                    f"questionable::int + substituted::int + annotated::int) FROM {table}")[0]
    return {"rows": row[0], "text": row[1], "states": row[2], "flags": row[3]}


def produce_days(bootstrap: str, topic: str, days: dict[dt.date, list[pa.RecordBatch]], run_id: str) -> int:
    sink = KafkaDaySink(KafkaSink(kind="kafka", topic=topic, partitions=3), bootstrap)
    rows = 0
    try:
        for day, batches in days.items():
            writer = sink.open_day(DayTarget("itest", day, run_id=run_id))
            for b in batches:
                writer.write(b)
            rows += writer.commit().rows
    finally:
        sink.close()
    return rows


def committed_behind(bootstrap: str, group: str, topics: list[str]) -> int:
    """Messages in ``topics`` the group has not committed yet."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        meta = c.list_topics(timeout=10).topics
        tps = [TopicPartition(t, p) for t in topics for p in meta[t].partitions]
        behind = 0
        for tp in c.committed(tps, timeout=10):
            hi = c.get_watermark_offsets(tp, timeout=10)[1]
            behind += hi - max(tp.offset, 0)
        return behind
    finally:
        c.close()


def create_topics(bootstrap: str, *topics: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for fut in admin.create_topics([NewTopic(t, 1, 1) for t in topics]).values():
        fut.result(30)


def produce_realtime(bootstrap: str, topic: str, batch: pa.RecordBatch) -> int:
    """A few realtime-topic messages in the same format (a realtime producer's point set may be absent)."""
    create_topics(bootstrap, topic)
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    rows = 0
    for point, mb in iter_messages([batch], samples_per_message=50):
        producer.produce(topic, key=point.encode(), value=encode_value(mb),
                         headers=[h for h in headers_for(DayTarget("realtime", DAY0), mb.num_rows)
                                  if h[0] != "naia-point-set"])
        rows += mb.num_rows
    assert producer.flush(30) == 0
    return rows


def test_direct_questdb_sink_rerun_unchanged_and_replaces_rows(questdb_http, names):
    days = {DAY0 + dt.timedelta(days=i): day_batches(DAY0 + dt.timedelta(days=i)) for i in range(2)}
    exp = expected(days)
    sink = QuestDBDaySink(QuestDBSink(kind="questdb", table=names["table"]), questdb_http, flush_rows=20_000)
    rest = QuestDBRest(questdb_http)
    for _ in range(2):
        for day, batches in days.items():
            writer = sink.open_day(DayTarget("itest", day))
            for b in batches:
                writer.write(b)
            assert writer.commit().rows == sum(b.num_rows for b in batches)
        assert observed(rest, names["table"]) == exp
    assert rest.rows(f"SELECT type FROM table_columns('{names['table']}') WHERE \"column\" = 'ts'") == [
        ["TIMESTAMP_NS"]]
    first = days[DAY0][0]
    t = first.column("ts").cast(pa.int64())[0].as_py()
    point = first.column("point")[0].as_py()
    exp_rows = first.filter(pa.compute.and_(pa.compute.equal(first.column("point"), point),
                                            pa.compute.equal(first.column("ts").cast(pa.int64()), t)))
    iso = dt.datetime.fromtimestamp(t // 10**9, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{t % 10**9:09d}Z"
    got = rest.rows(f"SELECT seq FROM {names['table']} WHERE point = '{point}' AND ts = '{iso}' ORDER BY seq")
    assert [r[0] for r in got] == list(range(exp_rows.num_rows))

    # A source that changed: every text becomes null; the re-run replaces rows instead of adding.
    changed = [b.set_column(3, "text", pa.nulls(b.num_rows, pa.string())) for b in days[DAY0]]
    writer = sink.open_day(DayTarget("itest", DAY0))
    for b in changed:
        writer.write(b)
    writer.commit()
    after = observed(rest, names["table"])
    assert after["rows"] == exp["rows"]
    assert after["text"] == expected({DAY0 + dt.timedelta(days=1): days[DAY0 + dt.timedelta(days=1)]})["text"]


def test_existing_table_without_dedup_is_refused(questdb_http, names):
    rest = QuestDBRest(questdb_http)
    rest.exec(f"CREATE TABLE {names['table']} (ts TIMESTAMP, point SYMBOL) TIMESTAMP(ts) PARTITION BY DAY WAL")
    with pytest.raises(SinkError, match="dedup"):
        ensure_table(rest, names["table"])


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_broker_fails_commit_loudly():
    broker = f"127.0.0.1:{_closed_port()}"
    batch = day_batches(DAY0, points=3)[0]
    sink = KafkaDaySink(KafkaSink(kind="kafka", topic="test.unreachable"), broker, create_topic=False,
                        producer_extra={"message.timeout.ms": 3000})
    writer = sink.open_day(DayTarget("itest", DAY0))
    writer.write(batch)
    with pytest.raises(SinkError, match=rf"Kafka broker {broker}: \d+ message\(s\) of itest 2024-03-01 .* were not "
                       r"delivered: Local: Message timed out \(last broker error: .*Connection refused"):
        writer.commit()
    writer.abort()

    creating = KafkaDaySink(KafkaSink(kind="kafka", topic="test.unreachable"), broker, admin_timeout=3)
    with pytest.raises(SinkError, match=rf"Kafka broker {broker}: cannot check or create topic"):
        creating.open_day(DayTarget("itest", DAY0))


def test_unreachable_questdb_fails_loudly():
    port = _closed_port()
    with pytest.raises(SinkError, match=rf"QuestDB at 127.0.0.1:{port} is unreachable"):
        QuestDBDaySink(QuestDBSink(kind="questdb", table="unreachable"), f"127.0.0.1:{port}").open_day(
            DayTarget("itest", DAY0))
