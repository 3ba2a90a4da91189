"""Kafka -> QuestDB: moves the realtime and the backfill topics into the samples table.

Both topics carry the ``naia-samples/1`` format (see :mod:`naia_backfill.sinks.kafka`). Messages are
decoded into Arrow, written over ILP/HTTP in large batches, and offsets are committed only after QuestDB
accepted the batch: a crash re-delivers at most the uncommitted batch, and the table's dedup keys make that
harmless. SIGTERM/SIGINT finish the current batch, commit, leave the group and return.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import signal
import threading
import time
from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from naia_backfill.errors import NaiaError, SinkError
from naia_backfill.sinks.kafka import MESSAGE_SCHEMA, REALTIME_TOPIC, decode_value, header_dict
from naia_backfill.sinks.questdb import COLUMNS, IlpWriter, QuestDBRest, ensure_table

log = logging.getLogger(__name__)

BACKFILL_TOPIC = "naia.datapoints.backfill"


def consumer_config(bootstrap: str, group_id: str, extra: Mapping[str, object] | None = None) -> dict[str, object]:
    conf: dict[str, object] = {
        "bootstrap.servers": bootstrap,
        "group.id": group_id,
        "client.id": "naia-consumer",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "fetch.max.bytes": 16 << 20,
        "max.partition.fetch.bytes": 4 << 20,
        "queued.max.messages.kbytes": 32_768,  # prefetched messages: bounds memory
        "session.timeout.ms": 30_000,
        "heartbeat.interval.ms": 3_000,
    }
    conf.update(extra or {})
    return conf


@dataclasses.dataclass
class ConsumerStats:
    rows: int = 0
    messages: int = 0
    batches: int = 0
    bad_messages: int = 0
    seconds: float = 0.0
    #: From the first message received to the last batch QuestDB accepted (excludes group join and idling).
    active_seconds: float = 0.0
    first_message: float | None = dataclasses.field(default=None, repr=False)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.active_seconds if self.active_seconds else 0.0


class _Pending:
    """Decoded messages waiting to be written, and the offsets to commit once they are."""

    def __init__(self) -> None:
        self.batches: list[pa.RecordBatch] = []
        self.points: list[str] = []
        self.point_sets: list[str | None] = []
        self.offsets: dict[tuple[str, int], int] = {}
        self.rows = 0
        self.since = 0.0

    def add(self, msg: Message, batch: pa.RecordBatch) -> None:
        if not self.batches:
            self.since = time.monotonic()
        self.batches.append(batch)
        self.points.append((msg.key() or b"").decode("utf-8"))
        self.point_sets.append(header_dict(msg.headers()).get("naia-point-set") or None)
        self.rows += batch.num_rows
        self.skip(msg)

    def skip(self, msg: Message) -> None:
        self.offsets[(msg.topic(), msg.partition())] = msg.offset()

    def table(self) -> pa.Table:
        lengths = np.fromiter((b.num_rows for b in self.batches), dtype=np.int64, count=len(self.batches))
        body = pa.Table.from_batches(self.batches, schema=MESSAGE_SCHEMA).combine_chunks()  # one chunk: fast compute
        cols = {name: body.column(name) for name in MESSAGE_SCHEMA.names}
        cols["point"] = _repeat_dictionary(self.points, lengths)
        cols["point_set"] = _repeat_dictionary(self.point_sets, lengths)
        return pa.table({name: cols[name] for name in COLUMNS})

    def commit_list(self) -> list[TopicPartition]:
        return [TopicPartition(t, p, o + 1) for (t, p), o in self.offsets.items()]


def _repeat_dictionary(values: Sequence[str | None], lengths: np.ndarray) -> pa.DictionaryArray:
    """Each value repeated ``lengths`` times, dictionary-encoded; None becomes null."""
    codes: dict[str | None, int] = {}
    idx = np.fromiter((-1 if v is None else codes.setdefault(v, len(codes)) for v in values), dtype=np.int32,
                      count=len(values))
    rows = np.repeat(idx, lengths)
    return pa.DictionaryArray.from_arrays(pa.array(rows, mask=rows < 0), pa.array(list(codes), pa.string()))


class QuestDBConsumer:
    def __init__(self, bootstrap: str, questdb_http: str, *, topics: Sequence[str], group_id: str, table: str,
                 batch_rows: int, batch_seconds: float, max_rows_per_second: float | None, log_interval: float,
                 skip_bad_messages: bool, consumer_extra: Mapping[str, object] | None) -> None:
        self.bootstrap, self.topics, self.table = bootstrap, list(topics), table
        self.batch_rows, self.batch_seconds = batch_rows, batch_seconds
        self.max_rows_per_second, self.log_interval = max_rows_per_second, log_interval
        self.skip_bad_messages = skip_bad_messages
        rest = QuestDBRest(questdb_http)
        try:
            ensure_table(rest, table)
        finally:
            rest.close()
        self.writer = IlpWriter(questdb_http, table, flush_rows=min(max(batch_rows, 1), 200_000))
        self.consumer = Consumer({**consumer_config(bootstrap, group_id, consumer_extra),
                                  "logger": log.getChild("librdkafka")})
        self.pending = _Pending()
        self.unacked: collections.deque[tuple[int, list[TopicPartition], int]] = collections.deque()
        self.stats = ConsumerStats()
        self.failed = False

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("partitions revoked: %s", ", ".join(f"{p.topic}[{p.partition}]" for p in partitions))
        if not self.failed:
            self.flush()

    def flush(self, wait: bool = True) -> None:
        """Hand what is pending to the QuestDB writer; commit offsets of every batch QuestDB acknowledged.

        With ``wait`` block until all of it is acknowledged and committed; without, the batch is committed by a
        later call once its rows are acknowledged, so decoding the next batch overlaps the write."""
        p = self.pending
        if p.batches:
            self.writer.write(p.table())
        self.writer.submit()
        if p.offsets:
            self.unacked.append((self.writer.submitted, p.commit_list(), p.rows))
        self.pending = _Pending()
        if wait:
            self.writer.flush()
        self._commit_acknowledged()

    def _commit_acknowledged(self) -> None:
        sent = self.writer.poll()
        offsets: dict[tuple[str, int], TopicPartition] = {}
        while self.unacked and self.unacked[0][0] <= sent:
            _, tps, rows = self.unacked.popleft()
            offsets.update({(tp.topic, tp.partition): tp for tp in tps})
            if rows:
                self.stats.batches += 1
                self.stats.rows += rows
                self.stats.active_seconds = time.monotonic() - (self.stats.first_message or time.monotonic())
        if offsets:
            try:
                self.consumer.commit(offsets=list(offsets.values()), asynchronous=False)
            except KafkaException as e:
                # Rows are in QuestDB; the uncommitted messages come again and are deduplicated.
                log.warning("committing offsets to %s failed (messages will be re-read): %s", self.bootstrap, e)

    def _handle(self, msg: Message) -> None:
        err = msg.error()
        if err is not None:
            if err.fatal():
                raise KafkaException(err)
            if err.code() != KafkaError._PARTITION_EOF:
                log.warning("Kafka consumer (%s): %s", self.bootstrap, err)
            return
        self.stats.messages += 1
        if self.stats.first_message is None:
            self.stats.first_message = time.monotonic()
        try:
            batch = decode_value(msg.value() or b"")
            if not msg.key():
                raise ValueError("message has no key (the point name)")
        except ValueError as e:
            where = f"{msg.topic()}[{msg.partition()}]@{msg.offset()}"
            if not self.skip_bad_messages:
                raise SinkError(f"undecodable message {where}: {e} (use --skip-bad-messages to skip such)") from e
            log.error("skipping undecodable message %s: %s", where, e)
            self.stats.bad_messages += 1
            self.pending.skip(msg)
            return
        self.pending.add(msg, batch)

    def lag(self) -> int | None:
        total = 0
        try:
            for tp in self.consumer.position(self.consumer.assignment()):
                hi = self.consumer.get_watermark_offsets(tp, cached=True)[1]
                if tp.offset >= 0 and hi >= 0:
                    total += max(0, hi - tp.offset)
        except KafkaException:
            return None
        return total

    def run(self, stop: threading.Event, exit_when_idle: float | None = None) -> ConsumerStats:
        self.consumer.subscribe(self.topics, on_revoke=self._on_revoke)
        log.info("consuming %s from %s into QuestDB table %s", ", ".join(self.topics), self.bootstrap, self.table)
        started = last_log = last_msg = time.monotonic()
        logged_rows = 0
        try:
            while not stop.is_set():
                msgs = self.consumer.consume(num_messages=500, timeout=0.2)
                for msg in msgs:
                    self._handle(msg)
                    if self.pending.rows >= self.batch_rows:
                        self.flush(wait=False)
                        self._throttle(started)
                now = time.monotonic()
                if msgs:
                    last_msg = now
                if self.pending.offsets and now - self.pending.since >= self.batch_seconds:
                    self.flush(wait=False)
                    self._throttle(started)
                elif self.unacked:
                    self._commit_acknowledged()
                if now - last_log >= self.log_interval:
                    rate = (self.stats.rows - logged_rows) / (now - last_log)
                    log.info("%d rows written (%.0f rows/s), lag %s messages", self.stats.rows, rate, self.lag())
                    last_log, logged_rows = now, self.stats.rows
                if exit_when_idle is not None and not msgs and now - last_msg >= exit_when_idle and self.lag() == 0:
                    log.info("no messages for %.1fs and no lag: stopping", exit_when_idle)
                    break
            self.flush()
        except BaseException:
            self.failed = True  # leave the group without writing or committing the pending batch
            raise
        finally:
            self.stats.seconds = time.monotonic() - started
            self.consumer.close()
            self.writer.close()
        log.info("consumer stopped: %d rows in %d messages, %.1fs (%.0f rows/s from first message to last write)",
                 self.stats.rows, self.stats.messages, self.stats.seconds, self.stats.rows_per_second)
        return self.stats

    def _throttle(self, started: float) -> None:
        if self.max_rows_per_second:
            ahead = self.writer.submitted / self.max_rows_per_second - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)


def run_consumer(bootstrap: str, questdb_http: str, *, topics: Sequence[str] = (REALTIME_TOPIC, BACKFILL_TOPIC),
                 group_id: str = "naia-questdb", table: str = "naia_samples", batch_rows: int = 250_000,
                 batch_seconds: float = 1.0, max_rows_per_second: float | None = None, log_interval: float = 10.0,
                 skip_bad_messages: bool = False, consumer_extra: Mapping[str, object] | None = None,
                 stop: threading.Event | None = None, exit_when_idle: float | None = None) -> ConsumerStats:
    """Consume ``topics`` into QuestDB until SIGTERM/SIGINT (or ``stop`` is set, or ``exit_when_idle`` seconds pass
    without messages and without lag). Raises SinkError/KafkaException on failures, with offsets uncommitted."""
    stop = stop or threading.Event()
    consumer = QuestDBConsumer(
        bootstrap, questdb_http, topics=topics, group_id=group_id, table=table, batch_rows=batch_rows,
        batch_seconds=batch_seconds, max_rows_per_second=max_rows_per_second, log_interval=log_interval,
        skip_bad_messages=skip_bad_messages, consumer_extra=consumer_extra)
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda signum, frame: stop.set())
    try:
        return consumer.run(stop, exit_when_idle)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
