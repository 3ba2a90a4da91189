"""Benchmark: two point sets on different sources backfilled one after the other vs at the same time, on the
PostgreSQL-backed instance (docker/dagster.yaml), on one machine.

    naia-backfill bench concurrency [--days 4] [--chunk-days 2] [--repeat 2] [--second pi|synthetic] [--json PATH]

Point set A reads the synthetic source (``--synthetic-points`` points at one sample a minute: 1,000 make about
1,450,000 samples a day); B reads the PI Web API simulator (``naia-backfill simulate pi-web-api`` in its own
process, eight of its points, about 1,000,000 samples a day) or, with ``--second synthetic``, a second synthetic
source. Each has its own pool (limit 1, as every pool in docker/dagster.yaml), so a source's steps never overlap
while the two sources' may. Both backfill the same UTC days from 2024-01-01 into a local Parquet lake, launched
over GraphQL as `naia-backfill backfill` does, in runs of ``--chunk-days`` days; the instance admits 4 runs at
once.

*sequential*: A's backfill, and once its days are all materialized, B's. *concurrent*: both launched together.
Wall time runs from the first launch until every day of the phase shows as materialized. The phases alternate
order each repeat; medians are reported. Besides wall time and samples/s, the table gives the seconds the runs'
steps took (summed; more than the wall time means steps overlapped) and the runs' own seconds (a run process
starting, loading the code and reporting adds to its step), how busy the machine's CPUs were (every process
counted) and its load average: on shared cores, the other processes' load bounds what concurrency can gain.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import psutil
import yaml
from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

from naia_backfill.cli.graphql import BackfillStatus, DagsterControl
from naia_backfill.dev.benchmarks.concurrency_stack import (
    Instance,
    StackError,
    connect,
    pi_simulator,
    postgres_instance,
)

FIRST_DAY = dt.date(2024, 1, 1)
PI_POINTS = ["CDT158", "BA:TEMP.1", "FLOW101.F64", "COUNT101.I32", "PUMP101.STATE", "LEVEL101.I16", "FAST.1HZ",
             "FAST.10HZ"]
PHASE_TIMEOUT_S = 1800.0
POLL_S = 2.0
A, B = "bench_conc_a", "bench_conc_b"


@dataclass(frozen=True)
class Phase:
    """One timed phase: how long, how much, and where the time went."""

    mode: str
    wall_s: float
    samples: int
    runs: int
    step_s: float
    run_s: float
    load_before: float
    load_after: float
    cpu_busy: float  # share of the machine's CPU time not idle during the phase, every process counted

    @property
    def rate(self) -> float:
        return self.samples / self.wall_s if self.wall_s else 0.0


def point_sets(folder: Path, second: str, pi_url: str | None, points: int, chunk_days: int) -> Path:
    """Write the two point sets; returns their folder."""
    common = {"start_date": FIRST_DAY.isoformat(), "sinks": ["parquet"], "chunk_days": chunk_days}
    a = {"name": A, "source": {"kind": "synthetic", "points": points, "interval_seconds": 60, "seed": 11,
                               "pool": "bench_conc_synthetic"}, "points": {"name_filter": "SYN*"}, **common}
    if second == "pi":
        b = {"name": B, "source": {"kind": "pi_web_api", "base_url": pi_url, "data_server": "PISRV1",
                                   "pool": "bench_conc_pi"}, "points": {"names": PI_POINTS}, **common}
    else:
        b = {"name": B, "source": {"kind": "synthetic", "points": points, "interval_seconds": 60, "seed": 12,
                                   "prefix": "SYB", "pool": "bench_conc_synthetic_b"},
             "points": {"name_filter": "SYB*"}, **common}
    out = folder / "point_sets"
    out.mkdir()
    for ps in (a, b):
        (out / f"{ps['name']}.yaml").write_text(yaml.safe_dump(ps, sort_keys=False))
    return out


def wait_done(control: DagsterControl, ids: list[str]) -> list[BackfillStatus]:
    """Poll until every day of the backfills ``ids`` is materialized; fail on a failed day."""

    def poll() -> list[BackfillStatus] | None:
        statuses = [control.status(i) for i in ids]
        failed = [f"{s.id}: {s.failed_days}" for s in statuses if s.failed_days or s.status in {"FAILED", "CANCELED"}]
        if failed:
            raise click.ClickException(f"backfill failed: {'; '.join(failed)}")
        return statuses if all(s.days_total and s.days_done >= s.days_total for s in statuses) else None

    retrying = Retrying(stop=stop_after_delay(PHASE_TIMEOUT_S), wait=wait_fixed(POLL_S),
                        retry=retry_if_result(lambda r: r is None))
    return retrying(poll)


def wait_runs_ended(control: DagsterControl, ids: list[str]) -> None:
    """Until the backfills' runs have all ended (their processes report after the last day), untimed."""
    ended = {"SUCCESS", "FAILURE", "CANCELED"}
    Retrying(stop=stop_after_delay(300), wait=wait_fixed(POLL_S), retry=retry_if_result(lambda r: not r))(
        lambda: all(r.status in ended for i in ids for r in control.status(i).runs))


def step_and_run_seconds(instance: Instance, run_ids: list[str]) -> tuple[float, float]:
    """Seconds of the runs' steps (STEP_START to STEP_SUCCESS/FAILURE) and of the runs themselves, summed."""
    con = connect(instance.dsn, instance.database)
    try:
        with con.cursor() as cur:
            cur.execute("SELECT run_id, dagster_event_type, timestamp FROM event_logs WHERE run_id = ANY(%s) "
                        "AND dagster_event_type = ANY(%s) ORDER BY id",
                        [run_ids, ["STEP_START", "STEP_SUCCESS", "STEP_FAILURE"]])
            steps = cur.fetchall()
            cur.execute("SELECT start_time, end_time FROM runs WHERE run_id = ANY(%s)", [run_ids])
            runs = cur.fetchall()
    finally:
        con.close()
    started: dict[str, dt.datetime] = {}
    step_s = 0.0
    for run_id, kind, stamp in steps:
        if kind == "STEP_START":
            started[run_id] = stamp
        elif run_id in started:
            step_s += (stamp - started.pop(run_id)).total_seconds()
    run_s = sum(end - begin for begin, end in runs if begin and end)
    return step_s, run_s


def _busy(before: Any, after: Any) -> float:
    total = sum(after) - sum(before)
    idle = (after.idle + after.iowait) - (before.idle + before.iowait)
    return 1.0 - idle / total if total > 0 else 0.0


def phase(instance: Instance, control: DagsterControl, mode: str, last: dt.date) -> Phase:
    load_before, cpu_before = os.getloadavg()[0], psutil.cpu_times()
    started = time.monotonic()
    statuses: list[BackfillStatus] = []
    if mode == "concurrent":
        statuses = wait_done(control, [control.launch(n, FIRST_DAY, last, tags={"naia/bench": mode}) for n in (A, B)])
    else:
        for name in (A, B):
            statuses += wait_done(control, [control.launch(name, FIRST_DAY, last, tags={"naia/bench": mode})])
    wall, busy = time.monotonic() - started, _busy(cpu_before, psutil.cpu_times())
    ids = [s.id for s in statuses]
    wait_runs_ended(control, ids)
    run_ids = [r.run_id for i in ids for r in control.status(i).runs]
    step_s, run_s = step_and_run_seconds(instance, run_ids)
    return Phase(mode, wall, sum(s.samples for s in statuses), len(run_ids), step_s, run_s, load_before,
                 os.getloadavg()[0], busy)


def run(days: int, chunk_days: int, repeat: int, second: str, points: int, warmup: bool) -> list[Phase]:
    """Start everything, time the phases, print the table (before the teardown, which can take minutes: DROP
    DATABASE waits for every backend of the server), stop everything."""
    dsn = os.environ.get("NAIA_PG_DSN", "").strip()
    if not dsn:
        raise click.ClickException("NAIA_PG_DSN is not set: `scripts/services.sh up`, then source .services/env")
    last = FIRST_DAY + dt.timedelta(days=days - 1)
    phases: list[Phase] = []
    folder = Path(tempfile.mkdtemp(prefix="naia-bench-concurrency-"))
    try:
        with pi_simulator(folder) if second == "pi" else contextlib.nullcontext() as pi_url:
            sets = point_sets(folder, second, pi_url, points, chunk_days)
            click.echo(f"{time.strftime('%H:%M:%S')} starting the PostgreSQL-backed instance in {folder}", err=True)
            with postgres_instance(folder, dsn, sets, {A, B}) as instance, DagsterControl(instance.url) as control:
                if warmup:  # first imports and the pools' rows; not timed
                    ids = [control.launch(n, FIRST_DAY, FIRST_DAY, tags={"naia/bench": "warmup"}) for n in (A, B)]
                    wait_done(control, ids)
                    wait_runs_ended(control, ids)
                for i in range(repeat):
                    for mode in ("sequential", "concurrent") if i % 2 == 0 else ("concurrent", "sequential"):
                        click.echo(f"{time.strftime('%H:%M:%S')} repeat {i + 1}/{repeat}: {mode}", err=True)
                        phases.append(phase(instance, control, mode, last))
                        click.echo(f"  {mode}: {phases[-1].wall_s:.1f}s wall, load {os.getloadavg()[0]:.2f}", err=True)
                report(phases, {"days": days, "chunk_days": chunk_days, "repeat": repeat, "second": second,
                                "synthetic_points": points})
    except BaseException:
        click.echo(f"kept the servers' logs and the lake for a look: {folder}", err=True)
        raise
    shutil.rmtree(folder, ignore_errors=True)
    return phases


def report(phases: list[Phase], args: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 130))
    argv = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in args.items())
    console.print(f"[bold]naia-backfill bench concurrency {argv}[/]  ({os.cpu_count()} cores; PostgreSQL-backed "
                  "instance, docker/dagster.yaml: pools of limit 1, 4 runs at once)")
    table = Table("mode", "wall s", "samples", "samples/s", "runs", "step s (sum)", "steps at once", "run s (sum)",
                  "CPU busy", "load 1-min before→after", title="each phase")
    for p in phases:
        table.add_row(p.mode, f"{p.wall_s:.1f}", f"{p.samples:,}", f"{p.rate:,.0f}", str(p.runs), f"{p.step_s:.1f}",
                      f"{p.step_s / p.wall_s:.2f}", f"{p.run_s:.1f}", f"{p.cpu_busy:.0%}",
                      f"{p.load_before:.2f}→{p.load_after:.2f}")
    console.print(table)
    summary = Table("mode", "wall s (median)", "samples", "samples/s (median)", "speed-up", title="medians")
    seq = [p for p in phases if p.mode == "sequential"]
    conc = [p for p in phases if p.mode == "concurrent"]
    seq_wall = statistics.median(p.wall_s for p in seq)
    for name, group in (("sequential", seq), ("concurrent", conc)):
        wall = statistics.median(p.wall_s for p in group)
        rate = statistics.median(p.rate for p in group)
        summary.add_row(name, f"{wall:.1f}", f"{group[0].samples:,}", f"{rate:,.0f}", f"{seq_wall / wall:.2f}x")
    console.print(summary)
    load = os.getloadavg()
    console.print(f"load average now (1/5/15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    if len({p.samples for p in phases}) != 1:
        raise click.ClickException(f"phases landed different sample counts: {sorted({p.samples for p in phases})}")


@click.command("concurrency")
@click.option("--days", type=click.IntRange(min=1), default=4, show_default=True, help="UTC days from 2024-01-01.")
@click.option("--chunk-days", type=click.IntRange(min=1), default=2, show_default=True, help="Days per run.")
@click.option("--repeat", type=click.IntRange(min=1), default=2, show_default=True,
              help="Sequential+concurrent pairs, alternating which goes first.")
@click.option("--second", type=click.Choice(["pi", "synthetic"]), default="pi", show_default=True,
              help="Source of point set B: the PI Web API simulator or a second synthetic source.")
@click.option("--synthetic-points", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Points of the synthetic source(s), one sample a minute.")
@click.option("--warmup/--no-warmup", default=True, show_default=True,
              help="An untimed one-day backfill of each first.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write every phase's figures here.")
def command(days: int, chunk_days: int, repeat: int, second: str, synthetic_points: int, warmup: bool,
            json_path: str | None) -> None:
    """Two point sets on different sources: backfilled one after the other vs at once (wall time, samples/s)."""
    try:
        phases = run(days, chunk_days, repeat, second, synthetic_points, warmup)
    except StackError as e:
        raise click.ClickException(str(e)) from None
    except RetryError as e:
        raise click.ClickException(f"timed out waiting for the backfills: {e}") from None
    if json_path:
        Path(json_path).write_text(json.dumps({"phases": [vars(p) for p in phases]}, indent=1), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(command())
