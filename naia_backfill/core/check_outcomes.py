"""The day's checks as results a user reads: what each check found, its summary line and JSON details.

Pure functions of per-point figures, however they were computed: by DuckDB over the day's objects
(:mod:`naia_backfill.core.validation`) or while the day streamed through the copy (:mod:`naia_backfill.core.day_stats`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from naia_backfill.settings import PointSet, SyntheticSource, ValueRange

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


def rows_shaped(point_set: PointSet) -> bool:
    """Whether the point set copies a table's own rows (``shape: rows``): no point or ts columns to check, only
    the day's rows and, with ``key_columns``, that no key is there twice."""
    return getattr(point_set.source, "shape", None) == "rows"


def key_columns(point_set: PointSet) -> list[str]:
    """The columns identifying a row of a ``shape: rows`` point set (empty when not set)."""
    return list(getattr(point_set.source, "key_columns", None) or [])


def describe_range(rule: ValueRange) -> str:
    lo = "-inf" if rule.min is None else f"{rule.min:g}"
    hi = "inf" if rule.max is None else f"{rule.max:g}"
    return f"{rule.points} in [{lo}, {hi}]"


def day_ns(day: dt.date) -> int:
    return int(dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC).timestamp()) * 1_000_000_000


def iso_seconds(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def samples_present(
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




def rows_present(objects: list[str], rows: int) -> CheckOutcome:
    """``samples_present`` of a ``shape: rows`` day: its object is there (an empty one only warns)."""
    name = "samples_present"
    if not objects:
        return CheckOutcome(name, False, ERROR, "no object in the lake for this day", {"objects": 0})
    details = {"objects": len(objects), "rows": rows}
    if rows == 0:
        return CheckOutcome(name, False, WARN, "the day's object holds no rows (the source had no data)", details)
    return CheckOutcome(name, True, ERROR, f"{rows:,} rows", details)


def key_duplicates_outcome(keys: Sequence[str], duplicate_rows: int, duplicated_keys: int) -> CheckOutcome:
    """``no_duplicates`` of a ``shape: rows`` day: ``duplicate_rows`` rows repeat one of ``duplicated_keys``
    values of ``keys`` (the key values themselves are table data: not reported)."""
    shown = ", ".join(keys)
    details = {"key_columns": list(keys), "duplicate_rows": duplicate_rows, "duplicated_keys": duplicated_keys}
    if not duplicate_rows:
        return CheckOutcome("no_duplicates", True, ERROR, f"no ({shown}) twice", details)
    return CheckOutcome("no_duplicates", False, ERROR,
                        f"{duplicate_rows:,} row(s) repeat {duplicated_keys:,} value(s) of ({shown})", details)


def duplicates_outcome(
    dup: Mapping[str, int], reversals: Mapping[str, int], objects: Mapping[str, list[str]]
) -> CheckOutcome:
    """``dup``: rows of a point found twice across objects; ``reversals``: times a point's time went back inside
    an object; ``objects``: the objects each point is in."""
    rows = sorted(
        ({"point": p, "duplicate_rows": dup.get(p, 0), "time_reversals": reversals.get(p, 0), "objects": sorted(objects.get(p, []))}
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



def gaps_outcome(rows: list[dict[str, Any]], threshold: float | None) -> CheckOutcome:
    """``rows``: per point with a gap over ``threshold``, ordered largest first: ``gaps`` (how many),
    ``largest_ns`` and ``largest_from`` (ns since the epoch)."""
    if threshold is None:
        return CheckOutcome("gaps", True, WARN, "not checked: set checks.max_gap_seconds for this source", skipped=True)
    top = [
        {"point": r["point"], "gaps": r["gaps"], "largest_seconds": r["largest_ns"] / 1e9,
         "from": iso_seconds(r["largest_from"]), "to": iso_seconds(r["largest_from"] + r["largest_ns"])}
        for r in rows[:TOP]
    ]
    count = sum(r["gaps"] for r in rows)
    details = {"threshold_seconds": threshold, "gaps": count, "points": len(rows), "top": top}
    if not rows:
        return CheckOutcome("gaps", True, WARN, f"no gap over {threshold:g}s", details)
    worst = ", ".join(f"{t['point']} {t['largest_seconds']:g}s from {t['from']}" for t in top)
    return CheckOutcome("gaps", False, WARN, f"{count:,} gap(s) over {threshold:g}s in {len(rows)} point(s); largest: {worst}", details)



def ranges_outcome(rows: list[dict[str, Any]], rules: Sequence[ValueRange]) -> CheckOutcome:
    """``rows``: per (rule index ``i``, point): ``n_values``, ``violations``, ``not_good``, ``min``, ``max``,
    ordered by rule, violations (most first) and point."""
    if not rules:
        return CheckOutcome("value_ranges", True, WARN, "not checked: no checks.ranges", skipped=True)
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
