"""ACE IoT: ``bench ace-end-to-end`` with ``--json``.

- ``run``: the connector into a Parquet lake against dlt's REST API source, each backfilling the same day of a
  share of seed 002's site from the simulator (one simulator process each; both must land the simulator's count);
- ``rate``: the connector at 50 requests a minute against a simulator enforcing the same limit, from the
  simulator's request log: requests per whole minute over those allowed, and the most in any sliding minute.
"""

from __future__ import annotations

from typing import Any

from naia_backfill.dev.benchmarks.measures.child import run_benchmark
from naia_backfill.dev.benchmarks.measures.registry import Scale
from naia_backfill.dev.benchmarks.measures.rows import Goal, Row

ACE = "naia_backfill.dev.benchmarks.ace_end_to_end"


def _throughput(variant: str, fraction: float, scale: Scale) -> dict[str, Any]:
    r = run_benchmark(ACE, ["--fraction", f"{fraction:g}", "--only", variant], scale.timeout)
    return r["throughput"][0]


def run(scale: Scale) -> list[Row]:
    fraction = float(scale.pick(0.01, 0.1, 1.0))  # type: ignore[arg-type]
    n, d = _throughput("naia", fraction, scale), _throughput("dlt", fraction, scale)
    return [Row(f"ACE IoT -> Parquet, {n['samples']:,} samples of {n['truth']['configured_points']:,} points "
                "(vs dlt's REST API source)", "samples/s", [n["samples"] / n["seconds"]], "dlt",
                [d["samples"] / d["seconds"]], Goal(">=", 10.0), peak_rss_mb=[n["peak_rss_mb"]],
                note=f"+{n['peak_rss_mb'] - n['import_rss_mb']:.0f} MB over baseline; dlt "
                     f"{d['cpu_seconds'] / n['cpu_seconds']:.1f}x the CPU, peak RSS {d['peak_rss_mb']:.0f} MB")]


def rate(scale: Scale) -> list[Row]:
    seconds = float(scale.pick(70, 130, 130))  # type: ignore[arg-type]
    r = run_benchmark(ACE, ["--only", "rate", "--rate-seconds", f"{seconds:g}"], scale.timeout)["rate"]
    window = f"{r['per_seconds']:g} s"
    return [
        Row(f"ACE IoT at {r['allowed']}/{window} for {seconds:g} s: requests per whole {window} / allowed",
            "achieved/allowed", [r["achieved"]], goal=Goal(">=", 0.95, on="naia"),
            note=f"{r['requests']} requests; per whole {window}: {r['periods']}"),
        Row(f"ACE IoT: most requests in any sliding {window} (vs allowed)", "requests", [r["sliding_max"]],
            "allowed", [r["allowed"]], Goal("<=", 1.0), note=f"429 answers: {r['limited_429']}"),
    ]
