"""The consumer's main loop: poll Kafka, decode, batch, hand batches to the QuestDB writer, commit what it wrote."""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from naia_backfill.core.consumer.batching import BadMessage, PendingBatch, WriteJob, decode_message, merge_offsets
from naia_backfill.core.consumer.deadletter import DeadLetters
from naia_backfill.core.consumer.idle import IdleWatch, assignment_lag
from naia_backfill.core.consumer.options import (
    ConsumerOptions,
    QuestDBUnavailable,
    consumer_config,
    is_transient,
    security_config,
)
from naia_backfill.core.consumer.writer import QuestDBWriter
from naia_backfill.errors import SinkError
from naia_backfill.sinks.questdb import QuestDBRest, ensure_table

log = logging.getLogger("naia_backfill.core.consumer")

POLL_MESSAGES = 100  # per consume() call: bounds how far a batch can overshoot batch_rows
BACKPRESSURE_WAIT = 2.0  # seconds a full batch waits for the writer before fetching is paused


@dataclasses.dataclass
class ConsumerStats:
    """What one run of the consumer did."""

    rows: int = 0
    messages: int = 0
    batches: int = 0
    bad_messages: int = 0
    dead_lettered: int = 0
    retry_waits: int = 0
    seconds: float = 0.0
    #: From the first message received to the last batch QuestDB accepted (excludes group join and idling).
    active_seconds: float = 0.0
    first_message: float | None = dataclasses.field(default=None, repr=False)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.active_seconds if self.active_seconds else 0.0


class QuestDBConsumer:
    """Moves ``options.topics`` into QuestDB; offsets are committed only for rows QuestDB accepted and for refused
    messages the dead-letter topic acknowledged. ``stop`` ends the loop (the pending batch is still written)."""

    def __init__(self, options: ConsumerOptions, stop: threading.Event) -> None:
        self.o, self.stop = options, stop
        self.stats = ConsumerStats()
        self.pending = PendingBatch()
        self.waiting: WriteJob | None = None  # a batch the busy writer has not taken yet
        self.idle = IdleWatch(options.exit_when_idle)
        self.conf = consumer_config(options.bootstrap, options.group_id, options.consumer_extra)
        self.reset_latest = str(self.conf.get("auto.offset.reset")) in ("latest", "largest", "end")
        self.writer = QuestDBWriter(options.questdb_http, options.table, options.retry, stop,
                                    depth=options.queue_batches)
        self.dead_letters = DeadLetters(options.bootstrap, options.dead_letter_topic, options.group_id,
                                        security_config(options.consumer_extra)) if options.dead_letter_topic else None
        self.consumer: Consumer | None = None
        self.paused = self.failed = False
        self.revoke_error: BaseException | None = None
        self.handed_rows = 0
        self.started = time.monotonic()

    def prepare(self) -> None:
        """Create or check the table and connect, retrying while QuestDB is unreachable."""
        rest = QuestDBRest(self.o.questdb_http)
        try:
            self.o.retry.retrying(f"checking table {self.o.table!r} at QuestDB {rest.addr}", self.stop)(
                ensure_table, rest, self.o.table)
            self.writer.start()
        except Exception as e:
            if not is_transient(e):
                raise
            if self.stop.is_set():
                raise SinkError(f"stopped while QuestDB at {rest.addr} was unreachable: {e}") from e
            raise QuestDBUnavailable(f"QuestDB at {rest.addr} stayed unreachable for the retry budget of "
                                     f"{self.o.retry.budget:.0f}s (--questdb-retry-seconds): {e}") from e
        finally:
            rest.close()
        self.consumer = Consumer({**self.conf, "logger": log.getChild("librdkafka")})

    def run(self) -> ConsumerStats:
        assert self.consumer is not None, "prepare() first"
        self.consumer.subscribe(list(self.o.topics), on_assign=self._on_assign, on_revoke=self._on_revoke)
        log.info("consuming %s from %s into QuestDB table %s", ", ".join(self.o.topics), self.o.bootstrap, self.o.table)
        last_log, logged_rows = time.monotonic(), 0
        try:
            while not self.stop.is_set():
                msgs = self.consumer.consume(num_messages=POLL_MESSAGES, timeout=0.1)
                self._raise_pending_errors()
                now = time.monotonic()
                for msg in msgs:
                    self._handle(msg)
                if msgs:
                    self.idle.busy(now)
                self._hand_over(now)
                self._commit(self.writer.acknowledged())
                if now - last_log >= self.o.log_interval:
                    self._log_progress(now - last_log, self.stats.rows - logged_rows)
                    last_log, logged_rows = now, self.stats.rows
                if self._idle_done(now):
                    break
            self._drain()
        except BaseException:
            self.failed = True  # leave the group without writing or committing what is pending
            self.stop.set()  # and without waiting out the writer's retries
            raise
        finally:
            self.stats.seconds = time.monotonic() - self.started
            self.stats.retry_waits = self.writer.retry_waits
            self.consumer.close()
            self.writer.close()
            if self.dead_letters is not None:
                self.dead_letters.close()
        log.info("consumer stopped: %d rows in %d messages (%d refused), %.1fs (%.0f rows/s from first message to "
                 "last write)", self.stats.rows, self.stats.messages, self.stats.bad_messages, self.stats.seconds,
                 self.stats.rows_per_second)
        return self.stats

    def _raise_pending_errors(self) -> None:
        self.writer.raise_error()
        if self.revoke_error is not None:
            raise self.revoke_error

    def _handle(self, msg: Message) -> None:
        err = msg.error()
        if err is not None:
            if err.fatal():
                raise KafkaException(err)
            if err.code() != KafkaError._PARTITION_EOF:
                log.warning("Kafka consumer (%s): %s", self.o.bootstrap, err)
            return
        self.stats.messages += 1
        if self.stats.first_message is None:
            self.stats.first_message = time.monotonic()
        where = (msg.topic() or "", msg.partition() or 0, msg.offset() or 0)
        try:
            decoded = decode_message(msg.key(), msg.value(), msg.headers())
        except BadMessage as e:
            self._refuse(msg, where, str(e))
            return
        self.pending.add(where, decoded)
        if self.pending.rows >= self.o.batch_rows:
            self._hand_over(time.monotonic())

    def _refuse(self, msg: Message, where: tuple[str, int, int], reason: str) -> None:
        self.stats.bad_messages += 1
        if self.dead_letters is not None:
            self.dead_letters.send(msg, reason)
            self.stats.dead_lettered += 1
        else:
            log.error("skipping undecodable message %s[%d]@%d (--skip-bad-messages): %s", *where, reason)
        self.pending.skip(where)

    def _hand_over(self, now: float) -> None:
        """Give the pending batch to the writer when it is full or old enough.

        A busy writer is waited for up to BACKPRESSURE_WAIT seconds while librdkafka keeps prefetching (bounded by
        ``queued.max.messages.kbytes``); past that (QuestDB slow or unreachable) fetching is paused and the loop
        goes on polling, so memory stays bounded and the group keeps us. Pausing is the exception: librdkafka
        drops what it prefetched for a paused partition and fetches it again on resume."""
        p = self.pending
        if self.waiting is None:
            if not (p.rows >= self.o.batch_rows or p and now - p.since >= self.o.batch_seconds):
                return
            self.waiting, self.pending = p.job(), PendingBatch()
        if not self.writer.put(self.waiting, timeout=0 if self.paused else BACKPRESSURE_WAIT):
            self._set_paused(True)
            return
        self.handed_rows += self.waiting.rows
        self.waiting = None
        self._set_paused(False)
        self._throttle()

    def _set_paused(self, paused: bool) -> None:
        assert self.consumer is not None
        if paused != self.paused:
            assignment = self.consumer.assignment()
            (self.consumer.pause if paused else self.consumer.resume)(assignment)
            self.paused = paused
            log.debug("QuestDB writer %s: fetching %s", "busy" if paused else "has room",
                      "paused" if paused else "resumed")

    def _throttle(self) -> None:
        if self.o.max_rows_per_second:
            ahead = self.handed_rows / self.o.max_rows_per_second - (time.monotonic() - self.started)
            if ahead > 0:
                self.stop.wait(ahead)

    def _commit(self, jobs: list[WriteJob]) -> None:
        if not jobs:
            return
        assert self.consumer is not None
        now = time.monotonic()
        for job in jobs:
            self.stats.rows += job.rows
            self.stats.batches += 1 if job.rows else 0
        if self.stats.first_message is not None:
            self.stats.active_seconds = now - self.stats.first_message
        self.idle.busy(now)
        if self.dead_letters is not None:
            self.dead_letters.wait()  # a refused message's offset is committed only once its copy is acknowledged
        assigned = {(tp.topic, tp.partition) for tp in self.consumer.assignment()}
        offsets = merge_offsets(jobs, assigned)
        if not offsets:
            return
        try:
            self.consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                                 asynchronous=False)
        except KafkaException as e:
            # Rows are in QuestDB; the uncommitted messages come again and are deduplicated.
            log.warning("committing offsets to %s failed (messages will be re-read): %s", self.o.bootstrap, e)

    def _drain(self) -> None:
        """Write the waiting and pending batches and everything queued, then commit; raises if the writer failed."""
        for job in (self.waiting, self.pending.job() if self.pending else None):
            while job is not None and not self.writer.put(job, timeout=0.5):
                pass  # put() raises once the writer failed
        self.waiting, self.pending = None, PendingBatch()
        if not self.writer.wait_idle():
            self.writer.raise_error()
        self._commit(self.writer.acknowledged())

    def _idle_done(self, now: float) -> bool:
        if not self.idle.due(now) or self.pending or self.waiting is not None or self.writer.outstanding:
            return False
        assert self.consumer is not None
        lag = assignment_lag(self.consumer, self.reset_latest)
        if lag != 0:
            self.idle.busy(now)  # not idle after all: look again in exit_when_idle seconds
            return False
        log.info("no messages for %.1fs and no lag: stopping", self.o.exit_when_idle)
        return True

    def _log_progress(self, seconds: float, rows: int) -> None:
        # librdkafka's cached watermarks: no broker round trip per partition just for a log line.
        lag = assignment_lag(self.consumer, self.reset_latest, cached=True) if self.consumer is not None else None
        log.info("%d rows written (%.0f rows/s), lag %s messages%s", self.stats.rows, rows / seconds,
                 "unknown" if lag is None else lag, ", fetching paused (QuestDB writer busy)" if self.paused else "")

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("partitions assigned: %s", ", ".join(f"{p.topic}[{p.partition}]" for p in partitions) or "none")
        self.paused = False
        self.idle.assigned(time.monotonic())

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("partitions revoked: %s", ", ".join(f"{p.topic}[{p.partition}]" for p in partitions))
        if self.failed or self.revoke_error is not None:
            return
        try:
            self._drain()  # commit everything read so far while the partitions are still ours
        except Exception as e:  # noqa: BLE001 - re-raised from the main loop (lost inside librdkafka otherwise)
            self.revoke_error = e


def run_consumer(options: ConsumerOptions, stop: threading.Event | None = None) -> ConsumerStats:
    """Consume ``options.topics`` into QuestDB until SIGTERM/SIGINT (or ``stop`` is set, or ``exit_when_idle``
    seconds pass without messages and without lag). Raises SinkError/KafkaException on failures (QuestDBUnavailable
    when the retry budget ran out), with the offsets of unwritten rows uncommitted."""
    stop = stop or threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda signum, frame: stop.set())
    consumer = QuestDBConsumer(options, stop)
    try:
        try:
            consumer.prepare()
        except BaseException:
            consumer.writer.close()
            raise
        return consumer.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
