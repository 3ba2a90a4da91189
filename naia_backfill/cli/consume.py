"""`naia-backfill consume`: the realtime and backfill Kafka topics into QuestDB (see :mod:`naia_backfill.core.consumer`)."""

from __future__ import annotations

import dataclasses
import json
import logging

import click

from naia_backfill.cli.common import BadInput, Failed

DEAD_LETTER_TOPIC = "naia.datapoints.backfill.dlq"  # naia_backfill.core.consumer.DEAD_LETTER_TOPIC (imported lazily)


def _pairs(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for text in values:
        key, sep, value = text.partition("=")
        if not sep:
            raise click.BadParameter(f"expected key=value, got {text!r}")
        out[key.strip()] = value.strip()
    return out


@click.command()
@click.option("--bootstrap", envvar="NAIA_KAFKA_BOOTSTRAP", required=True, metavar="HOST:PORT[,...]",
              help="Kafka bootstrap servers (also $NAIA_KAFKA_BOOTSTRAP).")
@click.option("--questdb", envvar="NAIA_QUESTDB_HTTP", required=True, metavar="HOST:PORT",
              help="QuestDB HTTP address (also $NAIA_QUESTDB_HTTP).")
@click.option("--topic", "topics", multiple=True, help="Topic to consume (repeatable; default the realtime and backfill topics).")
@click.option("--group", default="naia-questdb", show_default=True, help="Consumer group id.")
@click.option("--table", default="naia_samples", show_default=True, help="QuestDB table.")
@click.option("--batch-rows", type=click.IntRange(min=1), default=250_000, show_default=True,
              help="Rows per QuestDB write and offset commit.")
@click.option("--batch-seconds", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Write at least this often when busy.")
@click.option("--max-rows-per-second", type=click.FloatRange(min=1), default=None, help="Throttle (default: none).")
@click.option("--log-interval", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="Seconds between throughput/lag logs.")
@click.option("--questdb-retry-seconds", type=click.FloatRange(min=0), default=300.0, show_default=True,
              help="How long one QuestDB outage is retried (exponential backoff, fetching paused, offsets "
                   "uncommitted) before the consumer exits with status 1; 0 exits at the first failure.")
@click.option("--questdb-retry-max-wait", type=click.FloatRange(min=0.01), default=30.0, show_default=True,
              help="Longest single wait between QuestDB attempts (waits start at 0.5 s and double).")
@click.option("--dead-letter-topic", default=DEAD_LETTER_TOPIC, show_default=True,
              help="Where messages that cannot be decoded are copied (reason, topic, partition, offset in headers) "
                   "before their offsets are committed; shared by every consumed topic.")
@click.option("--skip-bad-messages", is_flag=True,
              help="Log and skip messages that cannot be decoded, without a dead-letter copy.")
@click.option("--exit-when-idle", type=click.FloatRange(min=0), default=None,
              help="Stop after this many seconds without messages and without lag (counted from the "
                   "group's first assignment).")
@click.option("--stats-json", type=click.Path(dir_okay=False), default=None, help="Write the final counters here.")
@click.option("-X", "extra", multiple=True, callback=_pairs, metavar="KEY=VALUE",
              help="Extra librdkafka consumer property (repeatable).")
def consume(bootstrap: str, questdb: str, topics: tuple[str, ...], group: str, table: str, batch_rows: int,
            batch_seconds: float, max_rows_per_second: float | None, log_interval: float, questdb_retry_seconds: float,
            questdb_retry_max_wait: float, dead_letter_topic: str, skip_bad_messages: bool,
            exit_when_idle: float | None, stats_json: str | None, extra: dict[str, str]) -> None:
    """Move the realtime and backfill Kafka topics into QuestDB; offsets are committed after QuestDB accepts.

    An unreachable QuestDB is retried (--questdb-retry-seconds); undecodable messages go to the dead-letter
    topic. SIGTERM/SIGINT finish the current batch and exit."""
    from confluent_kafka import KafkaException

    from naia_backfill.core.consumer import BACKFILL_TOPIC, ConsumerOptions, RetryPolicy, run_consumer
    from naia_backfill.errors import NaiaError
    from naia_backfill.sinks.kafka_messages import REALTIME_TOPIC

    topics = topics or (REALTIME_TOPIC, BACKFILL_TOPIC)
    if skip_bad_messages and dead_letter_topic != DEAD_LETTER_TOPIC:
        raise BadInput("--skip-bad-messages skips without a dead-letter copy: do not combine it with --dead-letter-topic")
    if not skip_bad_messages and not dead_letter_topic.strip():
        raise BadInput("--dead-letter-topic needs a topic name (use --skip-bad-messages to skip without a copy)")
    if not skip_bad_messages and dead_letter_topic in topics:
        raise BadInput(f"the dead-letter topic {dead_letter_topic!r} cannot be one of the consumed topics")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    options = ConsumerOptions(
        bootstrap=bootstrap, questdb_http=questdb, topics=tuple(topics), group_id=group, table=table,
        batch_rows=batch_rows, batch_seconds=batch_seconds, max_rows_per_second=max_rows_per_second,
        log_interval=log_interval, dead_letter_topic=None if skip_bad_messages else dead_letter_topic,
        retry=RetryPolicy(budget=questdb_retry_seconds, max_wait=questdb_retry_max_wait),
        exit_when_idle=exit_when_idle, consumer_extra=extra,
    )
    try:
        stats = run_consumer(options)
    except (NaiaError, KafkaException) as e:
        raise Failed(str(e)) from None
    if stats_json:
        with open(stats_json, "w", encoding="utf-8") as f:
            json.dump({**dataclasses.asdict(stats), "rows_per_second": stats.rows_per_second}, f)
