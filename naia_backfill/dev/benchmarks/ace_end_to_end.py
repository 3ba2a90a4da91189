"""Benchmark: ACE IoT -> Parquet end to end over HTTP: naia's connector + lake sink against dlt's REST API source,
and a rate-limited run measured from the server's request log.

The ACE IoT simulator runs in its own process (its CPU and memory are not the client's) serving seed 002's site
``ses_falls_city`` (4,583 configured of 4,800 points at one sample a minute: 6.6M kept of 7.2M served samples a
day), or its first ``--fraction`` of points; each variant backfills the same UTC day in its own process, so its
peak RSS and CPU time are its own. ``naia`` runs at every fraction (memory must not grow with the site); ``dlt``
at the largest, for the ratio.

    naia-backfill bench ace-end-to-end [--fraction 0.1 --fraction 1] [--page-size 10000] [--only naia|dlt|rate]
                                       [--json PATH]

``naia``: ``copy_day`` with the ACE IoT connector (the site's configured points, cursor paging, window cut to
the day, null/nan/inf and unconfigured samples dropped) into :class:`~naia_backfill.sinks.parquet.ParquetDaySink`
on a local lake. ``dlt`` (``pip install 'dlt[parquet]'``): ``dlt.sources.rest_api`` on the same endpoint with a
``JSONResponseCursorPaginator``, the same filter (configured points, the day, finite values parsed to float)
as ``add_filter``/``add_map``, into ``destination="filesystem"`` with ``loader_file_format="parquet"``.
``rate``: the connector at the default 50 requests/60 s against the small ``demo_site`` (pages of 200 samples,
so requests never wait for data) for ``--rate-seconds``, the simulator enforcing the same limit (429); from its
request log: requests in each whole minute from the first request (/ 50: achieved / allowed) and the most in any
sliding 60 s (never above 50).
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
import threading
import time
from pathlib import Path
from typing import Any

import click

DAY = dt.date(2024, 1, 1)
SEED = 2
MODULE = "naia_backfill.dev.benchmarks.ace_end_to_end"
VARIANTS = ("naia", "dlt", "rate")


def _site(fraction: float) -> Any:
    """seed 002's site, or its first ``fraction`` of points (the same names, samples and configured flags)."""
    from naia_backfill.dev.simulators.ace_iot.data import AceSite
    from naia_backfill.dev.simulators.ace_iot.sites import large_site

    site = large_site()
    n = max(1, round(len(site.points) * fraction))
    return AceSite(site.name, site.client, site.points[:n], site.nice_name, site.address)


def _window() -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(DAY, dt.time(), tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1)


def truth(fraction: float) -> dict[str, Any]:
    """The simulator's counts for the benchmark day (what every variant must land)."""
    from naia_backfill.dev.simulators.ace_iot.simulator import AceIotSimulator

    site = _site(fraction)
    sim = AceIotSimulator(seed=SEED, sites=[site])
    return {**sim.truth_stats(site.name, DAY), "configured_points": len(sim.points(site.name, True))}


def _serve(fraction: float) -> int:
    """Child: serve the site on 127.0.0.1, print the base URL, run until SIGTERM or stdin closes."""
    from naia_backfill.dev.simulators.ace_iot.simulator import AceIotSimulator, serve

    sim = AceIotSimulator(seed=SEED, sites=[_site(fraction)])
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


def _point_set(url: str, site: str, page_size: int, rate_limit: dict | None = None) -> Any:
    from naia_backfill.settings import PointSet

    return PointSet.model_validate({
        "name": "bench_ace", "start_date": DAY, "points": {"name_filter": "*"},
        "source": {"kind": "ace_iot", "base_url": url, "site": site, "page_size": page_size, "rate_limit": rate_limit},
    })


def _run_naia(url: str, page_size: int, work: str) -> dict[str, Any]:
    from naia_backfill.connectors import build_source, resolve_points
    from naia_backfill.core.daycopy import copy_day
    from naia_backfill.dev.simulators.ace_iot.sites import LARGE_SITE
    from naia_backfill.sinks.base import DayTarget
    from naia_backfill.sinks.lake_local import LocalLake
    from naia_backfill.sinks.parquet import ParquetDaySink

    point_set = _point_set(url, LARGE_SITE, page_size)
    source, sink = build_source(point_set), ParquetDaySink(LocalLake(work))
    try:
        names = resolve_points(point_set, source)
        result = copy_day(source, names, [sink], DayTarget("bench_ace", DAY))
        return {"samples": result.samples, **{k: v for k, v in source.stats().items() if k != "samples"}}
    finally:
        sink.close()
        source.close()


def _run_dlt(url: str, page_size: int, work: str) -> dict[str, Any]:
    import math

    import dlt
    import pyarrow.parquet as pq
    from dlt.sources.helpers.rest_client import RESTClient
    from dlt.sources.helpers.rest_client.paginators import JSONResponseCursorPaginator, PageNumberPaginator
    from dlt.sources.rest_api import rest_api_source

    from naia_backfill.dev.simulators.ace_iot.sites import LARGE_SITE

    start, end = _window()
    base = url.rstrip("/") + "/"
    pages = PageNumberPaginator(base_page=1, page_param="page", total_path="pages")
    lister = RESTClient(base_url=base, paginator=pages, data_selector="items")
    configured = {p["name"] for page in lister.paginate(f"sites/{LARGE_SITE}/configured_points",
                                                          params={"per_page": 1000}) for p in page}

    def keep(s: dict) -> bool:
        if s["name"] not in configured or s["value"] in (None, ""):
            return False
        t = dt.datetime.fromisoformat(s["time"])
        return start <= t < end and math.isfinite(float(s["value"]))

    source = rest_api_source({
        "client": {"base_url": base,
                   "paginator": JSONResponseCursorPaginator(cursor_path="next_cursor", cursor_param="cursor")},
        "resources": [{"name": "samples", "endpoint": {
            "path": f"sites/{LARGE_SITE}/timeseries/paginated", "data_selector": "point_samples",
            "params": {"start_time": start.isoformat().replace("+00:00", "Z"),
                       "end_time": end.isoformat().replace("+00:00", "Z"), "page_size": page_size, "raw_data": "true"},
        }}],
    })
    source.resources["samples"].add_filter(keep).add_map(lambda s: {**s, "value": float(s["value"])})
    pipeline = dlt.pipeline(pipeline_name="bench_ace_dlt", pipelines_dir=str(Path(work) / "pipelines"),
                            destination=dlt.destinations.filesystem(bucket_url=str(Path(work) / "lake")),
                            dataset_name="bench_ace")
    pipeline.run(source, loader_file_format="parquet")
    files = list((Path(work) / "lake" / "bench_ace" / "samples").glob("*.parquet"))
    return {"samples": sum(pq.read_metadata(f).num_rows for f in files)}


def _child(variant: str, url: str, page_size: int, work: str) -> dict[str, Any]:
    import pyarrow as pa

    if variant == "dlt":
        import dlt  # noqa: F401  (imports before the baseline, as for naia)
    else:
        import naia_backfill.connectors.ace_iot
        import naia_backfill.sinks.parquet  # noqa: F401
    pa.array(["x"])  # pyarrow imports pandas (~45 MB) on its first list -> array: a library, part of the baseline
    cpu0, baseline = _usage()
    started = time.perf_counter()
    counts = (_run_dlt if variant == "dlt" else _run_naia)(url, page_size, work)
    seconds = time.perf_counter() - started
    cpu, peak = _usage()
    return {"variant": variant, **counts, "seconds": seconds, "cpu_seconds": cpu - cpu0, "peak_rss_mb": peak,
            "import_rss_mb": baseline}


def _serving(fraction: float) -> tuple[subprocess.Popen, str]:
    server = subprocess.Popen([sys.executable, "-m", MODULE, "--serve", "--fraction", str(fraction)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    url = server.stdout.readline().strip()
    if not url.startswith("http://127.0.0.1:"):
        server.kill()
        raise RuntimeError(f"the simulator did not start (got {url!r})")
    return server, url


def _variant(name: str, url: str, page_size: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="naia-bench-ace-") as work:
        env = dict(os.environ, RUNTIME__DLTHUB_TELEMETRY="false", DLT_DATA_DIR=str(Path(work) / "dlt"))
        proc = subprocess.run(
            [sys.executable, "-m", MODULE, "--child", "--only", name, "--url", url, "--page-size", str(page_size),
             "--work", work], capture_output=True, text=True, check=False, env=env, cwd=work,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def throughput(fractions: list[float], page_size: int, only: str | None) -> list[dict[str, Any]]:
    """naia at every fraction, dlt at the largest; one simulator process per fraction."""
    results = []
    for fraction in sorted(fractions):
        server, url = _serving(fraction)
        try:
            names = [v for v in ("naia", "dlt") if (only in (None, v)) and (v == "naia" or fraction == max(fractions))]
            for name in names:
                results.append({**_variant(name, url, page_size), "fraction": fraction, "truth": truth(fraction)})
        finally:
            server.terminate()
            server.wait(timeout=30)
    return results


def rate_limited(seconds: float, requests: int = 50, per_seconds: float = 60.0) -> dict[str, Any]:
    """The connector at ``requests``/``per_seconds`` for ``seconds`` of wall time against an in-process simulator
    that enforces the same limit; window counts from the simulator's request log."""
    from naia_backfill.dev.simulators.ace_iot.simulator import AceIotSimulator, serve

    sim = AceIotSimulator(seed=SEED, rate_limit=(requests, per_seconds))
    before = os.environ.get("NAIA_RATE_LIMIT_DIR")
    with tempfile.TemporaryDirectory(prefix="naia-bench-rate-") as limits, serve(sim) as url:
        os.environ["NAIA_RATE_LIMIT_DIR"] = limits  # a fresh shared log: no earlier bookings
        try:
            wall = _limited_fetch(url, requests, per_seconds, seconds)
        finally:
            os.environ.pop("NAIA_RATE_LIMIT_DIR")
            if before is not None:
                os.environ["NAIA_RATE_LIMIT_DIR"] = before
    times = sorted(e["time"] for e in sim.request_log)
    sliding = [sum(1 for u in times if t - per_seconds < u <= t) for t in times]
    periods = int((times[-1] - times[0]) // per_seconds)
    whole = [sum(1 for t in times if 0 <= t - times[0] - k * per_seconds < per_seconds) for k in range(periods)]
    return {"requests": len(times), "wall_seconds": wall, "sliding_max": max(sliding), "periods": whole,
            "achieved": sum(whole) / (requests * len(whole)), "allowed": requests, "per_seconds": per_seconds,
            "limited_429": sum(e["status"] == 429 for e in sim.request_log)}


def _limited_fetch(url: str, requests: int, per_seconds: float, seconds: float) -> float:
    """Fetch demo_site day after day in pages of 200 samples until ``seconds`` have passed; the wall time."""
    from naia_backfill.connectors import build_source, resolve_points
    from naia_backfill.dev.simulators.ace_iot.sites import DEMO_SITE

    point_set = _point_set(url, DEMO_SITE, 200, {"requests": requests, "per_seconds": per_seconds})
    with build_source(point_set) as source:
        names = resolve_points(point_set, source)
        started, day = time.monotonic(), DAY
        while time.monotonic() - started < seconds:
            start = dt.datetime.combine(day, dt.time(), dt.UTC)
            for _ in source.fetch(names, start, start + dt.timedelta(days=1)):
                if time.monotonic() - started >= seconds:
                    break
            day += dt.timedelta(days=1)
    return time.monotonic() - started


@click.command("ace-end-to-end")
@click.option("--fraction", "fractions", type=click.FloatRange(0.001, 1.0), multiple=True, default=(0.1, 1.0),
              show_default=True, help="Share of ses_falls_city's points served (repeatable).")
@click.option("--page-size", type=click.IntRange(1, 500_000), default=10_000, show_default=True,
              help="Samples per page for both variants (the connector's default).")
@click.option("--rate-seconds", type=click.FloatRange(min=61.0), default=130.0, show_default=True,
              help="Wall time of the rate-limited run.")
@click.option("--only", type=click.Choice(VARIANTS), help="Run one part.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write the figures here.")
@click.option("--child", is_flag=True, hidden=True)
@click.option("--serve", is_flag=True, hidden=True)
@click.option("--url", hidden=True)
@click.option("--work", hidden=True)
def command(fractions: tuple[float, ...], page_size: int, rate_seconds: float, only: str | None,
            json_path: str | None, child: bool, serve: bool, url: str | None, work: str | None) -> None:
    """ACE IoT -> Parquet end to end: naia against dlt's REST API source, memory by site size, and the rate limit."""
    if serve:
        sys.exit(_serve(fractions[0]))
    if child:
        print(json.dumps(_child(only, url, page_size, work)))
        return
    sys.exit(report(list(fractions), page_size, rate_seconds, only, json_path))


def report(fractions: list[float], page_size: int, rate_seconds: float, only: str | None,
           json_path: str | None = None) -> int:
    """Run the benchmark and print its tables; 1 when a variant lost samples or the limit was exceeded."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 140))
    command = (f"naia-backfill bench ace-end-to-end {' '.join(f'--fraction {f:g}' for f in fractions)} "
               f"--page-size {page_size} --rate-seconds {rate_seconds:g}" + (f" --only {only}" if only else ""))
    console.print(f"[bold]{command}[/]  (load {os.getloadavg()[0]:.2f} at start; simulator in its own process)")
    failed, figures = False, {"command": command}
    if only in (None, "naia", "dlt"):
        try:
            results = throughput(fractions, page_size, only)
        except RuntimeError as e:
            console.print(f"[red]{e}[/]")
            return 1
        figures["throughput"] = results
        table = Table("variant", "points", "samples", "seconds", "samples/s", "CPU s", "peak RSS MB",
                      "RSS after imports MB", "peak - imports MB")
        for r in results:
            table.add_row(r["variant"], f"{r['truth']['configured_points']:,}", f"{r['samples']:,}",
                          f"{r['seconds']:.2f}", f"{r['samples'] / r['seconds']:,.0f}", f"{r['cpu_seconds']:.2f}",
                          f"{r['peak_rss_mb']:.0f}", f"{r['import_rss_mb']:.0f}",
                          f"{r['peak_rss_mb'] - r['import_rss_mb']:.0f}")
        console.print(table)
        full = [r for r in results if r["fraction"] == max(fractions)]
        by = {r["variant"]: r for r in full}
        if len(by) == 2:
            n, d = by["naia"], by["dlt"]
            console.print(f"naia/dlt: {(n['samples'] / n['seconds']) / (d['samples'] / d['seconds']):.1f}x samples/s, "
                          f"{d['cpu_seconds'] / n['cpu_seconds']:.1f}x less CPU")
        for r in results:
            t = r["truth"]
            if any(r.get(k, t[k]) != t[k] for k in ("samples", "dropped_null", "dropped_unconfigured")):
                console.print(f"[red]{r['variant']} at {r['fraction']:g}: {r} differs from the simulator's {t}[/]")
                failed = True
    if only in (None, "rate"):
        r = figures["rate"] = rate_limited(rate_seconds)
        console.print(
            f"rate-limited run: {r['requests']} requests in {r['wall_seconds']:.0f} s at "
            f"{r['allowed']}/{r['per_seconds']:g}s (simulator's request log): per whole {r['per_seconds']:g} s from "
            f"the first request {r['periods']} -> achieved/allowed {r['achieved']:.1%}; most in any sliding "
            f"{r['per_seconds']:g} s: {r['sliding_max']}; 429 answers: {r['limited_429']}"
        )
        failed |= r["sliding_max"] > r["allowed"] or r["limited_429"] > 0
    console.print(f"load at end: {os.getloadavg()[0]:.2f}")
    if json_path:
        Path(json_path).write_text(json.dumps(figures, indent=1), encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    command()
