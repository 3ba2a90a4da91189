"""S3 lake: ``bench s3-lake`` with ``--json``: one synthetic day copied into the local lake and into S3 (multipart
upload + size/ETag verification), the day's checks (``validate``'s re-read) over each, and the DuckDB table mode,
each step in its own process; with ``--repeat`` the steps run again in the same order, so runs pair up."""

from __future__ import annotations

from typing import Any

from naia_backfill.dev.benchmarks.measures.child import run_benchmark
from naia_backfill.dev.benchmarks.measures.registry import Scale
from naia_backfill.dev.benchmarks.measures.rows import Row

S3_LAKE = "naia_backfill.dev.benchmarks.s3_lake"


def _rates(runs: list[dict[str, Any]]) -> list[float]:
    return [r["samples"] / r["seconds"] for r in runs]


def _peaks(runs: list[dict[str, Any]]) -> list[float]:
    return [r["peak_rss_mb"] for r in runs]


def run(scale: Scale) -> list[Row]:
    points = int(scale.pick(50, 458, 4583))  # type: ignore[call-overload]
    runs = run_benchmark(S3_LAKE, ["--points", str(points), "--repeat", str(scale.repeat)], scale.timeout)["runs"]
    samples = runs["copy-s3"][0]["samples"]
    local, s3 = runs["copy-local"], runs["copy-s3"]
    return [
        Row(f"a day into the S3 lake (upload + verify), {samples:,} samples (vs the local lake)", "samples/s",
            _rates(s3), "local lake", _rates(local), peak_rss_mb=_peaks(s3),
            note=f"object {s3[0]['bytes'] / 1e6:.1f} MB"),
        Row("the day's checks (validate) over S3 (vs over the local lake)", "samples/s", _rates(runs["checks-s3"]),
            "local lake", _rates(runs["checks-local"]), peak_rss_mb=_peaks(runs["checks-s3"])),
        Row("the day into DuckDB, table mode (vs the local Parquet lake)", "samples/s", _rates(runs["duckdb-table"]),
            "local lake", _rates(local), peak_rss_mb=_peaks(runs["duckdb-table"])),
    ]
