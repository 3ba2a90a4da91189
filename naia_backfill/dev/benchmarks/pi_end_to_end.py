"""Benchmark: PI Web API -> Parquet, end to end over HTTP: naia against a client that only downloads, and against dlt.

The PI Web API simulator runs in its own process, serving N Float32 points at one sample a minute; each variant
backfills the same UTC day(s) of every point in its own process, so its peak RSS and CPU time are its own, and
the simulator's CPU time is read from its process around each variant. Default scale: seed 002's site, 4,583
points (about 6.6M samples a day). Variants are described in
:mod:`~naia_backfill.dev.benchmarks.pi_end_to_end_variants`; ``download`` sends naia's requests through the same
client and pipeline and only reads the bodies, so ``naia / download`` is the share of the reachable rate naia
gets. ``--repeat`` alternates naia and download (dlt runs once); figures are medians.

    naia-backfill bench pi-end-to-end [--points 4583] [--days 1] [--only naia|download|dlt ...] [--repeat 1]
                                      [--depth N] [--concurrent-requests N] [--json PATH]
"""

from __future__ import annotations

import datetime as dt
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from naia_backfill.dev.benchmarks.pi_end_to_end_variants import DATA_SERVER, DAY, RUNNERS

SEED = 2
VARIANTS = ("naia", "download", "dlt")
MODULE = "naia_backfill.dev.benchmarks.pi_end_to_end"

__all__ = ["DATA_SERVER", "DAY", "SEED", "VARIANTS", "command", "report", "run", "truth_count"]


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


def _pipeline(depth: int | None, concurrent: int | None) -> dict[str, int]:
    """Point-set settings of the connector's pipeline; those not given keep their defaults."""
    given = {"pipeline_depth": depth, "concurrent_requests": concurrent}
    return {k: v for k, v in given.items() if v is not None}


def _child(variant: str, url: str, points: int, days: int, work: str, pipeline: dict[str, int]) -> dict[str, Any]:
    if variant == "dlt":
        import dlt  # noqa: F401  (imports before the baseline, as for naia)
    else:
        import naia_backfill.connectors.pi_web_api
        import naia_backfill.sinks.parquet  # noqa: F401
    cpu0, baseline = _usage()
    started = time.perf_counter()
    samples = RUNNERS[variant](url, points, days, work, pipeline)
    seconds = time.perf_counter() - started
    cpu, peak = _usage()
    return {"variant": variant, "samples": samples, "seconds": seconds, "cpu_seconds": cpu - cpu0,
            "peak_rss_mb": peak, "import_rss_mb": baseline}


def _server_cpu(pid: int) -> float:
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def _run_child(name: str, url: str, points: int, days: int, options: list[str], server_pid: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="naia-bench-pi-") as work:
        env = dict(os.environ, RUNTIME__DLTHUB_TELEMETRY="false", DLT_DATA_DIR=str(Path(work) / "dlt"))
        args = [sys.executable, "-m", MODULE, "--child", "--only", name, "--url", url, "--points", str(points),
                "--days", str(days), "--work", work, *options]
        server0 = _server_cpu(server_pid)
        proc = subprocess.run(args, capture_output=True, text=True, check=False, env=env, cwd=work)
        server = _server_cpu(server_pid) - server0
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["server_cpu_seconds"] = server
    return result


def _selected(only: str | Sequence[str] | None) -> list[str]:
    chosen = [only] if isinstance(only, str) else list(only or VARIANTS)
    return [v for v in VARIANTS if v in chosen]


def _order(variants: list[str], repeat: int) -> list[str]:
    """download and naia alternate ``repeat`` times (download first: it warms nothing naia uses); dlt runs once."""
    return [v for v in ("download", "naia") if v in variants] * repeat + (["dlt"] if "dlt" in variants else [])


def run(points: int, days: int, only: str | Sequence[str] | None = None, repeat: int = 1, depth: int | None = None,
        concurrent: int | None = None) -> tuple[list[dict[str, Any]], int, str]:
    """Run the benchmark: (one result per variant run, the simulator's true sample count, the command line)."""
    variants = _selected(only)
    options = (["--depth", str(depth)] if depth else []) + (["--concurrent-requests", str(concurrent)] if concurrent
                                                            else [])
    command = " ".join([f"naia-backfill bench pi-end-to-end --points {points} --days {days}",
                        *(f"--only {v}" for v in (variants if only else [])),
                        *([f"--repeat {repeat}"] if repeat != 1 else []), *options])
    server = subprocess.Popen([sys.executable, "-m", MODULE, "--serve", "--points", str(points)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    results = []
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"the simulator did not start (got {url!r})")
        for name in _order(variants, repeat):
            results.append(_run_child(name, url, points, days, options, server.pid))
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    return results, truth_count(points, days), command


def _medians(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per variant: the run of median seconds, with each measure replaced by its median over the runs."""
    by: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        by.setdefault(r["variant"], []).append(r)
    out = {}
    for name, runs in by.items():
        med = dict(sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2])
        for key in ("seconds", "cpu_seconds", "server_cpu_seconds", "peak_rss_mb", "import_rss_mb"):
            med[key] = statistics.median(r[key] for r in runs)
        med["runs"] = len(runs)
        out[name] = med
    return out


def _table(med: dict[str, dict[str, Any]]) -> Any:
    from rich.table import Table

    table = Table("variant", "runs", "samples", "seconds", "samples/s", "client CPU s", "server CPU s",
                  "server busy", "peak RSS MB", "RSS after imports MB")
    for name in VARIANTS:
        r = med.get(name)
        if r is None:
            continue
        table.add_row(name, str(r["runs"]), f"{r['samples']:,}", f"{r['seconds']:.2f}",
                      f"{r['samples'] / r['seconds']:,.0f}", f"{r['cpu_seconds']:.2f}",
                      f"{r['server_cpu_seconds']:.2f}",
                      f"{r['server_cpu_seconds'] / r['seconds']:.0%}", f"{r['peak_rss_mb']:.0f}",
                      f"{r['import_rss_mb']:.0f}")
    return table


def _ratios(results: list[dict[str, Any]], med: dict[str, dict[str, Any]]) -> list[str]:
    lines = []
    if "naia" in med:
        n = med["naia"]
        lines.append(f"naia peak RSS {n['peak_rss_mb']:.0f} MB = {n['peak_rss_mb'] - n['import_rss_mb']:+.0f} MB over "
                     f"its {n['import_rss_mb']:.0f} MB after imports (goal: +200 MB at most)")
    if "naia" in med and "download" in med:
        pairs = zip([r for r in results if r["variant"] == "download"], [r for r in results if r["variant"] == "naia"],
                    strict=False)
        each = ", ".join(f"{d['seconds'] / n['seconds']:.2f}" for d, n in pairs)
        d, n = med["download"], med["naia"]
        busy_d, busy_n = d["server_cpu_seconds"] / d["seconds"], n["server_cpu_seconds"] / n["seconds"]
        lines.append(f"naia / download-only: {d['seconds'] / n['seconds']:.2f} of the download-only rate on the same "
                     f"requests (medians; per pair: {each}); simulator busy {busy_d:.0%} of the download-only run, "
                     f"{busy_n:.0%} of naia's (100% = one core, the most its GIL allows)")
    if "naia" in med and "dlt" in med:
        n, d = med["naia"], med["dlt"]
        lines.append(f"naia / dlt: {(n['samples'] / n['seconds']) / (d['samples'] / d['seconds']):.1f}x samples/s, "
                     f"{d['cpu_seconds'] / n['cpu_seconds']:.1f}x less CPU, "
                     f"{d['peak_rss_mb'] / n['peak_rss_mb']:.1f}x less peak RSS")
    return lines


def report(points: int, days: int, only: str | Sequence[str] | None, repeat: int = 1, depth: int | None = None,
           concurrent: int | None = None, json_path: str | None = None) -> int:
    """Run the benchmark and print its table; 1 when a variant failed or lost samples."""
    from rich.console import Console

    console = Console(width=max(Console().width, 150))
    load = os.getloadavg()[0]
    try:
        results, truth, command = run(points, days, only, repeat, depth, concurrent)
    except RuntimeError as e:
        console.print(f"[red]{e}[/]")
        return 1
    console.print(f"[bold]{command}[/]  ({points} points, 60s interval, {days} day(s), {truth:,} samples served; "
                  f"simulator in its own process; load average {load:.1f} before, {os.getloadavg()[0]:.1f} after)")
    med = _medians(results)
    console.print(_table(med))
    for line in _ratios(results, med):
        console.print(line)
    if json_path:
        Path(json_path).write_text(json.dumps({"command": command, "truth": truth, "results": results}, indent=1),
                                   encoding="utf-8")
    wrong = [f"{r['variant']}: {r['samples']:,}" for r in results
             if r["samples"] < truth or (r["variant"] != "download" and r["samples"] != truth)]
    if wrong:
        console.print(f"[red]sample count differs from the simulator's {truth:,}: {', '.join(wrong)}[/]")
        return 1
    return 0


@click.command("pi-end-to-end")
@click.option("--points", type=click.IntRange(min=1), default=4583, show_default=True,
              help="Float32 points at one sample a minute.")
@click.option("--days", type=click.IntRange(min=1), default=1, show_default=True, help="UTC days from 2024-01-01.")
@click.option("--only", type=click.Choice(VARIANTS), multiple=True, help="Run only this variant (repeatable).")
@click.option("--repeat", type=click.IntRange(min=1), default=1, show_default=True,
              help="Runs of naia and download, alternating (dlt runs once); medians are reported.")
@click.option("--depth", type=click.IntRange(1, 16),
              help="pipeline_depth of naia and download (default: the setting's default).")
@click.option("--concurrent-requests", "concurrent", type=click.IntRange(1, 16),
              help="concurrent_requests of naia and download (default: the setting's default).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write every run's figures here.")
@click.option("--child", is_flag=True, hidden=True)
@click.option("--serve", is_flag=True, hidden=True)
@click.option("--url", hidden=True)
@click.option("--work", hidden=True)
def command(points: int, days: int, only: tuple[str, ...], repeat: int, depth: int | None, concurrent: int | None,
            json_path: str | None, child: bool, serve: bool, url: str | None, work: str | None) -> None:
    """PI Web API -> Parquet end to end: naia against a download-only client on the same requests, and dlt."""
    if serve:
        sys.exit(_serve(points))
    if child:
        print(json.dumps(_child(only[0], url, points, days, work, _pipeline(depth, concurrent))))
        return
    sys.exit(report(points, days, only, repeat, depth, concurrent, json_path))


if __name__ == "__main__":
    command()
