"""Kafka sink: a day of samples as compact Arrow messages on the backfill topic, one point per message.

Message format ``naia-samples`` version 1 (the consumer and realtime producers use the same):

* key: the point name, UTF-8 -- a point's messages land in one partition, in time order;
* value: an Arrow IPC *stream* (schema, one record batch, end marker; buffers uncompressed -- Kafka
  compresses whole record batches) with the columns of :data:`MESSAGE_SCHEMA`: the canonical sample
  columns without ``point`` plus ``seq``, the event's ordinal among the point's events at that ``ts``;
* headers: ``content-type`` = ``application/vnd.apache.arrow.stream``, ``naia-format`` = ``naia-samples/1``,
  ``naia-point-set``, ``naia-day`` (YYYY-MM-DD), ``naia-run-id``, ``naia-rows``, and ``naia-group`` when set.

At most ``samples_per_message`` events per message; a point's events are carried over between batches so
messages are full except a point's last one of the day (or when ``max_pending_rows`` forces them out).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from naia_backfill.errors import SinkError
from naia_backfill.schema import SAMPLE_SCHEMA, EventSeq, conform
from naia_backfill.settings import KafkaSink
from naia_backfill.sinks.base import DayTarget, DayWriter, Sink, SinkResult

log = logging.getLogger(__name__)
_rdkafka_log = log.getChild("librdkafka")

CONTENT_TYPE = "application/vnd.apache.arrow.stream"
FORMAT = "naia-samples/1"
REALTIME_TOPIC = "naia.datapoints"
MESSAGE_SCHEMA = pa.schema(
    [pa.field("ts", pa.timestamp("ns", tz="UTC"), nullable=False), pa.field("seq", pa.int32(), nullable=False)]
    + [f for f in SAMPLE_SCHEMA if f.name not in ("point", "ts")]
)
_REQUIRED = [i for i, f in enumerate(MESSAGE_SCHEMA) if not f.nullable]
_FLAG_DEFAULTS = {"is_system": False, "good": True, "questionable": False, "substituted": False, "annotated": False}


def encode_value(batch: pa.RecordBatch) -> bytes:
    """One message value: ``batch`` (columns of :data:`MESSAGE_SCHEMA`) as an Arrow IPC stream."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, MESSAGE_SCHEMA) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def split_messages(batch: pa.RecordBatch, samples_per_message: int, tail_budget: int = 0
                   ) -> tuple[list[tuple[str, pa.RecordBatch]], pa.RecordBatch | None]:
    """Split a batch (canonical columns plus ``seq``) into (point, message batch) pairs, each point's rows in order.

    Each point's last partial message is held back instead (returned as one batch with the input's columns,
    to go in front of the next batch) while the held-back rows fit ``tail_budget``; the smallest are held.
    """
    n = batch.num_rows
    if n == 0:
        return [], None
    codes = pc.dictionary_encode(batch.column("point"))
    idx = codes.indices.to_numpy(zero_copy_only=False)
    order = np.argsort(idx, kind="stable")
    sidx = idx[order]
    starts = np.flatnonzero(np.r_[True, sidx[1:] != sidx[:-1]])
    ends = np.r_[starts[1:], n]
    tails = (ends - starts) % samples_per_message
    by_size = np.argsort(tails, kind="stable")
    held = np.zeros(len(starts), dtype=bool)
    held[by_size[np.cumsum(tails[by_size]) <= tail_budget]] = True
    held &= tails > 0
    ordered = batch.select(MESSAGE_SCHEMA.names).take(pa.array(order))
    ordered = pa.RecordBatch.from_arrays(ordered.columns, schema=MESSAGE_SCHEMA)
    names = codes.dictionary.to_pylist()
    out: list[tuple[str, pa.RecordBatch]] = []
    for s, e, t, h in zip(starts.tolist(), ends.tolist(), tails.tolist(), held.tolist(), strict=True):
        name = names[int(sidx[s])]
        for a in range(s, e - t if h else e, samples_per_message):
            out.append((name, ordered.slice(a, min(samples_per_message, (e - t if h else e) - a))))
    if not held.any():
        return out, None
    keep = np.concatenate([order[e - t:e] for e, t in zip(ends[held], tails[held], strict=True)])
    return out, batch.take(pa.array(keep))


class MessageSplitter:
    """Turns a day's canonical batches into (point, message batch) pairs. Each point's partial message is
    carried over to the next batch (up to half of ``max_pending_rows`` rows) so messages are mostly full;
    at most about ``max_pending_rows`` rows wait."""

    def __init__(self, samples_per_message: int, max_pending_rows: int = 500_000) -> None:
        self.spm = samples_per_message
        self.max_pending_rows = max_pending_rows
        self.seq = EventSeq()
        self.pending: list[pa.RecordBatch] = []
        self.pending_rows = 0

    def add(self, batch: pa.RecordBatch) -> list[tuple[str, pa.RecordBatch]]:
        batch = conform(batch)
        if batch.num_rows == 0:
            return []
        self.pending.append(batch.append_column(pa.field("seq", pa.int32(), nullable=False),
                                                pa.array(self.seq(batch), pa.int32())))
        self.pending_rows += batch.num_rows
        return self._drain(final=False) if self.pending_rows >= self.max_pending_rows else []

    def finish(self) -> list[tuple[str, pa.RecordBatch]]:
        return self._drain(final=True)

    def clear(self) -> None:
        self.pending, self.pending_rows = [], 0

    def _drain(self, final: bool) -> list[tuple[str, pa.RecordBatch]]:
        if not self.pending:
            return []
        whole = pa.Table.from_batches(self.pending).combine_chunks().to_batches()[0]
        self.clear()
        messages, tail = split_messages(whole, self.spm, 0 if final else self.max_pending_rows // 2)
        if tail is not None:
            self.pending, self.pending_rows = [tail], tail.num_rows
        return messages


def decode_value(value: bytes | memoryview) -> pa.RecordBatch:
    """Decode a message value into a batch with exactly :data:`MESSAGE_SCHEMA`.

    Tolerates what a realtime producer may leave out: ``seq`` (then numbered within the message), the
    flag columns (canonical defaults) and value/text/state_code (null); other columns are ignored.
    """
    try:
        reader = pa.ipc.open_stream(value)
        batches = list(reader)
    except (pa.ArrowInvalid, OSError) as e:
        raise ValueError(f"message value is not an Arrow IPC stream: {e}") from e
    if reader.schema.equals(MESSAGE_SCHEMA) and len(batches) == 1:  # what our producers write: no copies
        batch = batches[0]
        for i in _REQUIRED:
            if batch.column(i).null_count:
                raise ValueError(f"message column {MESSAGE_SCHEMA.names[i]!r} must not contain nulls")
        return batch
    table = pa.Table.from_batches(batches, schema=reader.schema)
    n = table.num_rows
    if "ts" not in table.column_names:
        raise ValueError("message has no 'ts' column")
    cols = []
    for field in MESSAGE_SCHEMA:
        if field.name in table.column_names:
            col = table.column(field.name).combine_chunks()
            if col.type != field.type:
                col = col.cast(field.type)
            if not field.nullable and col.null_count:
                raise ValueError(f"message column {field.name!r} must not contain nulls")
        elif field.name == "seq":
            col = pa.array(_seq_within(table.column("ts").combine_chunks().cast(pa.int64()).to_numpy()))
        elif field.name in _FLAG_DEFAULTS:
            col = pa.array(np.full(n, _FLAG_DEFAULTS[field.name]))
        else:
            col = pa.nulls(n, field.type)
        cols.append(col)
    return pa.RecordBatch.from_arrays(cols, schema=MESSAGE_SCHEMA)


def _seq_within(ts: np.ndarray) -> np.ndarray:
    """Ordinal of each event among the message's events with the same timestamp, in message order."""
    n = len(ts)
    order = np.argsort(ts, kind="stable")
    sts = ts[order]
    starts = np.flatnonzero(np.r_[True, sts[1:] != sts[:-1]])
    seq = np.empty(n, dtype=np.int32)
    seq[order] = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))
    return seq


def headers_for(target: DayTarget, rows: int) -> list[tuple[str, bytes]]:
    h = [
        ("content-type", CONTENT_TYPE.encode()),
        ("naia-format", FORMAT.encode()),
        ("naia-point-set", target.point_set.encode()),
        ("naia-day", target.day.isoformat().encode()),
        ("naia-run-id", target.run_id.encode()),
        ("naia-rows", str(rows).encode()),
    ]
    if target.group:
        h.append(("naia-group", target.group.encode()))
    return h


def header_dict(headers: Sequence[tuple[str, bytes | None]] | None) -> dict[str, str]:
    return {k: (v or b"").decode("utf-8", "replace") for k, v in headers or ()}


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


def iter_messages(batches: Sequence[pa.RecordBatch], samples_per_message: int = 1000,
                  max_pending_rows: int = 500_000) -> Iterator[tuple[str, pa.RecordBatch]]:
    """Every (point, message batch) a day's canonical batches become, exactly as the Kafka sink sends them."""
    splitter = MessageSplitter(samples_per_message, max_pending_rows)
    for b in batches:
        yield from splitter.add(b)
    yield from splitter.finish()
