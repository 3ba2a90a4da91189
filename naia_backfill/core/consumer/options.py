"""What the consumer is told: topics, batching, the QuestDB retry policy, bad-message handling, librdkafka settings."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Mapping

import httpx
from questdb import QuestDBError, QuestDBErrorCode
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_before_delay, wait_exponential_jitter

from naia_backfill.errors import SinkError
from naia_backfill.sinks.kafka_messages import REALTIME_TOPIC

log = logging.getLogger("naia_backfill.core.consumer")

BACKFILL_TOPIC = "naia.datapoints.backfill"
#: One dead-letter topic for every topic a consumer reads; the ``naia-dlq-topic`` header names the source.
DEAD_LETTER_TOPIC = "naia.datapoints.backfill.dlq"

#: QuestDB client errors caused by the rows or the configuration: retrying cannot help.
_PERMANENT = {QuestDBErrorCode.BadDataFrame, QuestDBErrorCode.InvalidName, QuestDBErrorCode.InvalidUtf8,
              QuestDBErrorCode.InvalidTimestamp, QuestDBErrorCode.InvalidApiCall, QuestDBErrorCode.ConfigError,
              QuestDBErrorCode.AuthError, QuestDBErrorCode.TlsError}


class QuestDBUnavailable(SinkError):
    """QuestDB stayed unreachable (or kept failing) for the whole retry budget; nothing after the last committed
    offsets was committed."""


def is_transient(exc: BaseException) -> bool:
    """True for failures a later attempt may not meet: QuestDB down, restarting, overloaded, or the network.

    Refusals caused by the rows themselves (a line QuestDB cannot parse, a negative timestamp) or by the
    configuration are permanent."""
    if isinstance(exc, QuestDBError):
        if exc.code in _PERMANENT:
            return False
        # A 400 from /write: QuestDB parsed the request and refused a line (a type conflict, a bad value).
        return not (exc.code == QuestDBErrorCode.ServerFlushError and '"code":"invalid"' in str(exc))
    if isinstance(exc, SinkError):  # from QuestDBRest: "unreachable" wraps a transport error
        return isinstance(exc.__cause__, httpx.TransportError)
    return isinstance(exc, (httpx.TransportError, ConnectionError, TimeoutError))


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How an unreachable QuestDB is retried: waits growing exponentially (with up to a second of jitter) from
    ``initial`` to at most ``max_wait`` seconds, for at most ``budget`` seconds from the first failure of one
    operation. Each wait is logged; a success starts the next failure with a full budget."""

    budget: float = 300.0
    initial: float = 0.5
    max_wait: float = 30.0

    def retrying(self, what: str, abort: threading.Event | None = None,
                 on_wait: Callable[[float], None] | None = None,
                 sleep: Callable[[float], object] | None = None) -> Retrying:
        """A tenacity ``Retrying`` for ``what`` (e.g. "QuestDB at host:port"); setting ``abort`` ends the waiting.
        ``on_wait`` hears of each wait; ``sleep`` replaces the waiting itself (tests)."""
        abort = abort or threading.Event()

        def before_sleep(state: RetryCallState) -> None:
            wait = state.upcoming_sleep
            exc = state.outcome.exception() if state.outcome else None
            log.warning("%s failed (attempt %d, %.1fs of the %.0fs retry budget used): %s; retrying in %.1fs", what,
                        state.attempt_number, state.seconds_since_start or 0.0, self.budget, exc, wait)
            if on_wait is not None:
                on_wait(wait)

        return Retrying(
            stop=stop_before_delay(self.budget),
            wait=wait_exponential_jitter(multiplier=self.initial, max=self.max_wait, jitter=min(1.0, self.initial)),
            retry=retry_if_exception(lambda e: is_transient(e) and not abort.is_set()),
            sleep=sleep or abort.wait,
            before_sleep=before_sleep,
            reraise=True,
        )


@dataclasses.dataclass(frozen=True)
class ConsumerOptions:
    """Everything ``naia-backfill consume`` can be told (see its ``--help``)."""

    bootstrap: str
    questdb_http: str
    topics: tuple[str, ...] = (REALTIME_TOPIC, BACKFILL_TOPIC)
    group_id: str = "naia-questdb"
    table: str = "naia_samples"
    #: Rows per QuestDB request (and per offset commit).
    batch_rows: int = 250_000
    #: A partial batch is written after this long, so a trickle still reaches QuestDB.
    batch_seconds: float = 1.0
    max_rows_per_second: float | None = None
    log_interval: float = 10.0
    #: Where undecodable messages go; None skips them (logged) without a dead-letter copy.
    dead_letter_topic: str | None = DEAD_LETTER_TOPIC
    retry: RetryPolicy = RetryPolicy()
    #: Batches decoded and waiting for the QuestDB writer (besides one being serialised and one in flight).
    queue_batches: int = 2
    exit_when_idle: float | None = None
    consumer_extra: Mapping[str, object] = dataclasses.field(default_factory=dict)


def consumer_config(bootstrap: str, group_id: str, extra: Mapping[str, object] | None = None) -> dict[str, object]:
    """librdkafka consumer settings: manual commits, read_committed, bounded prefetch; ``extra`` wins."""
    conf: dict[str, object] = {
        "bootstrap.servers": bootstrap,
        "group.id": group_id,
        "client.id": "naia-consumer",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
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


def security_config(extra: Mapping[str, object]) -> dict[str, object]:
    """The connection settings of ``extra`` a producer or admin client to the same cluster needs too."""
    return {k: v for k, v in extra.items() if k.startswith(("security.", "sasl.", "ssl."))}
