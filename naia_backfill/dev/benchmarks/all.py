"""`naia-backfill bench all`: every measure of the registry (:mod:`~naia_backfill.dev.benchmarks.measures.registry`)
at one scale, each naia figure beside its limit or peer measured in the same run, as one table (and JSON).

    naia-backfill bench all [--scale tiny|quick|full] [--only NAME ...] [--skip NAME ...] [--dlt] [--repeat N]
                            [--json PATH] [--list]

A measure whose service variables or packages are missing, or that this run leaves out, is reported as skipped
with the reason; one that raises is reported as failed with its error and the others still run. The exit status
is 1 when a measure failed (skipped ones and missed goals do not count), 2 on bad usage.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from naia_backfill.dev.benchmarks.measures import registry
from naia_backfill.dev.benchmarks.measures.child import MeasureError
from naia_backfill.dev.benchmarks.measures.registry import SCALES, Measure, Scale
from naia_backfill.dev.benchmarks.measures.rows import FAILED, Row, failed, merge, skipped, table

WIDTH = 180


def _brief(error: str) -> str:
    """An error for a table cell: its first line and, when longer, its last (a traceback's exception)."""
    lines = [line.strip() for line in error.strip().splitlines() if line.strip()]
    first, last = lines[0][:200], lines[-1][:200]
    return first if len(lines) == 1 else f"{first} … {last}"


def measure(m: Measure, scale: Scale) -> tuple[list[Row], str | None]:
    """Run one measure (``scale.repeat`` times unless it repeats itself): its rows, and its error if it raised."""
    load, error = os.getloadavg()[0], None
    try:
        function = m.function()
        rows = merge(function(scale) for _ in range(1 if m.repeats_itself else scale.repeat))
        if not rows:
            raise MeasureError("it measured nothing (no rows)")
    except Exception as e:  # noqa: BLE001 -- one measure failing must not stop the others; it is reported
        error = f"{type(e).__name__}: {e}"
        rows = [failed("", _brief(error))]
    for row in rows:
        row.source, row.load = m.name, load
    return rows, error


def run_all(plan: list[tuple[Measure, str | None]], scale: Scale, log: Console) -> tuple[list[Row], list[dict]]:
    """Every planned measure in turn: all rows, and one summary per measure (state, seconds, reason or error)."""
    rows: list[Row] = []
    summaries: list[dict[str, Any]] = []
    for i, (m, reason) in enumerate(plan, 1):
        summary: dict[str, Any] = {"name": m.name, "compares": m.compares, "command": m.command}
        if reason:
            rows.append(skipped("", reason))
            rows[-1].source = m.name
            log.print(f"{i}/{len(plan)} {m.name}: [yellow]skipped[/] ({escape(reason)})")
            summaries.append({**summary, "state": "skipped", "reason": reason})
            continue
        log.print(f"{i}/{len(plan)} {m.name}: running (load {os.getloadavg()[0]:.2f})")
        started = time.perf_counter()
        got, error = measure(m, scale)
        seconds = time.perf_counter() - started
        rows += got
        if error:
            log.print(f"  [bold red]failed[/] after {seconds:.0f} s: {escape(error)}")
        else:
            log.print(f"  done in {seconds:.0f} s")
        summaries.append({**summary, "state": "failed" if error else "measured", "seconds": seconds,
                          **({"error": error} if error else {})})
    return rows, summaries


def list_measures(console: Console) -> None:
    """The registry: what each measure compares, the benchmark behind it, when it runs, what it still needs."""
    out = Table("measure", "compares", "command", "runs by default at", "to run it", title="naia-backfill bench all",
                title_justify="left")
    for m in registry.MEASURES.values():
        when = "/".join(m.defaults) + (" with --dlt" if m.dlt else "")
        missing = m.missing()
        out.add_row(m.name, m.compares, m.command, when, f"[yellow]{escape(missing)}[/]" if missing else "ready")
    console.print(out)


def _caption(load_start: tuple[float, ...], load_end: tuple[float, ...], scale: Scale) -> str:
    tiny = " tiny is a smoke test: its ratios are dominated by start-up costs." if scale.name == "tiny" else ""
    return (f"load average (1 min) {load_start[0]:.2f} at start, {load_end[0]:.2f} at end, on {os.cpu_count()} "
            "CPUs shared with other work: the figures are noisy under load. ratio = naia / limit or peer in the "
            f"row's unit, measured in the same run (×N: median of N paired runs).{tiny}")


@click.command("all")
@click.option("--scale", "scale_name", type=click.Choice(SCALES), default="quick", show_default=True,
              help="tiny: a smoke test (a few minutes); quick: minutes on 2 cores; full: the issues' sizes (hours).")
@click.option("--only", multiple=True, metavar="NAME", help="Run only this measure, whatever its defaults (repeatable).")
@click.option("--skip", multiple=True, metavar="NAME", help="Leave this measure out (repeatable).")
@click.option("--dlt", is_flag=True, help="Also the measures whose peer is dlt (slow).")
@click.option("--repeat", type=click.IntRange(min=1), default=1, show_default=True,
              help="Runs of each measure (or of its paired naia/peer runs); medians are reported.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write every row and measure here.")
@click.option("--list", "list_only", is_flag=True, help="Print the registry (and what each measure needs) and exit.")
def command(scale_name: str, only: tuple[str, ...], skip: tuple[str, ...], dlt: bool, repeat: int,
            json_path: str | None, list_only: bool) -> None:
    """Every benchmark with its limit or peer in the same run: one table of ratios against the goals."""
    console = Console(width=max(Console().width, WIDTH))
    if list_only:
        list_measures(console)
        return
    try:
        plan = registry.plan(scale_name, only, skip, dlt)  # type: ignore[arg-type]
    except KeyError as e:
        raise click.BadParameter(str(e.args[0]), param_hint="--only/--skip") from None
    scale = Scale(scale_name, repeat)  # type: ignore[arg-type]
    load_start, started = os.getloadavg(), time.perf_counter()
    began = dt.datetime.now(dt.UTC)
    rows, summaries = run_all(plan, scale, Console(stderr=True, width=console.width))
    load_end, seconds = os.getloadavg(), time.perf_counter() - started
    states = [s["state"] for s in summaries]
    line = f"naia-backfill bench all --scale {scale.name}" + (f" --repeat {repeat}" if repeat > 1 else "")
    title = (f"{line}  ({states.count('measured')} measured, {states.count('skipped')} skipped, "
             f"{states.count('failed')} failed; {seconds:.0f} s)")
    console.print(table(rows, title, _caption(load_start, load_end, scale)))
    if json_path:
        Path(json_path).write_text(json.dumps({
            "command": line, "scale": scale.name, "repeat": repeat, "cpus": os.cpu_count(),
            "started": began.isoformat(), "seconds": seconds, "load_start": load_start, "load_end": load_end,
            "measures": summaries, "rows": [r.as_json() for r in rows]}, indent=1), encoding="utf-8")
    if any(s == "failed" for s in states) or any(r.verdict == FAILED for r in rows):
        sys.exit(1)
