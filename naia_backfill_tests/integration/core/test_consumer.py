"""`naia-backfill consume` against the real Kafka and QuestDB: exactness across restarts and QuestDB outages, the
dead-letter topic, and --exit-when-idle on a group that is not assigned yet.

QuestDB outages go through a TcpProxy in front of the shared QuestDB (the shared server is never stopped).
Every test uses its own topics, consumer group and table, and removes them afterwards.
"""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from naia_backfill.sinks.kafka_messages import encode_value, iter_messages
from naia_backfill.sinks.questdb import QuestDBRest, wait_for_wal
from naia_backfill_tests.integration.core.tcp_proxy import TcpProxy
from naia_backfill_tests.integration.sinks.test_kafka_questdb import (
    DAY0,
    committed_behind,
    create_topics,
    day_batches,
    expected,
    observed,
    produce_days,
    produce_realtime,
)

pytestmark = pytest.mark.integration
DEADLINE = 180.0  # seconds a consumer may take before the test fails


@pytest.fixture
def names(service_env) -> Iterator[dict[str, str]]:
    u = uuid.uuid4().hex[:10]
    n = {"topic": f"test.cons.backfill.{u}", "realtime": f"test.cons.realtime.{u}", "dlq": f"test.cons.dlq.{u}",
         "group": f"test-cons-{u}", "table": f"test_cons_{u}"}
    yield n
    admin = AdminClient({"bootstrap.servers": service_env.kafka_bootstrap})
    for fut in admin.delete_topics([n["topic"], n["realtime"], n["dlq"]], operation_timeout=10).values():
        try:
            fut.result(30)
        except KafkaException as e:
            if e.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:  # a test that never created it
                raise
    rest = QuestDBRest(service_env.questdb_http)
    rest.exec(f"DROP TABLE IF EXISTS {n['table']}")
    rest.close()


def consume_cmd(bootstrap: str, questdb: str, names: dict[str, str], *extra: str) -> list[str]:
    return [sys.executable, "-m", "naia_backfill.cli", "consume", "--bootstrap", bootstrap, "--questdb", questdb,
            "--topic", names["topic"], "--topic", names["realtime"], "--group", names["group"],
            "--table", names["table"], "--dead-letter-topic", names["dlq"], "--log-interval", "1",
            "--batch-seconds", "0.5", "--questdb-retry-max-wait", "1",
            "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=1000", *extra]


def start(cmd: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def finish(proc: subprocess.Popen, log: Path, timeout: float = DEADLINE) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"consumer still running after {timeout:.0f}s:\n{log.read_text()[-4000:]}")


def wait_until(condition, what: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"consumer exited with {proc.returncode} before {what}:\n{log.read_text()[-4000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {DEADLINE:.0f}s:\n{log.read_text()[-4000:]}")
        time.sleep(0.2)


def three_days(points: int = 40) -> dict[dt.date, list]:
    return {DAY0 + dt.timedelta(days=i): day_batches(DAY0 + dt.timedelta(days=i), points=points) for i in range(3)}


def read_all(bootstrap: str, topic: str) -> list:
    """Every message of ``topic`` (one partition), from the start."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-read-{uuid.uuid4().hex[:8]}",
                  "enable.partition.eof": True})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        out = []
        while True:
            m = c.poll(10)
            assert m is not None, f"no end of partition seen in {topic}"
            if m.error() is not None:
                assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
                return out
            out.append(m)
    finally:
        c.close()


def test_exit_when_idle_waits_for_the_assignment(service_env, names, tmp_path):
    """Reproduces issue 15 goal 6: with a rebalance in progress (here, a member that stopped polling holds every
    partition for ~8 s) the group has assigned nothing yet, lag looks like 0, and the old consumer exited with 0 rows."""
    bootstrap = service_env.kafka_bootstrap
    days = {DAY0: day_batches(DAY0, points=10)}
    rows = produce_days(bootstrap, names["topic"], days, "run-1")
    create_topics(bootstrap, names["realtime"])
    holder = Consumer({"bootstrap.servers": bootstrap, "group.id": names["group"], "session.timeout.ms": 6000,
                       "max.poll.interval.ms": 8000, "heartbeat.interval.ms": 1000, "enable.auto.commit": False})
    log = tmp_path / "consumer.log"
    try:
        holder.subscribe([names["topic"], names["realtime"]])
        deadline = time.monotonic() + 60
        while not holder.assignment():
            holder.poll(0.2)
            assert time.monotonic() < deadline, "the holder never got partitions"
        proc = start(consume_cmd(bootstrap, service_env.questdb_http, names, "--exit-when-idle", "1",
                                 "--stats-json", str(tmp_path / "stats.json")), log)
        assert finish(proc, log) == 0, log.read_text()[-4000:]
    finally:
        holder.close()
    assert observed(QuestDBRest(service_env.questdb_http), names["table"])["rows"] == rows
    assert committed_behind(bootstrap, names["group"], [names["topic"], names["realtime"]]) == 0


def test_exit_when_idle_on_empty_topics_exits_after_assignment(service_env, names, tmp_path):
    create_topics(service_env.kafka_bootstrap, names["topic"], names["realtime"])
    log = tmp_path / "consumer.log"
    proc = start(consume_cmd(service_env.kafka_bootstrap, service_env.questdb_http, names, "--exit-when-idle", "0.5"),
                 log)
    assert finish(proc, log) == 0, log.read_text()[-4000:]
    text = log.read_text()
    assert text.index("partitions assigned") < text.index("no lag: stopping")


def test_questdb_unreachable_at_start_is_waited_for(service_env, names, tmp_path):
    bootstrap = service_env.kafka_bootstrap
    days = three_days(points=10)
    exp = expected(days)
    produce_days(bootstrap, names["topic"], days, "run-1")
    create_topics(bootstrap, names["realtime"])
    log = tmp_path / "consumer.log"
    with TcpProxy(service_env.questdb_http) as questdb:  # nothing listens yet
        proc = start(consume_cmd(bootstrap, questdb.addr, names, "--exit-when-idle", "2"), log)
        wait_until(lambda: log.read_text().count("retrying in") >= 3, "retry waits logged", proc, log)
        questdb.up()
        assert finish(proc, log) == 0, log.read_text()[-4000:]
    assert f"checking table '{names['table']}' at QuestDB {questdb.addr} failed" in log.read_text()
    assert observed(QuestDBRest(service_env.questdb_http), names["table"]) == exp
    assert committed_behind(bootstrap, names["group"], [names["topic"], names["realtime"]]) == 0


def test_questdb_lost_mid_consume_then_back_is_exact(service_env, names, tmp_path):
    bootstrap = service_env.kafka_bootstrap
    days = three_days(points=40)
    exp = expected(days)
    produce_days(bootstrap, names["topic"], days, "run-1")
    create_topics(bootstrap, names["realtime"])
    topics = [names["topic"], names["realtime"]]
    total = committed_behind(bootstrap, names["group"], topics)
    log = tmp_path / "consumer.log"
    with TcpProxy(service_env.questdb_http) as questdb:
        questdb.up()
        proc = start(consume_cmd(bootstrap, questdb.addr, names, "--batch-rows", "5000", "--max-rows-per-second",
                                 "30000", "--exit-when-idle", "2"), log)
        wait_until(lambda: committed_behind(bootstrap, names["group"], topics) < total, "commit", proc, log)
        questdb.down()
        # Five waits (>= 4.5 s): rows accepted just before the outage have been committed by now.
        wait_until(lambda: "sending rows to QuestDB ILP/HTTP" in log.read_text() and
                   log.read_text().count("retrying in") >= 5, "retry waits logged", proc, log)
        behind = committed_behind(bootstrap, names["group"], topics)
        assert behind > 0
        time.sleep(1.5)
        assert committed_behind(bootstrap, names["group"], topics) == behind  # nothing commits while QuestDB is away
        questdb.up()
        assert finish(proc, log) == 0, log.read_text()[-4000:]
    rest = QuestDBRest(service_env.questdb_http)
    assert observed(rest, names["table"]) == exp
    assert rest.rows(f"SELECT count() FROM (SELECT DISTINCT ts, point, seq FROM {names['table']})")[0][0] == exp["rows"]
    assert committed_behind(bootstrap, names["group"], topics) == 0
    assert "fetching paused" in log.read_text()


def test_retry_budget_exhausted_exits_1_with_offsets_uncommitted(service_env, names, tmp_path):
    bootstrap = service_env.kafka_bootstrap
    produce_days(bootstrap, names["topic"], {DAY0: day_batches(DAY0, points=5)}, "run-1")
    create_topics(bootstrap, names["realtime"])
    topics = [names["topic"], names["realtime"]]
    total = committed_behind(bootstrap, names["group"], topics)
    log = tmp_path / "consumer.log"
    with TcpProxy(service_env.questdb_http) as questdb:
        proc = start(consume_cmd(bootstrap, questdb.addr, names, "--questdb-retry-seconds", "3"), log)
        assert finish(proc, log) == 1
    text = log.read_text()
    assert f"QuestDB at {questdb.addr} stayed unreachable for the retry budget of 3s (--questdb-retry-seconds)" in text
    assert "Traceback" not in text
    assert committed_behind(bootstrap, names["group"], topics) == total > 0


def test_bad_messages_go_to_the_dead_letter_topic_and_the_consumer_moves_on(service_env, names, tmp_path):
    bootstrap = service_env.kafka_bootstrap
    create_topics(bootstrap, names["topic"], names["realtime"])
    good = day_batches(DAY0, points=3)[0]
    messages = list(iter_messages([good], samples_per_message=50))
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    half = len(messages) // 2
    for point, mb in messages[:half]:
        producer.produce(names["topic"], key=point.encode(), value=encode_value(mb))
    producer.produce(names["topic"], key=b"P1", value=b'{"ts": 1}', headers=[("origin", b"json-producer")])
    producer.produce(names["topic"], key=None, value=encode_value(messages[0][1]))
    for point, mb in messages[half:]:
        producer.produce(names["topic"], key=point.encode(), value=encode_value(mb))
    producer.produce(names["realtime"], key=b"P2", value=b"not arrow")
    assert producer.flush(30) == 0
    log = tmp_path / "consumer.log"
    for _ in range(2):  # the restart re-reads nothing: offsets of refused messages were committed
        proc = start(consume_cmd(bootstrap, service_env.questdb_http, names, "--exit-when-idle", "1",
                                 "--stats-json", str(tmp_path / "stats.json")), log)
        assert finish(proc, log) == 0, log.read_text()[-4000:]
    assert observed(QuestDBRest(service_env.questdb_http), names["table"])["rows"] == good.num_rows
    assert committed_behind(bootstrap, names["group"], [names["topic"], names["realtime"]]) == 0
    letters = read_all(bootstrap, names["dlq"])
    assert len(letters) == 3
    by_where = {(dict(m.headers())["naia-dlq-topic"].decode(), int(dict(m.headers())["naia-dlq-offset"])): m
                for m in letters}
    assert set(by_where) == {(names["topic"], half), (names["topic"], half + 1), (names["realtime"], 0)}
    json_letter = dict(by_where[(names["topic"], half)].headers())
    assert json_letter["origin"] == b"json-producer"
    assert json_letter["naia-dlq-partition"] == b"0" and json_letter["naia-dlq-group"] == names["group"].encode()
    assert b"not an Arrow IPC stream" in json_letter["naia-dlq-reason"]
    assert by_where[(names["topic"], half)].value() == b'{"ts": 1}'
    assert dict(by_where[(names["topic"], half + 1)].headers())["naia-dlq-reason"] == b"message has no key (the point name)"


def test_skip_bad_messages_skips_without_a_dead_letter_topic(service_env, names, tmp_path):
    bootstrap = service_env.kafka_bootstrap
    create_topics(bootstrap, names["topic"], names["realtime"])
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(names["topic"], key=b"P1", value=b"garbage")
    assert producer.flush(30) == 0
    log = tmp_path / "consumer.log"
    cmd = [a for a in consume_cmd(bootstrap, service_env.questdb_http, names, "--exit-when-idle", "1",
                                  "--skip-bad-messages") if a not in ("--dead-letter-topic", names["dlq"])]
    assert finish(start(cmd, log), log) == 0, log.read_text()[-4000:]
    assert f"skipping undecodable message {names['topic']}[0]@0 (--skip-bad-messages)" in log.read_text()
    assert committed_behind(bootstrap, names["group"], [names["topic"]]) == 0
    admin = AdminClient({"bootstrap.servers": bootstrap})
    assert names["dlq"] not in admin.list_topics(timeout=10).topics


def test_killed_mid_stream_then_restarted_loads_exactly(service_env, names, tmp_path):
    bootstrap = service_env.kafka_bootstrap
    days = three_days(points=60)
    exp = expected(days)
    produce_days(bootstrap, names["topic"], days, "run-1")
    realtime = day_batches(DAY0 + dt.timedelta(days=10), points=5)[0]
    rt_rows = produce_realtime(bootstrap, names["realtime"], realtime)
    topics = [names["topic"], names["realtime"]]
    total = committed_behind(bootstrap, names["group"], topics)
    log = tmp_path / "consumer.log"
    cmd = consume_cmd(bootstrap, service_env.questdb_http, names)
    proc = start([*cmd, "--batch-rows", "5000", "--max-rows-per-second", "20000"], log)
    try:
        wait_until(lambda: committed_behind(bootstrap, names["group"], topics) < total, "commit", proc, log)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert committed_behind(bootstrap, names["group"], topics) > 0  # killed mid-stream
    finally:
        if proc.poll() is None:
            proc.kill()
    rest = QuestDBRest(service_env.questdb_http)
    wait_for_wal(rest, names["table"])
    assert rest.count(names["table"]) < exp["rows"] + rt_rows

    proc = start([*cmd, "--exit-when-idle", "2"], log)
    assert finish(proc, log) == 0, log.read_text()[-4000:]
    got = observed(rest, names["table"])
    assert got["rows"] == exp["rows"] + rt_rows
    assert rest.count(names["table"], "point_set = 'itest'") == exp["rows"]
    assert rest.count(names["table"], "point_set IS NULL") == rt_rows


def test_sigterm_drains_commits_and_leaves(service_env, names, tmp_path):
    bootstrap = service_env.kafka_bootstrap
    days = three_days(points=20)
    exp = expected(days)
    produce_days(bootstrap, names["topic"], days, "run-1")
    create_topics(bootstrap, names["realtime"])
    topics = [names["topic"], names["realtime"]]
    log = tmp_path / "consumer.log"
    proc = start(consume_cmd(bootstrap, service_env.questdb_http, names), log)
    wait_until(lambda: committed_behind(bootstrap, names["group"], topics) == 0, "catching up", proc, log)
    proc.send_signal(signal.SIGTERM)
    assert finish(proc, log, timeout=60) == 0, log.read_text()[-4000:]
    assert "consumer stopped" in log.read_text()
    assert observed(QuestDBRest(service_env.questdb_http), names["table"]) == exp
