"""Benchmark: the Kafka -> QuestDB consumer against its limit, a pipelined ``Sender.dataframe`` of the same rows.

Synthetic days are produced once to a fresh backfill topic. Then, alternating which goes first, each repetition
runs (1) ``naia-backfill consume`` on the topic with a fresh group into a fresh table, and (2) the limit: a
process that first reads and decodes the same messages into the ILP frames QuestDB receives (untimed), then
times serialising them with ``Buffer.dataframe`` and flushing over ILP/HTTP with one request in flight while the
next is serialised. Both count rows from the first row handled to the last request QuestDB accepted. Each run
waits until QuestDB applied its WAL before the next starts, so runs do not share QuestDB's CPU. Peak RSS is
sampled every 50 ms; the 1-minute load average is noted before every run.

    naia-backfill bench consumer [--points 1000] [--interval 60] [--days 3] [--repeat 3] [--json PATH]

Needs NAIA_KAFKA_BOOTSTRAP and NAIA_QUESTDB_HTTP (``source .services/env``).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import click
import psutil
from rich.console import Console
from rich.table import Table

from naia_backfill.dev.benchmarks.streaming import _days, _listener, _watch
from naia_backfill.sinks.questdb import QuestDBRest, wait_for_wal

GOAL = 0.8


def _produce(args: SimpleNamespace, topic: str) -> int:
    from naia_backfill.settings import KafkaSink
    from naia_backfill.sinks.base import DayTarget
    from naia_backfill.sinks.kafka import KafkaDaySink

    sink = KafkaDaySink(KafkaSink(kind="kafka", topic=topic, partitions=args.partitions), args.bootstrap)
    rows = 0
    try:
        for day, batches in _days(args.points, args.interval, args.days):
            writer = sink.open_day(DayTarget("bench", day, run_id="bench"))
            for batch in batches:
                writer.write(batch)
            rows += writer.commit().rows
    finally:
        sink.close()
    return rows


def _read_topic(args: SimpleNamespace) -> list[tuple[bytes, bytes, list]]:
    """Every message of the topic (key, value, headers), read with a plain consumer from the start to the end."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": args.bootstrap, "group.id": f"naia-bench-limit-{uuid.uuid4().hex[:8]}",
                  "enable.auto.commit": False, "enable.partition.eof": True})
    try:
        parts = c.list_topics(args.topic, timeout=30).topics[args.topic].partitions
        c.assign([TopicPartition(args.topic, p, 0) for p in parts])
        out, eof = [], set()
        while len(eof) < len(parts):
            for m in c.consume(500, timeout=1.0):
                if m.error() is None:
                    out.append((m.key(), m.value(), m.headers()))
                else:
                    eof.add(m.partition())
        return out
    finally:
        c.close()


def _frames(args: SimpleNamespace) -> tuple[list[list[Any]], int]:
    """The topic's rows as the ILP frames the consumer sends, grouped by request (``--batch-rows`` rows each)."""
    from naia_backfill.core.consumer.batching import PendingBatch, decode_message

    requests, pending, total = [], PendingBatch(), 0
    for offset, (key, value, headers) in enumerate(_read_topic(args)):
        pending.add((args.topic, 0, offset), decode_message(key, value, headers))
        if pending.rows >= args.batch_rows:
            requests.append(pending.job().frames)
            total, pending = total + pending.rows, PendingBatch()
    if pending.rows:
        requests.append(pending.job().frames)
        total += pending.rows
    return requests, total


def _limit(args: SimpleNamespace) -> dict[str, float]:
    """Serialise the prepared frames and flush them, one request in flight while the next is serialised."""
    from questdb import Sender

    from naia_backfill.core.consumer.frames import SYMBOLS

    requests, rows = _frames(args)
    rest = QuestDBRest(args.questdb)
    from naia_backfill.sinks.questdb import ensure_table

    ensure_table(rest, args.table)
    sender = Sender.from_conf(f"http::addr={args.questdb};auto_flush=off;request_timeout=60000;"
                              "max_buf_size=1073741824;")
    sender.establish()
    spare = [sender.new_buffer(), sender.new_buffer()]
    pool = ThreadPoolExecutor(max_workers=1)
    inflight: Future | None = None
    started = time.perf_counter()
    for frames in requests:
        buf = spare.pop()
        for frame in frames:
            buf.dataframe(frame, table_name=args.table, at="ts", symbols=[c for c in SYMBOLS if c in frame])
        if inflight is not None:
            spare.append(inflight.result())
        inflight = pool.submit(lambda b: (sender.flush(b), b)[1], buf)
    if inflight is not None:
        inflight.result()
    seconds = time.perf_counter() - started
    pool.shutdown()
    sender.close()
    return {"rows": rows, "seconds": seconds}


def _run(kind: str, args: SimpleNamespace, topic: str, table: str, servers: dict) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": args.baseline} if kind == "baseline" else None
    if kind in ("consumer", "baseline"):
        fd, stats_file = tempfile.mkstemp(suffix=".json", prefix="naia-bench-consumer-")
        os.close(fd)
        cmd = [sys.executable, "-m", "naia_backfill.cli", "consume", "--bootstrap", args.bootstrap, "--questdb",
               args.questdb, "--topic", topic, "--group", f"naia-bench-{uuid.uuid4().hex[:8]}", "--table", table,
               "--batch-rows", str(args.batch_rows), "--exit-when-idle", "2", "--stats-json", stats_file,
               "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=1000"]
    else:
        cmd = [sys.executable, "-m", "naia_backfill.dev.benchmarks.consumer", "--child", "--topic", topic, "--table",
               table, "--batch-rows", str(args.batch_rows), "--bootstrap", args.bootstrap, "--questdb", args.questdb]
    load = os.getloadavg()[0]
    done, usage = _watch(cmd, servers, env)
    if done.returncode != 0:
        raise click.ClickException(f"{kind} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    if kind in ("consumer", "baseline"):
        with open(stats_file, encoding="utf-8") as f:
            stats = json.load(f)
        os.unlink(stats_file)
        result = {"rows": stats["rows"], "seconds": stats["active_seconds"]}
    else:
        result = json.loads(done.stdout.strip().splitlines()[-1])
    wait_for_wal(QuestDBRest(args.questdb), table, timeout=600)
    return {**result, "rate": result["rows"] / result["seconds"], "load": load, **usage}


@click.command("consumer")
@click.option("--points", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--interval", type=click.FloatRange(min=0.001), default=60.0, show_default=True,
              help="Seconds between samples.")
@click.option("--days", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--partitions", type=click.IntRange(min=1), default=6, show_default=True)
@click.option("--batch-rows", type=click.IntRange(min=1), default=250_000, show_default=True,
              help="Rows per QuestDB request, for both.")
@click.option("--repeat", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--bootstrap", envvar="NAIA_KAFKA_BOOTSTRAP", required=True, help="Kafka (also $NAIA_KAFKA_BOOTSTRAP).")
@click.option("--questdb", envvar="NAIA_QUESTDB_HTTP", required=True, help="QuestDB HTTP (also $NAIA_QUESTDB_HTTP).")
@click.option("--baseline", hidden=True, metavar="PYTHONPATH",
              help="Also run the consumer found first on this PYTHONPATH (e.g. a copy of an older revision).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write every run's figures here.")
@click.option("--child", is_flag=True, hidden=True)
@click.option("--topic", hidden=True)
@click.option("--table", hidden=True)
def command(**options: Any) -> None:
    """The Kafka -> QuestDB consumer against a pipelined Sender.dataframe of the same rows; prints the ratio."""
    args = SimpleNamespace(**options)
    if args.child:
        print(json.dumps(_limit(args)))
        return
    report(args)


def report(args: SimpleNamespace) -> None:
    console = Console(width=max(Console().width, 140))
    console.print(f"[bold]naia-backfill bench consumer --points {args.points} --interval {args.interval:g} "
                  f"--days {args.days} --partitions {args.partitions} --batch-rows {args.batch_rows} "
                  f"--repeat {args.repeat}[/]")
    u = uuid.uuid4().hex[:8]
    topic = f"naia.bench.consumer.{u}"
    servers = {"questdb": _listener(args.questdb), "kafka": _listener(args.bootstrap)}
    rows = _produce(args, topic)
    console.print(f"{rows:,} rows in topic {topic}; {psutil.cpu_count()} CPUs")
    table = Table("run", "kind", "rows", "seconds", "rows/s", "client CPU s", "QuestDB CPU s", "Kafka CPU s",
                  "peak RSS MB", "load (1 min)")
    kinds = ["consumer", "limit"] + (["baseline"] if args.baseline else [])
    results: dict[str, list[dict]] = {k: [] for k in kinds}
    tables = []
    try:
        for rep in range(args.repeat):
            for kind in kinds if rep % 2 == 0 else kinds[::-1]:
                tables.append(f"bench_{kind}_{u}_{rep}")
                r = _run(kind, args, topic, tables[-1], servers)
                results[kind].append(r)
                table.add_row(str(rep + 1), kind, f"{r['rows']:,}", f"{r['seconds']:.2f}", f"{r['rate']:,.0f}",
                              f"{r['client_cpu']:.1f}", f"{r['questdb_cpu']:.1f}", f"{r['kafka_cpu']:.1f}",
                              f"{r['peak_rss_mb']:.0f}", f"{r['load']:.2f}")
    finally:
        console.print(table)
        _cleanup(args, topic, tables)
    med = {k: statistics.median(r["rate"] for r in v) for k, v in results.items()}
    rss = {k: statistics.median(r["peak_rss_mb"] for r in v) for k, v in results.items()}
    if args.baseline:
        console.print(f"median baseline consumer ({args.baseline}) {med['baseline']:,.0f} rows/s (peak RSS "
                      f"{rss['baseline']:.0f} MB): ratio {med['baseline'] / med['limit']:.2f}")
    ratio = med["consumer"] / med["limit"]
    verdict = "[green]met[/]" if ratio >= GOAL else "[red]missed[/]"
    console.print(f"median consumer {med['consumer']:,.0f} rows/s (peak RSS {rss['consumer']:.0f} MB), limit "
                  f"{med['limit']:,.0f} rows/s (peak RSS {rss['limit']:.0f} MB): ratio {ratio:.2f} (goal {GOAL}: "
                  f"{verdict}); load average now {os.getloadavg()[0]:.2f}")
    if args.json_path:
        with open(args.json_path, "w", encoding="utf-8") as f:
            json.dump({"rows": rows, "goal": GOAL, "results": results}, f, indent=1)


def _cleanup(args: SimpleNamespace, topic: str, tables: list[str]) -> None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": args.bootstrap})  # kept referenced until the futures resolve
    for fut in admin.delete_topics([topic], operation_timeout=10).values():
        fut.result(30)
    rest = QuestDBRest(args.questdb)
    for t in tables:
        rest.exec(f"DROP TABLE IF EXISTS {t}")
    rest.close()


if __name__ == "__main__":
    command()
