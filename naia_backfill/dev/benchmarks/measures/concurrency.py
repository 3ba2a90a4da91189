"""Two point sets at once: ``bench concurrency`` with ``--json``: on the PostgreSQL-backed instance (a database of
its own at ``NAIA_PG_DSN``, dropped afterwards), a synthetic and a PI Web API point set backfilled one after the
other, then together, the order alternating each repeat; wall time from the first launch to the last day."""

from __future__ import annotations

from naia_backfill.dev.benchmarks.measures.child import run_benchmark
from naia_backfill.dev.benchmarks.measures.registry import Scale
from naia_backfill.dev.benchmarks.measures.rows import Row

CONCURRENCY = "naia_backfill.dev.benchmarks.concurrency"


def run(scale: Scale) -> list[Row]:
    days, points = scale.pick((2, 100), (4, 1000), (4, 1000))  # type: ignore[misc]
    repeat = max(scale.repeat, int(scale.pick(1, 1, 2)))  # type: ignore[call-overload]
    args = ["--days", str(days), "--chunk-days", "2", "--repeat", str(repeat), "--synthetic-points", str(points)]
    phases = run_benchmark(CONCURRENCY, args, scale.timeout)["phases"]
    seq = [p for p in phases if p["mode"] == "sequential"]
    conc = [p for p in phases if p["mode"] == "concurrent"]
    return [Row(f"two point sets, {days} days, {conc[0]['samples']:,} samples: at once (vs one after the other)", "s",
                [p["wall_s"] for p in conc], "sequential", [p["wall_s"] for p in seq],
                note=f"steps at once {max(p['step_s'] / p['wall_s'] for p in conc):.2f}; CPU busy "
                     f"{max(p['cpu_busy'] for p in conc):.0%}")]
