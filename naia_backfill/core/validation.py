"""Data-quality checks of the days a point set left in the lake, computed by DuckDB over each day's objects.

Plain Python, no Dagster: the asset checks (``lib/checks.py``) and ``naia-backfill validate`` both use it.
A day is every Parquet object in its folder (``all.parquet`` and any ``points-*.parquet``), read together.

- ``samples_present`` (ERROR): the day has an object. An object without rows is the source saying "no data"
  and only warns; so do expected points without events that day.
- ``no_duplicates`` (ERROR): no (point, ts, ordinal) twice, ordinal being an event's position among the
  events of its (point, ts) in its object. A key twice means a point is in two objects of the day; a
  point whose time goes back inside one object was written twice into it.
- ``gaps`` (WARN): no gap between a point's events (or the day's edges) longer than ``checks.max_gap_seconds``,
  else 3x the synthetic source's interval; other sources without a setting are not checked.
- ``value_ranges`` (WARN): values of the points matching each ``checks.ranges`` rule inside its bounds.

A ``shape: rows`` day (a table's own columns) has ``samples_present`` (its object and row count) and, with the
source's ``key_columns``, ``no_duplicates`` (no key value on two rows); gaps and value ranges do not apply.

DuckDB reads ``ts`` as TIMESTAMPTZ, i.e. in microseconds: events less than 1 us apart share a (point, ts),
which the ordinal keeps apart, so duplicates are still found exactly.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

import duckdb
import pyarrow as pa

from naia_backfill.settings import PointSet, ValueRange
from naia_backfill.sinks.layout import Layout
from naia_backfill.sinks.parquet_columns import canonical_select, is_canonical
from naia_backfill.core.check_outcomes import (
    CHECK_NAMES,
    ERROR,
    SEVERITY,
    CheckOutcome,
    DayReport,
    day_ns,
    duplicates_outcome,
    gap_threshold_seconds,
    gaps_outcome,
    key_columns,
    key_duplicates_outcome,
    ranges_outcome,
    rows_present,
    rows_shaped,
    samples_present,
)
from naia_backfill.core.day_objects import connect, readable
from naia_backfill.sinks.lake import Lake

def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    return con.execute(sql, params).to_arrow_table().to_pylist()


_OBJECTS_SQL = """
WITH r AS (
    SELECT filename, point, epoch_ns(ts) AS t,
           lag(epoch_ns(ts)) OVER (PARTITION BY filename, point ORDER BY file_row_number) AS prev
    FROM read_parquet(?, filename = true, file_row_number = true)
)
SELECT filename, point, count(*) AS samples, count(*) FILTER (WHERE t < prev) AS time_reversals
FROM r GROUP BY filename, point
"""

# Only for points found in more than one object: the exact (point, ts, ordinal) keys they share.
_DUPLICATE_KEYS_SQL = """
WITH s AS (
    SELECT point, ts, row_number() OVER (PARTITION BY filename, point, ts ORDER BY file_row_number) AS ordinal
    FROM read_parquet(?, filename = true, file_row_number = true) WHERE point IN (SELECT unnest(?::VARCHAR[]))
)
SELECT point, sum(n - 1)::BIGINT AS duplicate_rows
FROM (SELECT point, count(*) AS n FROM s GROUP BY point, ts, ordinal HAVING count(*) > 1) GROUP BY point
"""


def _no_duplicates(con: duckdb.DuckDBPyConnection, paths: dict[str, str], per_object: list[dict[str, Any]]) -> CheckOutcome:
    objects: dict[str, list[str]] = {}
    reversals: dict[str, int] = {}
    for r in per_object:
        objects.setdefault(r["point"], []).append(paths.get(r["filename"], r["filename"]))
        if r["time_reversals"]:
            reversals[r["point"]] = reversals.get(r["point"], 0) + r["time_reversals"]
    shared = sorted(p for p, objs in objects.items() if len(objs) > 1)
    dup = {r["point"]: r["duplicate_rows"] for r in _rows(con, _DUPLICATE_KEYS_SQL, [list(paths), shared])} if shared else {}
    return duplicates_outcome(dup, reversals, objects)


# Gaps between consecutive events of a point, the day's start and end counting as events.
_GAPS_SQL = """
WITH r AS (
    SELECT point, epoch_ns(ts) AS t,
           coalesce(lag(epoch_ns(ts)) OVER (PARTITION BY point ORDER BY epoch_ns(ts)), ?::BIGINT) AS prev
    FROM read_parquet(?)
),
g AS (
    SELECT point, t - prev AS d, prev AS gap_from FROM r
    UNION ALL SELECT point, ?::BIGINT - max(t), max(t) FROM r GROUP BY point
)
SELECT point, count(*) FILTER (WHERE d > ?) AS gaps, max(d) AS largest_ns, arg_max(gap_from, d) AS largest_from
FROM g GROUP BY point HAVING max(d) > ? ORDER BY largest_ns DESC, point
"""


def _gaps(con: duckdb.DuckDBPyConnection, paths: dict[str, str], day: dt.date, threshold: float | None) -> CheckOutcome:
    if threshold is None:
        return gaps_outcome([], None)
    start, limit = day_ns(day), round(threshold * 1e9)
    return gaps_outcome(_rows(con, _GAPS_SQL, [start, list(paths), start + 86_400 * 10**9, limit, limit]), threshold)


def _value_ranges(con: duckdb.DuckDBPyConnection, paths: dict[str, str], rules: Sequence[ValueRange]) -> CheckOutcome:
    if not rules:
        return ranges_outcome([], rules)
    values = ", ".join("(?, ?, ?::DOUBLE, ?::DOUBLE)" for _ in rules)
    params: list[Any] = [x for i, r in enumerate(rules) for x in (i, r.points, r.min, r.max)]
    sql = f"""
    WITH rules(i, pattern, lo, hi) AS (VALUES {values}),
    ev AS (SELECT point, value, good FROM read_parquet(?) WHERE value IS NOT NULL),
    pairs AS (SELECT r.i, p.point, r.lo, r.hi FROM (SELECT DISTINCT point FROM ev) p
              JOIN rules r ON upper(p.point) GLOB upper(r.pattern))
    SELECT i, point, count(*) AS n_values,
           count(*) FILTER (WHERE value < lo OR value > hi) AS violations,
           count(*) FILTER (WHERE (value < lo OR value > hi) AND NOT good) AS not_good,
           min(value) AS min, max(value) AS max
    FROM ev JOIN pairs USING (point) GROUP BY i, point ORDER BY i, violations DESC, point
    """
    return ranges_outcome(_rows(con, sql, [*params, list(paths)]), rules)


def _key_duplicates(con: duckdb.DuckDBPyConnection, paths: list[str], keys: Sequence[str]) -> CheckOutcome:
    """Rows of a ``shape: rows`` day sharing their ``keys`` values (column names checked against the table's
    catalog when the source started, quoted here)."""
    columns = ", ".join('"' + k.replace('"', '""') + '"' for k in keys)
    sql = (f"SELECT coalesce(sum(n - 1), 0)::BIGINT, count(*) FROM (SELECT count(*) AS n FROM "
           f"read_parquet(?, hive_partitioning = false) GROUP BY {columns} HAVING count(*) > 1)")
    duplicate_rows, duplicated_keys = con.execute(sql, [paths]).fetchone()
    return key_duplicates_outcome(keys, duplicate_rows, duplicated_keys)


def _check_rows_day(
    con: duckdb.DuckDBPyConnection, lake: Lake, point_set: PointSet, day: dt.date, keys: list[str]
) -> DayReport:
    """A ``shape: rows`` day (a table's own columns): its object and rows, and no key twice with key_columns;
    gaps and value ranges need points and times, which such a table does not have."""
    objects = [lake.uri(k) for k in keys]
    key = key_columns(point_set)
    rows, duplicates = 0, None
    if keys:
        try:
            with readable(lake, keys) as paths:
                rows = con.execute("SELECT count(*) FROM read_parquet(?, hive_partitioning = false)",
                                   [list(paths)]).fetchone()[0]
                duplicates = _key_duplicates(con, list(paths), key) if key else None
            present = rows_present(objects, rows)
        except (duckdb.Error, OSError) as e:
            present = CheckOutcome("samples_present", False, ERROR, f"the day's objects cannot be read: {e}",
                                   {"objects": len(keys)})
    else:
        present = rows_present(objects, 0)
    why = "not checked: no data" if not keys else "not checked: set source.key_columns"
    if duplicates is None:
        duplicates = CheckOutcome("no_duplicates", True, ERROR, why, skipped=True)
    shape = "not checked: a table's own rows (shape: rows) have no points and times"
    rest = [CheckOutcome(n, True, SEVERITY[n], shape, skipped=True) for n in ("gaps", "value_ranges")]
    counts = pa.table({"point": pa.array([point_set.source.table] if rows else [], pa.string()),
                       "samples": pa.array([rows] if rows else [], pa.int64())})
    return DayReport(point_set.name, day, objects, rows, counts, {c.name: c for c in [present, duplicates, *rest]})


def _check_day(
    con: duckdb.DuckDBPyConnection, lake: Lake, point_set: PointSet, day: dt.date, keys: list[str],
    expected: Sequence[str] | None,
) -> DayReport:
    if rows_shaped(point_set):
        return _check_rows_day(con, lake, point_set, day, keys)
    objects = [lake.uri(k) for k in keys]
    empty = pa.table({"point": pa.array([], pa.string()), "samples": pa.array([], pa.int64())})

    def report(samples: int, counts: pa.Table, checks: list[CheckOutcome]) -> DayReport:
        return DayReport(point_set.name, day, objects, samples, counts, {c.name: c for c in checks})

    if not keys:
        none = [CheckOutcome(n, True, SEVERITY[n], "not checked: no data", skipped=True) for n in CHECK_NAMES[1:]]
        return report(0, empty, [samples_present([], 0, set(), expected), *none])
    try:
        with readable(lake, keys, _canonical_select(point_set)) as paths:
            per_object = _rows(con, _OBJECTS_SQL, [list(paths)])
            per_point: dict[str, int] = {}
            for r in per_object:
                per_point[r["point"]] = per_point.get(r["point"], 0) + r["samples"]
            counts = pa.table({"point": pa.array(sorted(per_point), pa.string()),
                               "samples": pa.array([per_point[p] for p in sorted(per_point)], pa.int64())})
            samples = sum(per_point.values())
            checks = [
                samples_present(objects, samples, set(per_point), expected),
                _no_duplicates(con, paths, per_object),
                _gaps(con, paths, day, gap_threshold_seconds(point_set)),
                _value_ranges(con, paths, point_set.checks.ranges),
            ]
    except (duckdb.Error, OSError) as e:
        broken = CheckOutcome("samples_present", False, ERROR, f"the day's objects cannot be read: {e}", {"objects": len(keys)})
        rest = [CheckOutcome(n, True, SEVERITY[n], "not checked: unreadable", skipped=True) for n in CHECK_NAMES[1:]]
        return report(0, empty, [broken, *rest])
    return report(samples, counts, checks)


def _canonical_select(point_set: PointSet) -> str | None:
    """How to read the point set's objects as canonical columns when its sink maps them (None: as written)."""
    sink = point_set.sink("parquet")
    return None if sink is None or is_canonical(sink) else canonical_select(sink)


def validate_day(
    lake: Lake, point_set: PointSet, day: dt.date, expected_points: list[str] | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> DayReport:
    """Check one day of ``point_set`` in ``lake``; ``expected_points`` (if known) should all have events."""
    lay = Layout.of(point_set)
    keys = [k for k in lake.list_keys(lay.folder(day), recursive=False) if lay.day_of(k) == day]
    with contextlib.nullcontext(con) if con is not None else connect() as c:
        return _check_day(c, lake, point_set, day, keys, expected_points)


def iter_range(
    lake: Lake, point_set: PointSet, days: Sequence[dt.date], expected_points: list[str] | None = None
) -> Iterator[DayReport]:
    """Check each of ``days`` in order, one report at a time (the lake is listed once)."""
    listing = lake.day_keys(Layout.of(point_set))
    with connect() as con:
        for day in days:
            yield _check_day(con, lake, point_set, day, listing.get(day, []), expected_points)


def validate_range(
    lake: Lake, point_set: PointSet, days: Sequence[dt.date], expected_points: list[str] | None = None
) -> list[DayReport]:
    """A report for each of ``days``."""
    return list(iter_range(lake, point_set, days, expected_points))
