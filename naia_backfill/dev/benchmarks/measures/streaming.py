"""Kafka and QuestDB (issue 15, goal 6): ``bench consumer`` (the consumer alternating with its limit, a pipelined
``Sender.dataframe`` of the same rows) and ``bench streaming --phases produce,direct`` (the producer, and the
direct QuestDB sink) on the same synthetic days, with ``--json``. The direct sink is compared with the limit of
the consumer's run: both write the same rows into QuestDB.
"""

from __future__ import annotations

from naia_backfill.dev.benchmarks.measures.child import run_benchmark
from naia_backfill.dev.benchmarks.measures.registry import Scale
from naia_backfill.dev.benchmarks.measures.rows import Goal, Row

CONSUMER = "naia_backfill.dev.benchmarks.consumer"
STREAMING = "naia_backfill.dev.benchmarks.streaming"
LIMIT = "Sender.dataframe"


def run(scale: Scale) -> list[Row]:
    points, days = scale.pick((50, 1), (1000, 1), (1000, 3))  # type: ignore[misc]
    size = ["--points", str(points), "--days", str(days)]
    repeat = max(scale.repeat, int(scale.pick(1, 2, 3)))  # type: ignore[call-overload]
    c = run_benchmark(CONSUMER, [*size, "--repeat", str(repeat)], scale.timeout)
    s = run_benchmark(STREAMING, [*size, "--phases", "produce,direct"], scale.timeout)["phases"]
    consumer, limit = c["results"]["consumer"], c["results"]["limit"]
    limits = [r["rate"] for r in limit]
    produce, direct = s["produce"], s["direct"]
    return [
        Row(f"Kafka producer, {produce['rows']:,} rows", "rows/s", [produce["rate"]],
            peak_rss_mb=[produce["peak_rss_mb"]], note=f"Kafka broker CPU {produce['kafka_cpu']:.1f} s"),
        Row(f"consumer Kafka -> QuestDB, {c['rows']:,} rows (vs pipelined {LIMIT}, same rows)", "rows/s",
            [r["rate"] for r in consumer], LIMIT, limits, Goal(">=", c["goal"]),
            peak_rss_mb=[r["peak_rss_mb"] for r in consumer],
            note=f"limit peak RSS {max(r['peak_rss_mb'] for r in limit):.0f} MB"),
        Row(f"direct QuestDB sink, {direct['rows']:,} rows (vs the same limit)", "rows/s", [direct["rate"]], LIMIT,
            limits, Goal(">=", 0.9, label="≈ 1.0"), peak_rss_mb=[direct["peak_rss_mb"]],
            note=f"{direct['wal_rate']:,.0f} rows/s until the WAL is applied"),
    ]
