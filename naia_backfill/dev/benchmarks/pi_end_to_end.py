"""Benchmark: PI Web API -> Parquet, end to end over HTTP: naia's connector + lake sink against dlt's REST API source.

The PI Web API simulator runs in its own process (its CPU and memory are not the client's), serving N Float32
points at one sample a minute; each variant backfills the same UTC day(s) of every point, in its own process so
its peak RSS and CPU time are its own. Default scale: seed 002's site, 4,583 points (about 6.6M samples a day).

    naia-backfill bench pi-end-to-end [--points 4583] [--days 1] [--only naia|dlt]

``naia``: ``copy_day`` with the PI Web API connector (``/streamsets/recorded``, 100 streams a request, maxCount
paging with the equal-timestamp rule) into :class:`~naia_backfill.sinks.parquet.ParquetDaySink` on a local lake.
``dlt`` (``pip install 'dlt[parquet]'``): ``dlt.sources.rest_api`` with dataservers -> points (startIndex/maxCount
offset paging) -> ``/streams/{webId}/recorded`` per point per day, a custom paginator following PI's maxCount
paging, into ``destination="filesystem"`` with ``loader_file_format="parquet"`` in a temporary folder.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click

DAY = dt.date(2024, 1, 1)
SEED = 2
DATA_SERVER = "PISRV1"
VARIANTS = ("naia", "dlt")
#: maxCount of dlt's ``/streams/{webId}/recorded`` requests: the server's MaxReturnedItemsPerCall, one page per
#: point-day at one sample a minute (smaller values exercise the paginator).
DLT_MAX_COUNT = 150_000
MODULE = "naia_backfill.dev.benchmarks.pi_end_to_end"


def _points(n: int) -> list[Any]:
    from naia_backfill.dev.simulators.pi_web_api.data import SimPoint

    return [SimPoint(f"BENCH{i:05d}", point_type="Float32", interval_s=60.0) for i in range(n)]


def _window(days: int) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(DAY, dt.time(), tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=days)


def truth_count(points: int, days: int) -> int:
    """How many events the simulator serves for the benchmark's window (the samples every variant must land)."""
    from naia_backfill.dev.simulators.pi_web_api.data import generate, to_ticks

    start, end = _window(days)
    t0, t1 = to_ticks(start), to_ticks(end) - 1
    return sum(int(generate(p, SEED, t0, t1).ticks.size) for p in _points(points))


def _serve(points: int) -> int:
    """Child: serve the catalogue on 127.0.0.1, print the base URL, run until SIGTERM or stdin closes."""
    import threading

    from naia_backfill.dev.simulators.pi_web_api.simulator import PiSimulator, serve

    sim = PiSimulator(seed=SEED, data_server=DATA_SERVER, points=_points(points))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    with serve(sim, "127.0.0.1", 0) as url:
        print(url, flush=True)
        while not stop.wait(0.5):
            pass
    return 0


def _usage() -> tuple[float, float]:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime, u.ru_maxrss / 1024


def _run_naia(url: str, points: int, days: int, work: str) -> int:
    from naia_backfill.connectors import build_source, resolve_points
    from naia_backfill.core.daycopy import copy_day
    from naia_backfill.settings import PointSet
    from naia_backfill.sinks.base import DayTarget
    from naia_backfill.sinks.lake import LocalLake
    from naia_backfill.sinks.parquet import ParquetDaySink

    point_set = PointSet.model_validate(
        {
            "name": "bench_pi",
            "start_date": DAY,
            "source": {"kind": "pi_web_api", "base_url": url, "data_server": DATA_SERVER},
            "points": {"name_filter": "*"},
        }
    )
    source = build_source(point_set)
    sink = ParquetDaySink(LocalLake(work))
    try:
        names = resolve_points(point_set, source)
        assert len(names) == points, (len(names), points)
        return sum(
            copy_day(source, names, [sink], DayTarget("bench_pi", DAY + dt.timedelta(days=i))).samples
            for i in range(days)
        )
    finally:
        sink.close()
        source.close()


def _pi_recorded_paginator(max_count: int) -> Any:
    """dlt paginator for ``/streams/{webId}/recorded``: a full page (maxCount events) is asked again from its last
    timestamp, and the events at that timestamp already taken are dropped from the next page (in place, in
    ``update_state``, which dlt calls before it yields the page), so equal-timestamp runs split across pages come
    out whole. A full page of one timestamp cannot be paged through: it fails."""
    from dlt.sources.helpers.rest_client.paginators import BasePaginator

    class PiRecordedPaginator(BasePaginator):
        def __init__(self) -> None:
            super().__init__()
            self.start: str | None = None  # startTime of the next request
            self.skip = 0  # events at ``start`` already yielded

        def update_state(self, response: Any, data: list[Any] | None = None) -> None:
            items = data if data is not None else []
            full = len(items) >= max_count
            if self.skip:
                lead = 0
                while lead < min(self.skip, len(items)) and items[lead]["Timestamp"] == self.start:
                    lead += 1
                del items[:lead]
            if not full or not items:
                self._has_next_page = False
                return
            last = items[-1]["Timestamp"]
            taken = sum(1 for it in items if it["Timestamp"] == last)
            if last == self.start:
                taken += self.skip
            if taken >= max_count:
                raise RuntimeError(f"{max_count}+ events at {last}: PI pages by timestamp; raise maxCount")
            self.start, self.skip = last, taken

        def update_request(self, request: Any) -> None:
            if self._has_next_page and self.start is not None:
                request.params["startTime"] = self.start

    return PiRecordedPaginator()


def _run_dlt(url: str, points: int, days: int, work: str) -> int:
    import dlt
    import pyarrow.parquet as pq
    from dlt.sources.helpers.rest_client.paginators import OffsetPaginator
    from dlt.sources.rest_api import rest_api_source

    from naia_backfill.connectors.pi_web_api_json import iso, to_ns

    max_count = DLT_MAX_COUNT
    pipeline = dlt.pipeline(
        pipeline_name="bench_pi_dlt",
        pipelines_dir=str(Path(work) / "pipelines"),
        destination=dlt.destinations.filesystem(bucket_url=str(Path(work) / "lake")),
        dataset_name="bench_pi",
    )
    for i in range(days):
        start = dt.datetime.combine(DAY + dt.timedelta(days=i), dt.time(), tzinfo=dt.UTC)
        # boundaryType Inside includes endTime; ask up to the last 100 ns tick before the next day instead
        last_tick = iso(to_ns(start + dt.timedelta(days=1)) - 100)
        source = rest_api_source(
            {
                "client": {"base_url": url.rstrip("/") + "/"},
                "resources": [
                    {
                        "name": "dataservers",
                        "selected": False,
                        "endpoint": {
                            "path": "dataservers",
                            "params": {"name": DATA_SERVER},
                            "data_selector": "$",
                            "paginator": "single_page",
                        },
                    },
                    {
                        "name": "points",
                        "selected": False,
                        "endpoint": {
                            "path": "dataservers/{resources.dataservers.WebId}/points",
                            "data_selector": "Items",
                            "params": {"nameFilter": "*"},
                            "paginator": OffsetPaginator(
                                limit=1000, offset_param="startIndex", limit_param="maxCount", total_path=None
                            ),
                        },
                    },
                    {
                        "name": "recorded",
                        "include_from_parent": ["Name"],
                        "endpoint": {
                            "path": "streams/{resources.points.WebId}/recorded",
                            "data_selector": "Items",
                            "params": {
                                "startTime": iso(to_ns(start)),
                                "endTime": last_tick,
                                "boundaryType": "Inside",
                                "maxCount": max_count,
                            },
                            "paginator": _pi_recorded_paginator(max_count),
                        },
                    },
                ],
            }
        )
        pipeline.run(source, loader_file_format="parquet")
    files = list((Path(work) / "lake" / "bench_pi" / "recorded").glob("*.parquet"))
    return sum(pq.read_metadata(f).num_rows for f in files)


def _child(variant: str, url: str, points: int, days: int, work: str) -> dict[str, Any]:
    if variant == "dlt":
        import dlt  # noqa: F401  (imports before the baseline, as for naia)
    else:
        import naia_backfill.connectors.pi_web_api
        import naia_backfill.sinks.parquet  # noqa: F401
    cpu0, baseline = _usage()
    started = time.perf_counter()
    samples = (_run_dlt if variant == "dlt" else _run_naia)(url, points, days, work)
    seconds = time.perf_counter() - started
    cpu, peak = _usage()
    return {
        "variant": variant,
        "samples": samples,
        "seconds": seconds,
        "cpu_seconds": cpu - cpu0,
        "peak_rss_mb": peak,
        "import_rss_mb": baseline,
    }


def run(points: int, days: int, only: str | None = None) -> tuple[list[dict[str, Any]], int, str]:
    """Run the benchmark: (one result per variant, the simulator's true sample count, the command line)."""
    command = f"naia-backfill bench pi-end-to-end --points {points} --days {days}" + (f" --only {only}" if only else "")
    variants = [only] if only else list(VARIANTS)
    server = subprocess.Popen(
        [sys.executable, "-m", MODULE, "--serve", "--points", str(points)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    results = []
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"the simulator did not start (got {url!r})")
        for name in variants:
            with tempfile.TemporaryDirectory(prefix="naia-bench-pi-") as work:
                env = dict(os.environ, RUNTIME__DLTHUB_TELEMETRY="false", DLT_DATA_DIR=str(Path(work) / "dlt"))
                proc = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        MODULE,
                        "--child",
                        "--only",
                        name,
                        "--url",
                        url,
                        "--points",
                        str(points),
                        "--days",
                        str(days),
                        "--work",
                        work,
                    ],
                    capture_output=True,
                    text=True,
                    check=False,
                    env=env,
                    cwd=work,
                )
            if proc.returncode != 0:
                raise RuntimeError(f"{name} failed:\n{proc.stderr[-3000:]}")
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    return results, truth_count(points, days), command


@click.command("pi-end-to-end")
@click.option("--points", type=click.IntRange(min=1), default=4583, show_default=True,
              help="Float32 points at one sample a minute.")
@click.option("--days", type=click.IntRange(min=1), default=1, show_default=True, help="UTC days from 2024-01-01.")
@click.option("--only", type=click.Choice(VARIANTS), help="Run one variant.")
@click.option("--child", is_flag=True, hidden=True)
@click.option("--serve", is_flag=True, hidden=True)
@click.option("--url", hidden=True)
@click.option("--work", hidden=True)
def command(points: int, days: int, only: str | None, child: bool, serve: bool, url: str | None, work: str | None) -> None:
    """PI Web API -> Parquet end to end: naia's connector + lake sink against dlt's REST API source."""
    if serve:
        sys.exit(_serve(points))
    if child:
        print(json.dumps(_child(only, url, points, days, work)))
        return
    sys.exit(report(points, days, only))


def report(points: int, days: int, only: str | None) -> int:
    """Run the benchmark and print its table; 1 when a variant failed or lost samples."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 130))
    try:
        results, truth, command = run(points, days, only)
    except RuntimeError as e:
        console.print(f"[red]{e}[/]")
        return 1
    console.print(
        f"[bold]{command}[/]  ({points} points, 60s interval, {days} day(s), "
        f"{truth:,} samples served; simulator in its own process)"
    )
    table = Table("variant", "samples", "seconds", "samples/s", "CPU s", "peak RSS MB", "RSS after imports MB")
    for r in results:
        table.add_row(
            r["variant"],
            f"{r['samples']:,}",
            f"{r['seconds']:.2f}",
            f"{r['samples'] / r['seconds']:,.0f}",
            f"{r['cpu_seconds']:.2f}",
            f"{r['peak_rss_mb']:.0f}",
            f"{r['import_rss_mb']:.0f}",
        )
    console.print(table)
    by = {r["variant"]: r for r in results}
    if len(by) == 2:
        n, d = by["naia"], by["dlt"]
        console.print(
            f"naia/dlt: {(n['samples'] / n['seconds']) / (d['samples'] / d['seconds']):.1f}x samples/s, "
            f"{d['cpu_seconds'] / n['cpu_seconds']:.1f}x less CPU, "
            f"{d['peak_rss_mb'] / n['peak_rss_mb']:.1f}x less peak RSS"
        )
    wrong = [f"{r['variant']}: {r['samples']:,}" for r in results if r["samples"] != truth]
    if wrong:
        console.print(f"[red]sample count differs from the simulator's {truth:,}: {', '.join(wrong)}[/]")
        return 1
    return 0


if __name__ == "__main__":
    command()
