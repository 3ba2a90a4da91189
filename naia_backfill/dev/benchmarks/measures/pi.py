"""PI Web API (issue 15, goals 4 and 5, and the dlt peer): ``bench pi-parse`` and ``bench pi-end-to-end`` run as
they stand, with ``--json``; their figures become rows.

- ``parse``: response bytes -> Arrow against msgspec's decode alone, samples per CPU-second on one pinned core,
  the runs alternating (one row per run, so the ratio is the median of the per-run ratios);
- ``fetch``: the connector end to end over HTTP against a client that only downloads the same requests,
  alternating, and the connector's peak RSS over its baseline;
- ``dlt``: the connector against dlt's REST API source on the same simulator.
"""

from __future__ import annotations

from typing import Any

from naia_backfill.dev.benchmarks.measures.child import run_benchmark
from naia_backfill.dev.benchmarks.measures.registry import Scale
from naia_backfill.dev.benchmarks.measures.rows import Goal, Row

PARSE = "naia_backfill.dev.benchmarks.pi_parse"
END_TO_END = "naia_backfill.dev.benchmarks.pi_end_to_end"
MEMORY = Goal("<=", 200.0, on="naia")


def parse(scale: Scale) -> list[Row]:
    streams, values = scale.pick((10, 2_000), (100, 10_000), (100, 10_000))  # type: ignore[misc]
    repeat = max(scale.repeat, int(scale.pick(3, 5, 7)))  # type: ignore[call-overload]
    r = run_benchmark(PARSE, ["--streams", str(streams), "--values", str(values), "--repeat", str(repeat)],
                      scale.timeout)
    naia, ref = r["runs"]["naia"], r["runs"]["msgspec decode"]
    return [Row(f"PI response -> Arrow, {naia['samples']:,} samples (vs msgspec decode alone)", "samples/CPU-s",
                _per(naia["samples"], naia["cpus"]), "msgspec decode", _per(ref["samples"], ref["cpus"]),
                Goal(">=", 0.6), peak_rss_mb=[r["peak_rss_mb"]],
                note=f"{r['bytes'] / 1e6:.0f} MB of JSON; pinned to one core: {r['pinned']}")]


def _per(samples: int, seconds: list[float]) -> list[float]:
    return [samples / s for s in seconds if s > 0]


def _points(scale: Scale) -> int:
    return int(scale.pick(50, 458, 4583))  # type: ignore[call-overload]


def _end_to_end(scale: Scale, variants: tuple[str, str], repeat: int) -> tuple[dict[str, list[dict]], int]:
    args = ["--points", str(_points(scale)), "--days", "1", "--repeat", str(repeat)]
    r = run_benchmark(END_TO_END, [*args, *(a for v in variants for a in ("--only", v))], scale.timeout)
    by: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    for run in r["results"]:
        by[run["variant"]].append(run)
    return by, r["truth"]


def _rates(runs: list[dict[str, Any]]) -> list[float]:
    return [r["samples"] / r["seconds"] for r in runs]


def fetch(scale: Scale) -> list[Row]:
    by, truth = _end_to_end(scale, ("naia", "download"), max(scale.repeat, int(scale.pick(1, 2, 3))))  # type: ignore[call-overload]
    naia, download = by["naia"], by["download"]
    busy = max(r["server_cpu_seconds"] / r["seconds"] for r in download)
    return [
        Row(f"PI Web API -> Parquet over HTTP, {truth:,} samples (vs a download-only client, same requests)",
            "samples/s", _rates(naia), "download only", _rates(download), Goal(">=", 0.7),
            peak_rss_mb=[r["peak_rss_mb"] for r in naia],
            note=f"simulator busy up to {busy:.0%} of one core in the download-only runs"),
        Row("PI fetch: peak RSS over the baseline after imports", "MB",
            [r["peak_rss_mb"] - r["import_rss_mb"] for r in naia], goal=MEMORY,
            peak_rss_mb=[r["peak_rss_mb"] for r in naia], note=f"{_points(scale):,} points, one day"),
    ]


def dlt(scale: Scale) -> list[Row]:
    by, truth = _end_to_end(scale, ("naia", "dlt"), 1)
    n, d = by["naia"][0], by["dlt"][0]
    return [Row(f"PI Web API -> Parquet, {truth:,} samples (vs dlt's REST API source)", "samples/s", _rates([n]),
                "dlt", _rates([d]), Goal(">=", 10.0), peak_rss_mb=[n["peak_rss_mb"]],
                note=f"dlt: {d['cpu_seconds'] / n['cpu_seconds']:.1f}x the CPU, peak RSS {d['peak_rss_mb']:.0f} MB")]
