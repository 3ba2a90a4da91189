"""How fast the ACE IoT simulator serves a site's paginated series over loopback, so it never bounds a connector.

Pulls ``[start, start + hours)`` of a site (default: the 4,583-point ``ses_falls_city``, a whole UTC day, about
7.2M served samples) page by page over one keep-alive httpx connection, as a connector would, and reports
samples/s received (bytes read, not parsed; ``--parse`` also parses each page with orjson), the simulator's
CPU seconds (it runs as ``naia-backfill simulate ace-iot`` in a child process, or with ``--in-process`` in a
thread of this one) and the load average.
``python -m naia_backfill.dev.simulators.ace_iot.bench --page-size 50000``
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import httpx
import orjson

from naia_backfill.dev.simulators.ace_iot.simulator import AceIotSimulator, serve
from naia_backfill.dev.simulators.ace_iot.sites import LARGE_SITE


def pull(url: str, site: str, start: dt.datetime, end: dt.datetime, page_size: int, parse: bool) -> tuple[int, int]:
    """(samples, pages) of ``site`` in ``[start, end)``, following cursors."""
    params: dict[str, Any] = {
        "start_time": start.isoformat().replace("+00:00", "Z"),
        "end_time": end.isoformat().replace("+00:00", "Z"),
        "page_size": page_size,
        "raw_data": "true",
    }
    samples = pages = 0
    with httpx.Client(base_url=url, timeout=300) as client:
        while True:
            r = client.get(f"/sites/{site}/timeseries/paginated", params=params)
            r.raise_for_status()
            pages += 1
            if parse:
                doc = orjson.loads(r.content)
                samples += len(doc["point_samples"])
                more, cursor = doc["has_more"], doc["next_cursor"]
            else:
                samples += r.content.count(b'{"name":')
                tail = orjson.loads(b"{" + r.content[r.content.rindex(b'"next_cursor"') :])
                more, cursor = tail["has_more"], tail["next_cursor"]
            if not (more and cursor):
                return samples, pages
            params["cursor"] = cursor


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def _server(in_process: bool) -> Iterator[tuple[str, Callable[[], float]]]:
    """The simulator's base URL and a function giving its CPU seconds so far: threads of this process (from the
    request log), or a child process started with ``naia-backfill simulate ace-iot`` (from /proc)."""
    if in_process:
        sim = AceIotSimulator()
        with serve(sim) as url:
            yield url, lambda: sum(e["cpu_s"] for e in sim.request_log)
        return
    command = [sys.executable, "-m", "naia_backfill.dev.simulators.cli", "ace-iot", "--port", "0"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = next(w for w in proc.stdout.readline().split() if w.startswith("http://"))
        yield url, lambda: _cpu_seconds(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def run(
    site: str = LARGE_SITE, day: dt.date = dt.date(2024, 1, 1), hours: float = 24.0, page_size: int = 50_000,
    parse: bool = False, in_process: bool = False,
) -> dict[str, float]:  # fmt: skip
    """Pull the period once to warm up, then again measured; the simulator runs in its own process unless
    ``in_process`` (then it shares this process's GIL with the client)."""
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    end = start + dt.timedelta(hours=hours)
    with _server(in_process) as (url, server_cpu):
        pull(url, site, start, start + dt.timedelta(minutes=10), page_size, parse)  # warm up (model, caches)
        load = os.getloadavg()[0]
        cpu0, wall, client0 = server_cpu(), time.perf_counter(), time.process_time()
        samples, pages = pull(url, site, start, end, page_size, parse)
        seconds, client_cpu, cpu = time.perf_counter() - wall, time.process_time() - client0, server_cpu() - cpu0
    if in_process:
        client_cpu -= cpu
    return {
        "samples": samples,
        "pages": pages,
        "seconds": seconds,
        "samples_per_s": samples / seconds,
        "server_cpu_s": cpu,
        "samples_per_server_cpu_s": samples / cpu,
        "client_cpu_s": client_cpu,
        "load_1min": load,
    }


@click.command(help=__doc__.split("\n\n")[0])
@click.option("--site", default=LARGE_SITE, show_default=True)
@click.option("--day", type=click.DateTime(["%Y-%m-%d"]), default="2024-01-01", show_default=True)
@click.option("--hours", type=float, default=24.0, show_default=True)
@click.option("--page-size", type=int, default=50_000, show_default=True)
@click.option("--parse", is_flag=True, help="Parse each page with orjson in the client.")
@click.option("--in-process", is_flag=True, help="Serve from a thread of this process instead of a child process.")
def main(site: str, day: dt.datetime, hours: float, page_size: int, parse: bool, in_process: bool) -> None:
    r = run(site, day.date(), hours, page_size, parse, in_process)
    click.echo(
        f"{site} {day:%Y-%m-%d} {hours:g} h: {r['samples']:,.0f} samples in {r['pages']:.0f} pages of {page_size:,}, "
        f"{r['seconds']:.2f} s -> {r['samples_per_s']:,.0f} samples/s ({'parsed' if parse else 'raw bytes'}); "
        f"server CPU {r['server_cpu_s']:.2f} s -> {r['samples_per_server_cpu_s']:,.0f} samples per CPU second; "
        f"client CPU {r['client_cpu_s']:.2f} s; load {r['load_1min']:.2f}"
    )


if __name__ == "__main__":
    main()
