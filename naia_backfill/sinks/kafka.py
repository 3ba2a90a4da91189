"""Kafka sink: a day of samples as compact Arrow messages on the backfill topic, one point per message
(the message format is in :mod:`naia_backfill.sinks.kafka_messages`). Messages are produced idempotently and
the day commits only once the broker acknowledged every one of them."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

import pyarrow as pa
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from naia_backfill.errors import SinkError
from naia_backfill.settings import KafkaSink
from naia_backfill.sinks.base import DayTarget, DayWriter, Sink, SinkResult
from naia_backfill.sinks.kafka_messages import REALTIME_TOPIC, MessageSplitter, encode_value, headers_for

log = logging.getLogger(__name__)
_rdkafka_log = log.getChild("librdkafka")


def producer_config(bootstrap: str, extra: Mapping[str, object] | None = None) -> dict[str, object]:
    """Idempotent, batched, zstd-compressed; ``queue.buffering.max.kbytes`` bounds the queued memory."""
    conf: dict[str, object] = {
        "bootstrap.servers": bootstrap,
        "client.id": "naia-backfill",
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": "zstd",
        "linger.ms": 50,
        "batch.size": 1_000_000,
        "batch.num.messages": 10_000,
        "queue.buffering.max.kbytes": 131_072,
        "queue.buffering.max.messages": 100_000,
        "message.max.bytes": 8 << 20,
        "message.timeout.ms": 120_000,
        "partitioner": "murmur2_random",
    }
    conf.update(extra or {})
    return conf


def ensure_topic(bootstrap: str, topic: str, partitions: int, replication: int = 1,
                 timeout: float = 30.0, extra: Mapping[str, object] | None = None) -> bool:
    """Create ``topic`` unless it exists; True if it was created. Raises SinkError naming the broker."""
    conf = {k: v for k, v in (extra or {}).items() if k.startswith(("security.", "sasl.", "ssl."))}
    admin = AdminClient({"bootstrap.servers": bootstrap, "logger": _rdkafka_log, **conf})
    try:
        if topic in admin.list_topics(timeout=timeout).topics:
            return False
        fut = admin.create_topics(
            [NewTopic(topic, num_partitions=partitions, replication_factor=replication,
                      config={"max.message.bytes": str(8 << 20)})],
            request_timeout=timeout,
        )[topic]
        fut.result(timeout=timeout)
        log.info("created Kafka topic %s (%d partitions, replication %d) on %s", topic, partitions, replication,
                 bootstrap)
        return True
    except KafkaException as e:
        if e.args and isinstance(e.args[0], KafkaError) and e.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
            return False
        raise SinkError(f"Kafka broker {bootstrap}: cannot check or create topic {topic!r}: {e}") from e


class KafkaDaySink(Sink):
    """Writes each day to the backfill topic (never the realtime topic ``naia.datapoints``)."""

    kind = "kafka"

    def __init__(self, settings: KafkaSink, bootstrap_servers: str, *, producer_extra: Mapping[str, object] | None
                 = None, replication: int = 1, create_topic: bool = True, max_pending_rows: int = 500_000,
                 flush_timeout: float | None = None, admin_timeout: float = 30.0) -> None:
        if settings.topic == REALTIME_TOPIC:
            raise SinkError(f"the Kafka sink writes backfills; {REALTIME_TOPIC!r} is the realtime topic")
        self.settings = settings
        self.bootstrap = bootstrap_servers
        self.config = producer_config(bootstrap_servers, producer_extra)
        self.replication = replication
        self.max_pending_rows = max_pending_rows
        self.admin_timeout = admin_timeout
        self.flush_timeout = flush_timeout or int(self.config["message.timeout.ms"]) / 1000 + 30  # type: ignore
        self._producer: Producer | None = None
        self._topic_ready = not create_topic
        self.last_error: KafkaError | None = None

    def _error_cb(self, err: KafkaError) -> None:
        if self.last_error is None or err.str() != self.last_error.str():
            (log.error if err.fatal() else log.warning)("Kafka producer (%s): %s", self.bootstrap, err.str())
        self.last_error = err

    @property
    def producer(self) -> Producer:
        if self._producer is None:
            self._producer = Producer({**self.config, "error_cb": self._error_cb, "logger": _rdkafka_log})
        return self._producer

    def open_day(self, target: DayTarget) -> DayWriter:
        if self.last_error is not None and self.last_error.fatal():
            self._producer = None  # a fatal producer error: start a new one
        self.last_error = None
        if not self._topic_ready:
            ensure_topic(self.bootstrap, self.settings.topic, self.settings.partitions, self.replication,
                         timeout=self.admin_timeout, extra=self.config)
            self._topic_ready = True
        return KafkaDayWriter(self, target)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(10)
            self._producer = None


class KafkaDayWriter(DayWriter):
    def __init__(self, sink: KafkaDaySink, target: DayTarget) -> None:
        self.sink, self.target = sink, target
        self.topic = sink.settings.topic
        self.splitter = MessageSplitter(sink.settings.samples_per_message, sink.max_pending_rows)
        self.rows = self.messages = self.bytes = self.acked = self.failed = 0
        self.errors: list[str] = []
        self.started = time.monotonic()

    def _on_delivery(self, err: KafkaError | None, msg: object) -> None:
        if err is None:
            self.acked += 1
        else:
            self.failed += 1
            if len(self.errors) < 3 and err.str() not in self.errors:
                self.errors.append(err.str())

    def _where(self) -> str:
        return f"of {self.target.point_set} {self.target.day} on topic {self.topic!r}"

    def _last(self) -> str:
        last = self.sink.last_error
        return f" (last broker error: {last.str()})" if last is not None else ""

    def _fail_if_errors(self) -> None:
        if self.failed:
            raise SinkError(f"Kafka broker {self.sink.bootstrap}: {self.failed} message(s) {self._where()} were not "
                            f"delivered: {'; '.join(self.errors)}{self._last()}")

    def _unacked(self, left: int) -> SinkError:
        return SinkError(f"Kafka broker {self.sink.bootstrap} did not acknowledge {left} message(s) {self._where()} "
                         f"within {self.sink.flush_timeout:.0f}s{self._last()}")

    def write(self, batch: pa.RecordBatch) -> None:
        self._produce(self.splitter.add(batch))
        self.sink.producer.poll(0)
        self._fail_if_errors()

    def _produce(self, messages: list[tuple[str, pa.RecordBatch]]) -> None:
        producer = self.sink.producer
        for point, mb in messages:
            value = encode_value(mb)
            key = point.encode()
            headers = headers_for(self.target, mb.num_rows)
            deadline = None
            while True:
                try:
                    producer.produce(self.topic, value=value, key=key, headers=headers, on_delivery=self._on_delivery)
                    break
                except BufferError:  # queue full: serve delivery reports until there is room
                    deadline = deadline or time.monotonic() + self.sink.flush_timeout
                    producer.poll(0.05)
                    self._fail_if_errors()
                    if time.monotonic() > deadline:
                        raise self._unacked(len(producer)) from None
            self.messages += 1
            self.rows += mb.num_rows
            self.bytes += len(value)

    def commit(self) -> SinkResult:
        self._produce(self.splitter.finish())
        left = self.sink.producer.flush(self.sink.flush_timeout)
        self._fail_if_errors()
        if left or self.acked != self.messages:
            raise self._unacked(left or self.messages - self.acked)
        seconds = time.monotonic() - self.started
        return SinkResult(
            sink="kafka", rows=self.rows, bytes=self.bytes, uri=f"kafka://{self.sink.bootstrap}/{self.topic}",
            extra={"messages": self.messages, "topic": self.topic, "seconds": round(seconds, 3)},
        )

    def abort(self) -> None:
        self.splitter.clear()
        try:
            if self.sink._producer is not None:
                self.sink._producer.purge(in_queue=True, in_flight=False)
                self.sink._producer.poll(0)
        except Exception:  # abort never raises
            log.exception("purging the Kafka producer queue failed")
