"""Benchmark: synthetic days -> Kafka backfill topic -> consumer -> QuestDB, and straight into QuestDB.

Each phase runs in its own process; its peak RSS is sampled with psutil every 50 ms, and the CPU seconds of
the phase process, the QuestDB server and the Kafka broker (found by their listening ports) are reported so
the bound is visible. Rates count only the sink's work (source generation excluded) and rows QuestDB
accepted; "+WAL" also waits until the table's WAL is applied (rows queryable).

    naia-backfill bench streaming [--points 1000] [--interval 60] [--days 3] [--keep] [--json PATH]

Needs NAIA_KAFKA_BOOTSTRAP and NAIA_QUESTDB_HTTP (``source .services/env``). Targets on the 2-core reference
machine: consumer >= 500k rows/s, direct sink >= 1M rows/s.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from types import SimpleNamespace
from typing import Any

import click

import psutil
from confluent_kafka import KafkaError, KafkaException
from rich.console import Console
from rich.table import Table

from naia_backfill.errors import SinkError
from naia_backfill.sinks.questdb import QuestDBRest, wait_for_wal

DAY = dt.date(2024, 1, 1)
TARGETS = {"consume": 500_000, "direct": 1_000_000}


def _days(points: int, interval: float, days: int):
    from naia_backfill.connectors.synthetic import SyntheticConnector
    from naia_backfill.settings import SyntheticSource

    src = SyntheticConnector(SyntheticSource(kind="synthetic", points=points, interval_seconds=interval, seed=2))
    names = src.list_points()
    for i in range(days):
        day = DAY + dt.timedelta(days=i)
        start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
        yield day, src.fetch(names, start, start + dt.timedelta(days=1))


def _child(phase: str, args: SimpleNamespace) -> dict:
    """Run the produce or direct phase in this process; time only the sink's calls."""
    from naia_backfill.settings import KafkaSink, QuestDBSink
    from naia_backfill.sinks.base import DayTarget
    from naia_backfill.sinks.kafka import KafkaDaySink
    from naia_backfill.sinks.questdb import QuestDBDaySink

    if phase == "produce":
        sink = KafkaDaySink(KafkaSink(kind="kafka", topic=args.topic, partitions=args.partitions), args.bootstrap)
    else:
        sink = QuestDBDaySink(QuestDBSink(kind="questdb", table=args.table), args.questdb)
    rows = size = 0
    sink_seconds = 0.0
    started = time.perf_counter()
    for day, batches in _days(args.points, args.interval, args.days):
        t = time.perf_counter()
        writer = sink.open_day(DayTarget("bench", day, run_id="bench"))
        sink_seconds += time.perf_counter() - t
        for batch in batches:
            t = time.perf_counter()
            writer.write(batch)
            sink_seconds += time.perf_counter() - t
        t = time.perf_counter()
        result = writer.commit()
        sink_seconds += time.perf_counter() - t
        rows, size = rows + result.rows, size + result.bytes
    sink.close()
    out = {"rows": rows, "seconds": sink_seconds, "wall": time.perf_counter() - started, "bytes": size}
    if phase == "direct":
        t = time.perf_counter()
        wait_for_wal(QuestDBRest(args.questdb), args.table, timeout=600)
        out["wal_wait"] = time.perf_counter() - t
    return out


def _listener(addr: str) -> psutil.Process | None:
    """The local process listening on ``host:port`` (the QuestDB server, the Kafka broker), if visible."""
    port = int(addr.split(",")[0].rsplit(":", 1)[1])
    try:
        for c in psutil.net_connections(kind="tcp"):
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid:
                return psutil.Process(c.pid)
    except (psutil.Error, OSError):
        pass
    return None


def _cpu(p: psutil.Process | None) -> float:
    try:
        return sum(p.cpu_times()[:2]) if p else float("nan")
    except psutil.Error:
        return float("nan")


def _watch(cmd: list[str], servers: dict[str, psutil.Process | None], env: dict[str, str] | None = None
           ) -> tuple[subprocess.CompletedProcess, dict]:
    """Run ``cmd`` (in ``env``), sampling its RSS (children included) and the CPU time of it and of the servers."""
    before = {k: _cpu(p) for k, p in servers.items()}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = psutil.Popen(cmd, stdout=out, stderr=err, env=env)
        peak = cpu = 0.0
        while proc.poll() is None:
            try:
                procs = [proc, *proc.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in procs))
                cpu = max(cpu, sum(sum(p.cpu_times()[:4]) for p in procs))
            except psutil.Error:
                pass
            time.sleep(0.05)
        out.seek(0)
        err.seek(0)
        done = subprocess.CompletedProcess(cmd, proc.returncode, out.read().decode(), err.read().decode())
    usage = {"peak_rss_mb": peak / 2**20, "client_cpu": cpu}
    usage.update({f"{k}_cpu": _cpu(p) - before[k] for k, p in servers.items()})
    return done, usage


@click.command("streaming")
@click.option("--points", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--interval", type=click.FloatRange(min=0.001), default=60.0, show_default=True, help="Seconds between samples.")
@click.option("--days", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--partitions", type=click.IntRange(min=1), default=6, show_default=True, help="Partitions of the benchmark topic.")
@click.option("--phases", default="produce,consume,direct", show_default=True, help="Comma-separated subset.")
@click.option("--keep", is_flag=True, help="Keep the benchmark topic and tables.")
@click.option("--bootstrap", envvar="NAIA_KAFKA_BOOTSTRAP", required=True, help="Kafka (also $NAIA_KAFKA_BOOTSTRAP).")
@click.option("--questdb", envvar="NAIA_QUESTDB_HTTP", required=True, help="QuestDB HTTP (also $NAIA_QUESTDB_HTTP).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write every phase's figures here.")
@click.option("--child", type=click.Choice(["produce", "direct"]), hidden=True)
@click.option("--topic", hidden=True)
@click.option("--table", hidden=True)
def command(**options: Any) -> None:
    """Synthetic days -> Kafka backfill topic -> consumer -> QuestDB, and straight into QuestDB."""
    args = SimpleNamespace(**options)
    if args.child:
        print(json.dumps(_child(args.child, args)))
        return
    sys.exit(report(args))


def report(args: SimpleNamespace) -> int:
    """Run the phases and print their table; 1 when a phase failed."""
    console = Console(width=max(Console().width, 140))
    command = (f"naia-backfill bench streaming --points {args.points} --interval {args.interval:g} --days {args.days}"
               f" --phases {args.phases}")
    u = uuid.uuid4().hex[:8]
    topic, kafka_table, direct_table = f"naia.bench.{u}", f"bench_kafka_{u}", f"bench_direct_{u}"
    servers = {"questdb": _listener(args.questdb), "kafka": _listener(args.bootstrap)}
    console.print(f"[bold]{command.strip()}[/]")
    console.print(f"{args.points} points, {args.interval:g}s interval, {args.days} day(s); {psutil.cpu_count()} CPUs, "
                  f"load average {os.getloadavg()[0]:.2f}; QuestDB {args.questdb}, Kafka {args.bootstrap}")
    table = Table("phase", "rows", "seconds", "rows/s", "+WAL rows/s", "target", "client CPU s", "QuestDB CPU s",
                  "Kafka CPU s", "peak RSS MB")
    base = [sys.executable, "-m", "naia_backfill.dev.benchmarks.streaming", "--points", str(args.points), "--interval",
            str(args.interval), "--days", str(args.days), "--partitions", str(args.partitions),
            "--bootstrap", args.bootstrap, "--questdb", args.questdb, "--topic", topic]
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    failed, figures = False, {}
    try:
        for phase in phases:
            if phase == "consume":
                fd, stats_file = tempfile.mkstemp(suffix=".json", prefix="naia-bench-consumer-")
                os.close(fd)
                cmd = [sys.executable, "-m", "naia_backfill.cli", "consume", "--bootstrap", args.bootstrap, "--questdb",
                       args.questdb, "--topic", topic, "--group", f"naia-bench-{u}", "--table", kafka_table,
                       "--exit-when-idle", "2", "--stats-json", stats_file, "-X", "session.timeout.ms=6000",
                       "-X", "heartbeat.interval.ms=1000"]
            else:
                cmd = [*base, "--child", phase, "--table", direct_table]
            done, usage = _watch(cmd, servers)
            if done.returncode != 0:
                console.print(f"[red]{phase} failed ({done.returncode}):[/]\n{done.stderr[-3000:]}")
                failed = True
                break
            if phase == "consume":
                with open(stats_file, encoding="utf-8") as f:
                    s = json.load(f)
                os.unlink(stats_file)
                t = time.perf_counter()
                wait_for_wal(QuestDBRest(args.questdb), kafka_table, timeout=600)
                r = {"rows": s["rows"], "seconds": s["active_seconds"],
                     "wal_wait": time.perf_counter() - t}
            else:
                r = json.loads(done.stdout.strip().splitlines()[-1])
            rate = r["rows"] / r["seconds"] if r["seconds"] else 0.0
            wal = r["rows"] / (r["seconds"] + r["wal_wait"]) if "wal_wait" in r else None
            target = TARGETS.get(phase)
            figures[phase] = {**r, "rate": rate, "wal_rate": wal, **usage}
            table.add_row(
                phase, f"{r['rows']:,}", f"{r['seconds']:.2f}", f"{rate:,.0f}", f"{wal:,.0f}" if wal else "-",
                (f"{target:,} " + ("[green]met[/]" if rate >= target else "[red]missed[/]")) if target else "-",
                f"{usage['client_cpu']:.1f}", f"{usage['questdb_cpu']:.1f}", f"{usage['kafka_cpu']:.1f}",
                f"{usage['peak_rss_mb']:.0f}")
    finally:
        console.print(table)
        if not args.keep:
            try:
                _cleanup(args, topic, [kafka_table, direct_table])
            except (SinkError, KafkaException) as e:  # report the figures even when cleaning up fails
                console.print(f"[yellow]could not remove benchmark topic/tables: {e}[/]")
        if args.json_path:
            with open(args.json_path, "w", encoding="utf-8") as f:
                json.dump({"command": command, "phases": figures}, f, indent=1)
    console.print("client CPU: the phase process (producer, consumer or direct sink); rates exclude source "
                  "generation; consume counts from its first message to its last accepted write.")
    return 1 if failed else 0


def _cleanup(args: SimpleNamespace, topic: str, tables: list[str]) -> None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    for fut in admin.delete_topics([topic], operation_timeout=10).values():
        try:
            fut.result(30)
        except KafkaException as e:
            if e.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:  # a phase that never created it
                raise
    rest = QuestDBRest(args.questdb)
    for t in tables:
        rest.exec(f"DROP TABLE IF EXISTS {t}")


if __name__ == "__main__":
    command()
