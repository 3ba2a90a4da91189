"""Benchmark: the MongoDB sink on a server speaking MongoDB's wire protocol, and WAQI quota use.

Phases, each in its own process (peak RSS sampled every 50 ms, the server's CPU seconds from its listening
port):

- ``sink``: one synthetic day (``--points`` at ``--interval``; 695 x 60 s is 1.0M samples) through the sink as
  runs use it (``document: samples``); only the sink's calls are timed.
- ``insert_many``: the same documents, built before the clock starts, sent with pymongo ``insert_many``
  (unordered, 1000 a request) into an empty collection with the same unique index: what the server allows.
- ``rerun`` and ``rerun_replace``: a day of ``--rerun-points`` points written, then written again through the
  sink (every document exists): ``rerun: delete_insert`` (bounded ``$in`` deletes, then ``insert_many``) and
  ``rerun: replace`` (unordered bulks of ``ReplaceOne(upsert=True)`` by ``_id``).
- ``quota``: a simulated day of WAQI polls every ``--poll-minutes`` minutes against the simulator; requests
  over what 1000 a minute allows in a day, and the busiest minute.

    naia-backfill bench mongodb [--points 695] [--interval 60] [--phases sink,insert_many,rerun,quota] [--json PATH]

Needs NAIA_MONGODB_URI (``source .services/env``) except for ``quota``.
"""

from __future__ import annotations

import collections
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
from rich.console import Console
from rich.table import Table

DAY = dt.date(2024, 1, 1)
START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def _batches(points: int, interval: float) -> list:
    from naia_backfill.connectors.synthetic import SyntheticConnector
    from naia_backfill.settings import SyntheticSource

    src = SyntheticConnector(SyntheticSource(kind="synthetic", points=points, interval_seconds=interval, seed=2))
    return list(src.fetch(src.list_points(), START, START + dt.timedelta(days=1)))


def _sink_day(uri: str, database: str, batches: list, rerun: str = "delete_insert") -> dict[str, Any]:
    from naia_backfill.settings.sinks import MongoDBSink
    from naia_backfill.sinks.base import DayTarget
    from naia_backfill.sinks.mongodb import MongoDBDaySink

    t = time.perf_counter()
    sink = MongoDBDaySink(MongoDBSink(kind="mongodb", database=database, collection="samples", rerun=rerun), uri)
    writer = sink.open_day(DayTarget("bench", DAY, "bench"))
    for b in batches:
        writer.write(b)
    extra = writer.commit().extra
    sink.close()
    return {"rows": sum(b.num_rows for b in batches), "seconds": time.perf_counter() - t, **extra}


def _child(phase: str, args: SimpleNamespace) -> dict[str, Any]:
    import pymongo

    from naia_backfill.schema import EventSeq
    from naia_backfill.sinks.mongodb import SAMPLES_INDEX, sample_documents

    client = pymongo.MongoClient(args.uri, socketTimeoutMS=600_000)
    database = f"naia_bench_{args.tag}_{phase}"
    client.drop_database(database)
    try:
        if phase == "sink":
            return _sink_day(args.uri, database, _batches(args.points, args.interval))
        if phase == "insert_many":
            batches, seq = _batches(args.points, args.interval), EventSeq()
            docs = [d for b in batches for d in sample_documents(b, seq(b), "bench")]
            del batches
            col = client[database]["samples"]
            col.create_index(SAMPLES_INDEX, unique=True, name="naia_event_key")
            t = time.perf_counter()
            for i in range(0, len(docs), 1000):
                col.insert_many(docs[i:i + 1000], ordered=False)
            return {"rows": len(docs), "seconds": time.perf_counter() - t}
        batches = _batches(args.rerun_points, args.interval)
        _sink_day(args.uri, database, batches)
        return _sink_day(args.uri, database, batches, "replace" if phase == "rerun_replace" else "delete_insert")
    finally:
        client.drop_database(database)
        client.close()


def quota(poll_minutes: int) -> dict[str, Any]:
    """Requests of a simulated day of polls of the simulator's stations, against WAQI's 1000 a minute."""
    from naia_backfill.connectors.base import Credentials
    from naia_backfill.connectors.staging import LocalObjects, StagingArea
    from naia_backfill.connectors.waqi import build
    from naia_backfill.dev.simulators.waqi.clock import SimClock
    from naia_backfill.dev.simulators.waqi.simulator import WaqiSimulator, serve
    from naia_backfill.settings.sources import WaqiSource

    sim = WaqiSimulator(clock=SimClock(START), token="bench", quota_on_clock=True)
    per_minute: collections.Counter[int] = collections.Counter()
    with serve(sim) as url, tempfile.TemporaryDirectory() as tmp:
        settings = WaqiSource(kind="waqi", base_url=url, token_env="T", uids=[s.uid for s in sim.stations],
                              rate_limit_key=f"bench_{uuid.uuid4().hex[:8]}")
        with build(settings, Credentials(token="bench"), staging=StagingArea(LocalObjects(tmp), "waqi/bench")) as source:
            while sim.clock.now() < START + dt.timedelta(days=1):
                before = len(sim.request_log)
                source.collect()
                per_minute[int(sim.clock.now().timestamp() // 60)] += len(sim.request_log) - before
                sim.clock.advance(poll_minutes * 60)
            source.list_points()  # the day's materialization resolves the stations once
    requests = len(sim.request_log)
    return {"stations": len(sim.stations), "requests": requests, "allowed": 1000 * 24 * 60,
            "busiest_minute": max(per_minute.values())}


def _listener(uri: str) -> psutil.Process | None:
    from naia_backfill.sinks.mongodb import safe_address

    port = int(safe_address(uri).split(",")[0].rsplit(":", 1)[1])
    try:
        for c in psutil.net_connections(kind="tcp"):
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid:
                return psutil.Process(c.pid)
    except (psutil.Error, OSError, ValueError):
        pass
    return None


def _watch(cmd: list[str], server: psutil.Process | None) -> tuple[subprocess.CompletedProcess, dict[str, float]]:
    cpu0 = sum(server.cpu_times()[:2]) if server else float("nan")
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = psutil.Popen(cmd, stdout=out, stderr=err)
        peak = cpu = 0.0
        while proc.poll() is None:
            try:
                peak = max(peak, proc.memory_info().rss)
                cpu = max(cpu, sum(proc.cpu_times()[:2]))
            except psutil.Error:
                pass
            time.sleep(0.05)
        out.seek(0)
        err.seek(0)
        done = subprocess.CompletedProcess(cmd, proc.returncode, out.read().decode(), err.read().decode())
    server_cpu = sum(server.cpu_times()[:2]) - cpu0 if server else float("nan")
    return done, {"peak_rss_mb": peak / 2**20, "client_cpu": cpu, "server_cpu": server_cpu}


@click.command("mongodb")
@click.option("--points", type=click.IntRange(min=1), default=695, show_default=True, help="695 x 1/min = 1.0M samples.")
@click.option("--interval", type=click.FloatRange(min=0.001), default=60.0, show_default=True)
@click.option("--rerun-points", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--poll-minutes", type=click.IntRange(min=1, max=60), default=60, show_default=True)
@click.option("--phases", default="sink,insert_many,rerun,rerun_replace,quota", show_default=True)
@click.option("--uri", envvar="NAIA_MONGODB_URI", help="Server (also $NAIA_MONGODB_URI).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write every phase's figures here.")
@click.option("--child", hidden=True)
@click.option("--tag", hidden=True, default="")
def command(**options: Any) -> None:
    """The MongoDB sink against pymongo insert_many on the same server; WAQI quota use over a day of polls."""
    args = SimpleNamespace(**options)
    if args.child:
        print(json.dumps(_child(args.child, args)))
        return
    sys.exit(report(args))


def report(args: SimpleNamespace) -> int:
    console = Console(width=max(Console().width, 140))
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    console.print(f"[bold]naia-backfill bench mongodb --points {args.points} --interval {args.interval:g} "
                  f"--rerun-points {args.rerun_points} --poll-minutes {args.poll_minutes} --phases {','.join(phases)}[/]")
    console.print(f"{psutil.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    table = Table("phase", "documents", "seconds", "documents/s", "client CPU s", "server CPU s", "peak RSS MB")
    server, tag, failed = (_listener(args.uri) if args.uri else None), uuid.uuid4().hex[:8], False
    figures: dict[str, Any] = {}
    for phase in phases:
        if phase == "quota":
            q = figures["quota"] = quota(args.poll_minutes)
            console.print(f"quota: {q['stations']} stations polled every {args.poll_minutes} min for a day: "
                          f"{q['requests']:,} requests of {q['allowed']:,} allowed ({q['requests'] / q['allowed']:.4%}); "
                          f"busiest minute {q['busiest_minute']} of 1000")
            continue
        if not args.uri:
            raise click.UsageError("set NAIA_MONGODB_URI or --uri")
        cmd = [sys.executable, "-m", "naia_backfill.dev.benchmarks.mongodb", "--child", phase, "--tag", tag,
               "--points", str(args.points), "--interval", str(args.interval), "--rerun-points", str(args.rerun_points),
               "--uri", args.uri]
        done, usage = _watch(cmd, server)
        if done.returncode != 0:
            console.print(f"[red]{phase} failed ({done.returncode}):[/]\n{done.stderr[-3000:]}")
            failed = True
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        figures[phase] = {**r, **usage}
        table.add_row(phase, f"{r['rows']:,}", f"{r['seconds']:.1f}", f"{r['rows'] / r['seconds']:,.0f}",
                      f"{usage['client_cpu']:.1f}", f"{usage['server_cpu']:.1f}", f"{usage['peak_rss_mb']:.0f}")
    console.print(table)
    console.print("sink: the sink's open/write/commit calls (Arrow -> documents -> unordered insert_many); "
                  "insert_many: pre-built documents only; rerun / rerun_replace: the sink over a day already "
                  "stored, with rerun: delete_insert / replace.")
    if args.json_path:
        with open(args.json_path, "w", encoding="utf-8") as f:
            json.dump({"phases": figures}, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    command()
