"""Synthetic source -> Parquet day (``bench synthetic``): naia's streamed sink against a whole-day pandas DataFrame,
and the sink alone against pyarrow's ParquetWriter on the same ready batches. Each variant in its own process."""

from __future__ import annotations

from naia_backfill.dev.benchmarks import synthetic_parquet as bench
from naia_backfill.dev.benchmarks.measures.registry import Scale
from naia_backfill.dev.benchmarks.measures.rows import Goal, Row

SINK_GOAL = Goal("<=", 1.10, label="≈ 1.0")


def run(scale: Scale) -> list[Row]:
    """One day at 4,583 points at 1/min (6.6M samples); the sink-alone pair holds the day in memory, so it stays
    at that size when ``full`` streams 45,830 points (66M)."""
    points = int(scale.pick(50, 4583, 45830))
    alone = min(points, 4583)
    streamed, pandas = (bench.run_variant(v, points) for v in bench.VARIANTS)
    sink, writer = (bench.run_variant(v, alone) for v in bench.SINK_ALONE)
    return [
        Row(f"synthetic -> Parquet day, {streamed['samples']:,} samples (vs pandas whole day)", "samples/s",
            [streamed["samples"] / streamed["seconds"]], "pandas", [pandas["samples"] / pandas["seconds"]],
            peak_rss_mb=[streamed["peak_rss_mb"]],
            note=f"pandas peak RSS {pandas['peak_rss_mb']:.0f} MB"),
        Row(f"sink alone, {sink['samples']:,} ready samples (vs pyarrow ParquetWriter, same batches)", "CPU s",
            [sink["cpu_seconds"]], "ParquetWriter", [writer["cpu_seconds"]], SINK_GOAL,
            peak_rss_mb=[sink["peak_rss_mb"]]),
    ]
