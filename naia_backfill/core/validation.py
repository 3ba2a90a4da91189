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

DuckDB reads ``ts`` as TIMESTAMPTZ, i.e. in microseconds: events less than 1 us apart share a (point, ts),
which the ordinal keeps apart, so duplicates are still found exactly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

import duckdb
import pyarrow as pa

from naia_backfill.settings import PointSet, SyntheticSource, ValueRange
from naia_backfill.sinks.layout import Layout
from naia_backfill.sinks.parquet_columns import canonical_select, is_canonical
from naia_backfill.core.day_objects import connect, readable
from naia_backfill.sinks.lake import Lake

ERROR, WARN = "ERROR", "WARN"
SEVERITY = {"samples_present": ERROR, "no_duplicates": ERROR, "gaps": WARN, "value_ranges": WARN}
CHECK_NAMES = tuple(SEVERITY)
TOP = 5  # points listed per finding
LISTED = 20  # missing points listed by name


@dataclasses.dataclass(frozen=True)
class CheckOutcome:
    """One check of one day. ``severity`` is what a failure weighs; ``details`` is JSON-able."""

    name: str
    passed: bool
    severity: str
    summary: str
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
    skipped: bool = False


@dataclasses.dataclass
class DayReport:
    point_set: str
    day: dt.date
    objects: list[str]
    samples: int
    point_samples: pa.Table  # columns point, samples: events per point that day
    checks: dict[str, CheckOutcome]

    @property
    def points(self) -> int:
        return self.point_samples.num_rows

    @property
    def errors(self) -> list[CheckOutcome]:
        return [c for c in self.checks.values() if not c.passed and c.severity == ERROR]

    @property
    def warnings(self) -> list[CheckOutcome]:
        return [c for c in self.checks.values() if not c.passed and c.severity == WARN]

    @property
    def status(self) -> str:
        return "fail" if self.errors else "warn" if self.warnings else "pass"


def gap_threshold_seconds(point_set: PointSet) -> float | None:
    """Largest allowed gap: the point set's setting, else 3x a known sample interval, else None."""
    if point_set.checks.max_gap_seconds is not None:
        return point_set.checks.max_gap_seconds
    if isinstance(point_set.source, SyntheticSource):
        return 3 * point_set.source.interval_seconds
    return None


def describe_range(rule: ValueRange) -> str:
    lo = "-inf" if rule.min is None else f"{rule.min:g}"
    hi = "inf" if rule.max is None else f"{rule.max:g}"
    return f"{rule.points} in [{lo}, {hi}]"


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    return con.execute(sql, params).to_arrow_table().to_pylist()


def _ns(day: dt.date) -> int:
    return int(dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC).timestamp()) * 1_000_000_000


def _iso(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _samples_present(
    objects: list[str], samples: int, seen: set[str], expected: Sequence[str] | None
) -> CheckOutcome:
    name = "samples_present"
    if not objects:
        return CheckOutcome(name, False, ERROR, "no object in the lake for this day", {"objects": 0})
    missing = [p for p in expected if p not in seen] if expected is not None else []
    details: dict[str, Any] = {"objects": len(objects), "samples": samples, "points": len(seen)}
    if expected is not None:
        details |= {"expected_points": len(expected), "missing_points": len(missing), "missing": missing[:LISTED]}
        details["unexpected_points"] = len(seen - set(expected))
    if samples == 0:
        return CheckOutcome(name, False, WARN, "the day's object holds no rows (the source had no data)", details)
    if missing:
        shown = ", ".join(missing[:LISTED]) + (f" and {len(missing) - LISTED} more" if len(missing) > LISTED else "")
        return CheckOutcome(name, False, WARN, f"{len(missing)} expected point(s) without events: {shown}", details)
    return CheckOutcome(name, True, ERROR, f"{samples:,} samples of {len(seen):,} points", details)


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
    rows = sorted(
        ({"point": p, "duplicate_rows": dup.get(p, 0), "time_reversals": reversals.get(p, 0), "objects": sorted(objects[p])}
         for p in set(dup) | set(reversals)),
        key=lambda r: (-(r["duplicate_rows"] + r["time_reversals"]), r["point"]),
    )
    n_dup, n_back = sum(dup.values()), sum(reversals.values())
    details = {"duplicate_rows": n_dup, "time_reversals": n_back, "points": len(rows), "top": rows[:TOP]}
    if not rows:
        return CheckOutcome("no_duplicates", True, ERROR, "no (point, ts, ordinal) twice", details)
    parts = [f"{n_dup:,} duplicated row(s)"] if n_dup else []
    parts += [f"time going back {n_back:,} time(s) inside an object"] if n_back else []
    worst = ", ".join(f"{r['point']} ({'+'.join(r['objects'])})" for r in rows[:TOP])
    return CheckOutcome("no_duplicates", False, ERROR, f"{' and '.join(parts)} in {len(rows)} point(s): {worst}", details)


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
        return CheckOutcome("gaps", True, WARN, "not checked: set checks.max_gap_seconds for this source", skipped=True)
    start, limit = _ns(day), round(threshold * 1e9)
    rows = _rows(con, _GAPS_SQL, [start, list(paths), start + 86_400 * 10**9, limit, limit])
    top = [
        {"point": r["point"], "gaps": r["gaps"], "largest_seconds": r["largest_ns"] / 1e9,
         "from": _iso(r["largest_from"]), "to": _iso(r["largest_from"] + r["largest_ns"])}
        for r in rows[:TOP]
    ]
    count = sum(r["gaps"] for r in rows)
    details = {"threshold_seconds": threshold, "gaps": count, "points": len(rows), "top": top}
    if not rows:
        return CheckOutcome("gaps", True, WARN, f"no gap over {threshold:g}s", details)
    worst = ", ".join(f"{t['point']} {t['largest_seconds']:g}s from {t['from']}" for t in top)
    return CheckOutcome("gaps", False, WARN, f"{count:,} gap(s) over {threshold:g}s in {len(rows)} point(s); largest: {worst}", details)


def _value_ranges(con: duckdb.DuckDBPyConnection, paths: dict[str, str], rules: Sequence[ValueRange]) -> CheckOutcome:
    if not rules:
        return CheckOutcome("value_ranges", True, WARN, "not checked: no checks.ranges", skipped=True)
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
    rows = _rows(con, sql, [*params, list(paths)])
    per_rule = []
    for i, rule in enumerate(rules):
        mine = [r for r in rows if r["i"] == i]
        per_rule.append({
            "rule": describe_range(rule), "points": len(mine), "values": sum(r["n_values"] for r in mine),
            "violations": sum(r["violations"] for r in mine), "not_good": sum(r["not_good"] for r in mine),
            "top": [{k: r[k] for k in ("point", "violations", "min", "max")} for r in mine[:TOP] if r["violations"]],
        })
    total = sum(r["violations"] for r in per_rule)
    details = {"violations": total, "rules": per_rule}
    if not total:
        return CheckOutcome("value_ranges", True, WARN, f"all values inside {len(rules)} range rule(s)", details)
    text = "; ".join(f"{r['rule']}: {r['violations']:,} value(s) outside" for r in per_rule if r["violations"])
    return CheckOutcome("value_ranges", False, WARN, text, details)


def _check_day(
    con: duckdb.DuckDBPyConnection, lake: Lake, point_set: PointSet, day: dt.date, keys: list[str],
    expected: Sequence[str] | None,
) -> DayReport:
    objects = [lake.uri(k) for k in keys]
    empty = pa.table({"point": pa.array([], pa.string()), "samples": pa.array([], pa.int64())})

    def report(samples: int, counts: pa.Table, checks: list[CheckOutcome]) -> DayReport:
        return DayReport(point_set.name, day, objects, samples, counts, {c.name: c for c in checks})

    if not keys:
        none = [CheckOutcome(n, True, SEVERITY[n], "not checked: no data", skipped=True) for n in CHECK_NAMES[1:]]
        return report(0, empty, [_samples_present([], 0, set(), expected), *none])
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
                _samples_present(objects, samples, set(per_point), expected),
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
