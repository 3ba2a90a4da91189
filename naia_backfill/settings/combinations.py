"""Which sinks a point set may combine, decided from the file alone (the lake and the environment are checked
before a run by :func:`naia_backfill.sinks.preflight.check_sinks`). A combination that cannot work is refused
when the point set loads, never found after another sink has written a day."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: Sinks that store the canonical time-series columns only (sources that copy a table's own rows can't feed them).
SAMPLE_ONLY = ("kafka", "questdb", "mongodb")


def sink_combination_problems(sinks: Sequence[Any], source: Any) -> list[str]:
    """Why the sinks cannot work together for this source, one sentence each saying what to change."""
    kinds = [s.kind for s in sinks]
    problems = []
    dupes = sorted({k for k in kinds if kinds.count(k) > 1})
    if dupes:
        problems.append(f"sink listed twice: {', '.join(dupes)}")
    for s in sinks:
        if s.kind == "duckdb" and getattr(s, "mode", "view") == "view" and "parquet" not in kinds:
            problems.append(
                "the duckdb sink in view mode queries the Parquet lake: add the parquet sink, "
                "or set mode: table on the duckdb sink to copy the rows into DuckDB instead"
            )
    if getattr(source, "shape", None) == "rows":
        refused = [k for k in kinds if k in SAMPLE_ONLY]
        if refused:
            problems.append(
                f"shape: rows copies the table's own columns, which only the parquet and duckdb sinks store: "
                f"remove {', '.join(refused)} (or use shape: samples)"
            )
        mapped = [s for s in sinks if s.kind == "parquet" and (s.columns is not None or s.constant_columns
                                                                or s.timestamp_unit != "ns" or s.timestamp_as != "timestamp")]
        if mapped:
            problems.append("shape: rows writes the table's own columns: remove the parquet sink's columns, "
                            "constant_columns, timestamp_unit and timestamp_as (they map sample columns)")
    return problems
