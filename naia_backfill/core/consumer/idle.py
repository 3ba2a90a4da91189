"""When is the consumer done (``--exit-when-idle``), and how far behind is it (lag)?

Idleness is judged only after the group assigned partitions: before that the assignment is empty and its lag
trivially zero. Lag is asked of the brokers (not librdkafka's cache, which knows nothing before the first
fetch), and a partition not fetched yet counts from its committed offset, or from where ``auto.offset.reset``
starts a new group.
"""

from __future__ import annotations

import dataclasses
import logging

from confluent_kafka import OFFSET_INVALID, Consumer, KafkaException, TopicPartition

log = logging.getLogger("naia_backfill.core.consumer")


def partition_lag(position: int, committed: int, low: int, high: int, reset_latest: bool = False) -> int:
    """Messages between where the consumer will read next and the end of the partition."""
    if position >= 0:
        start = position
    elif committed >= 0:
        start = committed
    else:
        start = high if reset_latest else low
    return max(0, high - max(start, low))


def assignment_lag(consumer: Consumer, reset_latest: bool = False, timeout: float = 5.0, cached: bool = False
                   ) -> int | None:
    """Total lag of the current assignment; None when it is empty or a broker did not answer. ``cached`` uses the
    watermarks of the last fetch (no round trip; a partition not fetched yet counts as 0)."""
    assigned = consumer.assignment()
    if not assigned:
        return None
    try:
        positions = consumer.position(assigned)
        unfetched = [tp for tp in positions if tp.offset < 0]
        committed = {(tp.topic, tp.partition): tp.offset for tp in consumer.committed(unfetched, timeout=timeout)} \
            if unfetched else {}
        total = 0
        for tp in positions:
            low, high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=timeout,
                                                       cached=cached)
            total += partition_lag(tp.offset, committed.get((tp.topic, tp.partition), OFFSET_INVALID), low, high,
                                   reset_latest)
        return total
    except KafkaException as e:
        log.debug("lag unknown: %s", e)
        return None


@dataclasses.dataclass
class IdleWatch:
    """Decides when ``--exit-when-idle SECONDS`` may ask for the lag: only after the first assignment, and
    ``seconds`` after the last sign of work (a message, a write, an assignment, a lag that was not zero)."""

    seconds: float | None
    since: float | None = None

    def assigned(self, now: float) -> None:
        self.since = now

    def busy(self, now: float) -> None:
        if self.since is not None:
            self.since = now

    def due(self, now: float) -> bool:
        return self.seconds is not None and self.since is not None and now - self.since >= self.seconds
