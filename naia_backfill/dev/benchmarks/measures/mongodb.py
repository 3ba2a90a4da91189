"""MongoDB sink: ``bench mongodb --phases sink,insert_many`` with ``--json``: one synthetic day through the sink as
runs use it, against pymongo ``insert_many`` of the same documents built before the clock starts, into the server
at ``NAIA_MONGODB_URI`` (each phase in a database of its own, dropped afterwards)."""

from __future__ import annotations

from naia_backfill.dev.benchmarks.measures.child import run_benchmark
from naia_backfill.dev.benchmarks.measures.registry import Scale
from naia_backfill.dev.benchmarks.measures.rows import Row

MONGODB = "naia_backfill.dev.benchmarks.mongodb"


def run(scale: Scale) -> list[Row]:
    points = int(scale.pick(20, 100, 695))  # type: ignore[call-overload]
    phases = run_benchmark(MONGODB, ["--points", str(points), "--phases", "sink,insert_many"], scale.timeout)["phases"]
    sink, many = phases["sink"], phases["insert_many"]
    return [Row(f"MongoDB sink, {sink['rows']:,} documents (vs insert_many of pre-built documents)", "docs/s",
                [sink["rows"] / sink["seconds"]], "insert_many", [many["rows"] / many["seconds"]],
                peak_rss_mb=[sink["peak_rss_mb"]],
                note=f"server CPU {sink['server_cpu']:.1f} s (sink), {many['server_cpu']:.1f} s (insert_many)")]
