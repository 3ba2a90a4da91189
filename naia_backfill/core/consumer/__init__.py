"""Kafka -> QuestDB: moves the realtime and the backfill topics into the samples table.

Both topics carry the ``naia-samples/1`` format (see :mod:`naia_backfill.sinks.kafka`). The main thread polls
Kafka, decodes messages into Arrow and gathers them into batches (:mod:`.batching`); a writer pipeline
(:mod:`.writer`) serialises each batch into ILP on one thread and sends it over HTTP on another, so decoding,
serialising and QuestDB's ingestion overlap. Offsets are committed only after QuestDB accepted a batch: a crash
re-delivers at most the uncommitted batches, and the table's dedup keys make that harmless.

An unreachable QuestDB is retried with exponential backoff for a bounded budget (:class:`.options.RetryPolicy`)
while fetching is paused; messages that cannot be decoded go to a dead-letter topic (:mod:`.deadletter`), their
offsets committed once the copy is acknowledged. ``--exit-when-idle`` waits for the group's assignment before
it judges idleness (:mod:`.idle`). SIGTERM/SIGINT finish the pending batch, commit, leave the group and return.
"""

from naia_backfill.core.consumer.options import (
    BACKFILL_TOPIC,
    DEAD_LETTER_TOPIC,
    ConsumerOptions,
    QuestDBUnavailable,
    RetryPolicy,
    consumer_config,
)
from naia_backfill.core.consumer.runner import ConsumerStats, QuestDBConsumer, run_consumer

__all__ = ["BACKFILL_TOPIC", "DEAD_LETTER_TOPIC", "ConsumerOptions", "ConsumerStats", "QuestDBConsumer",
           "QuestDBUnavailable", "RetryPolicy", "consumer_config", "run_consumer"]
