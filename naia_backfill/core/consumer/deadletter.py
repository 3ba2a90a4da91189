"""The dead-letter topic: messages the consumer cannot decode, copied with why and where they came from.

A dead letter keeps the original key, value and headers and adds:

* ``naia-dlq-reason``: why the message was refused (UTF-8 text);
* ``naia-dlq-topic``, ``naia-dlq-partition``, ``naia-dlq-offset``: where it was read;
* ``naia-dlq-timestamp``: its Kafka timestamp (ms since the epoch; -1 if none);
* ``naia-dlq-group``: the consumer group that refused it.

The producer is idempotent with ``acks=all``; the consumer commits a refused message's offset only after
:meth:`DeadLetters.wait` saw every dead letter acknowledged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from confluent_kafka import KafkaError, Message, Producer

from naia_backfill.errors import SinkError
from naia_backfill.sinks.kafka import ensure_topic, producer_config

log = logging.getLogger("naia_backfill.core.consumer")

Headers = list[tuple[str, bytes]]


def dead_letter_headers(original: Sequence[tuple[str, bytes | None]] | None, *, reason: str, topic: str,
                        partition: int, offset: int, timestamp_ms: int, group: str) -> Headers:
    """The original headers (earlier ``naia-dlq-*`` ones dropped: a re-queued dead letter is refused afresh)
    followed by where the message was read and why it was refused."""
    kept = [(k, v or b"") for k, v in original or () if not k.startswith("naia-dlq-")]
    return kept + [
        ("naia-dlq-reason", reason.encode("utf-8", "replace")),
        ("naia-dlq-topic", topic.encode()),
        ("naia-dlq-partition", str(partition).encode()),
        ("naia-dlq-offset", str(offset).encode()),
        ("naia-dlq-timestamp", str(timestamp_ms).encode()),
        ("naia-dlq-group", group.encode()),
    ]


class DeadLetters:
    """Copies refused messages to ``topic`` (created on first use, one partition, the cluster's replication)."""

    def __init__(self, bootstrap: str, topic: str, group: str, extra: Mapping[str, object] | None = None,
                 timeout: float = 60.0) -> None:
        self.bootstrap, self.topic, self.group, self.timeout = bootstrap, topic, group, timeout
        self.extra = dict(extra or {})
        self._producer: Producer | None = None
        self.sent = self.acked = 0
        self.errors: list[str] = []

    @property
    def producer(self) -> Producer:
        if self._producer is None:
            ensure_topic(self.bootstrap, self.topic, partitions=1, replication=-1, extra=self.extra)
            conf = producer_config(self.bootstrap, {"client.id": "naia-consumer-dlq", "linger.ms": 5,
                                                    "message.timeout.ms": int(self.timeout * 1000), **self.extra})
            self._producer = Producer({**conf, "logger": log.getChild("librdkafka")})
        return self._producer

    def send(self, msg: Message, reason: str) -> None:
        """Queue a copy of ``msg``; :meth:`wait` tells whether it arrived."""
        topic, partition, offset = msg.topic() or "", msg.partition() or 0, msg.offset() or 0
        headers = dead_letter_headers(msg.headers(), reason=reason, topic=topic, partition=partition, offset=offset,
                                      timestamp_ms=msg.timestamp()[1], group=self.group)
        log.error("message %s[%d]@%d refused (%s): copied to dead-letter topic %s", topic, partition, offset, reason,
                  self.topic)
        self.producer.produce(self.topic, key=msg.key(), value=msg.value(), headers=headers,
                              on_delivery=self._delivered)
        self.sent += 1
        self.producer.poll(0)

    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self.acked += 1
        elif len(self.errors) < 3:
            self.errors.append(err.str())

    @property
    def outstanding(self) -> int:
        return self.sent - self.acked

    def wait(self) -> None:
        """Block until every dead letter sent was acknowledged; SinkError if one was not (offsets then stay
        uncommitted, so the refused message is read and dead-lettered again after a restart)."""
        if not self.outstanding:
            return
        left = self.producer.flush(self.timeout)
        if self.errors or left or self.outstanding:
            raise SinkError(f"Kafka broker {self.bootstrap}: {self.outstanding} message(s) for dead-letter topic "
                            f"{self.topic!r} were not acknowledged: {'; '.join(self.errors) or 'timed out'}; the "
                            f"refused messages' offsets stay uncommitted")

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(10)
            self._producer = None
