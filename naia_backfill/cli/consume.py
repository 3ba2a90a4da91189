"""`naia-backfill consume`: the realtime and backfill Kafka topics into QuestDB (see :mod:`naia_backfill.core.consumer`)."""

from __future__ import annotations

import dataclasses
import json
import logging

import click

from naia_backfill.cli.common import Failed


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
@click.option("--skip-bad-messages", is_flag=True, help="Log and skip messages that cannot be decoded.")
@click.option("--exit-when-idle", type=click.FloatRange(min=0), default=None,
              help="Stop after this many seconds without messages and without lag.")
@click.option("--stats-json", type=click.Path(dir_okay=False), default=None, help="Write the final counters here.")
@click.option("-X", "extra", multiple=True, callback=_pairs, metavar="KEY=VALUE",
              help="Extra librdkafka consumer property (repeatable).")
def consume(bootstrap: str, questdb: str, topics: tuple[str, ...], group: str, table: str, batch_rows: int,
            batch_seconds: float, max_rows_per_second: float | None, log_interval: float, skip_bad_messages: bool,
            exit_when_idle: float | None, stats_json: str | None, extra: dict[str, str]) -> None:
    """Move the realtime and backfill Kafka topics into QuestDB; offsets are committed after QuestDB accepts.
    SIGTERM/SIGINT finish the current batch and exit."""
    from confluent_kafka import KafkaException

    from naia_backfill.core.consumer import BACKFILL_TOPIC, run_consumer
    from naia_backfill.errors import NaiaError
    from naia_backfill.sinks.kafka import REALTIME_TOPIC

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        stats = run_consumer(
            bootstrap, questdb, topics=topics or (REALTIME_TOPIC, BACKFILL_TOPIC), group_id=group, table=table,
            batch_rows=batch_rows, batch_seconds=batch_seconds, max_rows_per_second=max_rows_per_second,
            log_interval=log_interval, skip_bad_messages=skip_bad_messages, consumer_extra=extra,
            exit_when_idle=exit_when_idle,
        )
    except (NaiaError, KafkaException) as e:
        raise Failed(str(e)) from None
    if stats_json:
        with open(stats_json, "w", encoding="utf-8") as f:
            json.dump({**dataclasses.asdict(stats), "rows_per_second": stats.rows_per_second}, f)
