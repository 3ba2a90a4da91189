"""PostgreSQL day readers: ``bench pg-readers`` on the ``samples`` table shape with ``--json`` (tables
``bench_pg.samples_<rows>`` are generated server-side when missing).

- ``readers``: the ADBC COPY reader into Parquet against the same reader discarding its batches (the limit),
  alternating ``repeat`` times;
- ``dlt``: the ADBC COPY reader against dlt's ``sql_database`` source, both into Parquet.
"""

from __future__ import annotations

from typing import Any

from naia_backfill.dev.benchmarks.measures.child import MeasureError, run_benchmark
from naia_backfill.dev.benchmarks.measures.registry import Scale
from naia_backfill.dev.benchmarks.measures.rows import Goal, Row

PG_READERS = "naia_backfill.dev.benchmarks.pg_readers"
READER = "adbc-copy"


def _runs(scale: Scale, variants: tuple[str, ...], repeat: int) -> tuple[dict[tuple[str, str], list[dict]], int]:
    """Per (variant, sink), the benchmark's runs; and the rows of the day."""
    rows = int(scale.pick(10_000, 1_000_000, 10_000_000))  # type: ignore[call-overload]
    args = ["--shape", "samples", "--rows", str(rows), "--sink", "parquet", "--cancel-after", "0", "--no-types",
            "--limit", READER, "--repeat", str(repeat), *(a for v in variants for a in ("--variant", v))]
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for run in run_benchmark(PG_READERS, args, scale.timeout)["runs"]:
        if run["error"]:
            raise MeasureError(f"{run['variant']} -> {run['sink']}: {run['error']}")
        out.setdefault((run["variant"], run["sink"]), []).append(run)
    return out, rows


def _rates(runs: list[dict[str, Any]]) -> list[float]:
    return [r["result"]["rows"] / r["result"]["seconds"] for r in runs]


def _peaks(runs: list[dict[str, Any]]) -> list[float]:
    return [r["peak_rss"] / 2**20 for r in runs]


def readers(scale: Scale) -> list[Row]:
    runs, rows = _runs(scale, (READER,), scale.repeat)
    parquet, discard = runs[(READER, "parquet")], runs[(READER, "discard")]
    return [Row(f"PostgreSQL day -> Parquet, ADBC COPY reader, {rows:,} rows (vs the same reader discarding rows)",
                "rows/s", _rates(parquet), "discarding", _rates(discard), peak_rss_mb=_peaks(parquet),
                note=f"client CPU {parquet[0]['cpu_seconds']:.1f} s")]


def dlt(scale: Scale) -> list[Row]:
    runs, rows = _runs(scale, (READER, "dlt"), 1)
    adbc, peer = runs[(READER, "parquet")], runs[("dlt", "parquet")]
    return [Row(f"PostgreSQL day -> Parquet, {rows:,} rows: ADBC COPY reader (vs dlt's sql_database)", "rows/s",
                _rates(adbc), "dlt", _rates(peer), Goal(">=", 5.0), peak_rss_mb=_peaks(adbc),
                note=f"dlt peak RSS {max(_peaks(peer)):.0f} MB")]
