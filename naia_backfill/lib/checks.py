"""Asset checks of a point set: each materialized day's data quality, recorded on that day's partition.

The checks are declared on the point-set asset (``check_specs``, partitioned like the asset) and evaluated
inside its run: right after a day is written and materialized, :class:`DayChecks` validates it with DuckDB
(:mod:`naia_backfill.core.validation`) and logs one ``AssetCheckEvaluation`` per check *for that partition*,
pointing at the day's materialization. A ranged run of 30 days thus records 30 results per check, and a run
that fails on day 17 keeps the results of days 1-16. Separate ``@asset_check`` ops would not work here: the
asset yields no output (it records its days itself), so Dagster skips any step that depends on it.
``naia-backfill validate`` re-evaluates history the same way (:func:`record_reports`).
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Self

import dagster as dg
import duckdb

from naia_backfill.lib.dagster_internals import check_target
from naia_backfill.lib.partitions import daily_partitions
from naia_backfill.settings import PointSet
from naia_backfill.core.check_outcomes import (
    ERROR,
    SEVERITY,
    DayReport,
    gap_threshold_seconds,
    key_columns,
    rows_shaped,
)
from naia_backfill.core.day_stats import DayStats
from naia_backfill.core.validation import connect, validate_day

_QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}

DESCRIPTIONS = {
    "samples_present": "The day has a Parquet object with rows, and every point of the point set has events "
    "(a missing object fails; an empty object, meaning the source had no data, or missing points only warn).",
    "no_duplicates": "No event twice: no (point, ts, ordinal) in two objects of the day, no point written twice "
    "into one object.",
    "gaps": "No gap between a point's events longer than checks.max_gap_seconds (default 3x the sample interval).",
    "value_ranges": "Values of the points named by each checks.ranges rule are inside its bounds.",
}
#: The same checks of a table's own rows (``shape: rows``).
ROWS_DESCRIPTIONS = {
    "samples_present": "The day has a Parquet object (an empty one, meaning the table had no rows that day, only "
    "warns).",
    "no_duplicates": "No value of the source's key_columns on two rows of the day.",
}


def configured_checks(point_set: PointSet) -> list[str]:
    """The checks that apply to the point set: none without a Parquet lake; ``gaps`` only with a threshold
    (set or derived from the source), ``value_ranges`` only with rules. A check that does not apply is not
    declared, so the UI never shows it as a pass. A source copying a table's own rows (``shape: rows``) has
    no point or ts columns: its days are checked for rows, and with ``key_columns`` for keys found twice."""
    if point_set.sink("parquet") is None:
        return []
    if rows_shaped(point_set):
        return ["samples_present"] + (["no_duplicates"] if key_columns(point_set) else [])
    names = ["samples_present", "no_duplicates"]
    if gap_threshold_seconds(point_set):
        names.append("gaps")
    if point_set.checks.ranges:
        names.append("value_ranges")
    return names


def check_specs(point_set: PointSet) -> list[dg.AssetCheckSpec]:
    """The point set's checks, one result per day partition."""
    partitions, rows = daily_partitions(point_set), rows_shaped(point_set)
    specs = []
    for name in configured_checks(point_set):
        meta: dict[str, Any] = {"severity": SEVERITY[name]}
        if name == "gaps":
            meta["threshold_seconds"] = dg.MetadataValue.float(float(gap_threshold_seconds(point_set) or 0))
        if name == "value_ranges":
            meta["rules"] = dg.MetadataValue.int(len(point_set.checks.ranges))
        with warnings.catch_warnings():
            # Partitioned checks are a preview feature of Dagster 1.13; they are what ties a result to its day.
            warnings.filterwarnings("ignore", category=dg.PreviewWarning, message=".*partitions_def on an AssetCheckSpec")
            specs.append(dg.AssetCheckSpec(
                name, asset=point_set.name, description=(ROWS_DESCRIPTIONS if rows else DESCRIPTIONS)[name],
                partitions_def=partitions, metadata=meta,
            ))
    return specs


def _severity(level: str) -> dg.AssetCheckSeverity:
    return dg.AssetCheckSeverity.ERROR if level == ERROR else dg.AssetCheckSeverity.WARN


def _metadata(report: DayReport, details: dict[str, Any], skipped: bool) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "samples": dg.MetadataValue.int(report.samples), "points": dg.MetadataValue.int(report.points),
        "objects": dg.MetadataValue.int(len(report.objects)),
    }
    for k, v in details.items():
        if isinstance(v, bool) or v in ("", None):
            continue
        if isinstance(v, int):
            meta[k] = dg.MetadataValue.int(v)
        elif isinstance(v, float):
            meta[k] = dg.MetadataValue.float(v)
        elif isinstance(v, str):
            meta[k] = dg.MetadataValue.text(v)
    if details:
        meta["details"] = dg.MetadataValue.json(details)
    if skipped:
        meta["skipped"] = dg.MetadataValue.bool(True)
    return meta


def check_evaluations(
    point_set: PointSet, report: DayReport, target: Any = None
) -> list[dg.AssetCheckEvaluation]:
    """One evaluation per configured check of ``report``, on the day's partition."""
    names = set(configured_checks(point_set))
    return [
        dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey(point_set.name), check_name=c.name, passed=c.passed, severity=_severity(c.severity),
            description=c.summary, metadata=_metadata(report, c.details, c.skipped),
            partition=report.day.isoformat(), target_materialization_data=target,
        )
        for c in report.checks.values()
        if c.name in names
    ]


class DayChecks:
    """Checks the days an asset run materializes. Use as a context manager inside the asset body."""

    def __init__(self, context: dg.AssetExecutionContext, point_set: PointSet) -> None:
        self.context, self.point_set = context, point_set
        self.selected = sorted(
            (k for k in context.selected_asset_check_keys if k.asset_key == context.asset_key), key=lambda k: k.name
        )
        self._lake: Any = None
        self._con: duckdb.DuckDBPyConnection | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def stats(self, day: dt.date) -> DayStats | None:
        """The figures to gather while ``day`` streams through the copy, when its checks will be recorded (a
        ``shape: rows`` day is read back: its key check would need every key in memory)."""
        if not self.selected or rows_shaped(self.point_set):  # a table's own rows are checked by reading them back
            return None
        return DayStats(self.point_set, day)

    def record(
        self, day: dt.date, expected_points: Sequence[str] | None, streamed: DayStats | None = None,
        objects: Sequence[str] = (),
    ) -> DayReport | None:
        """Log each selected check's result on the day's partition: from the figures gathered while the day
        streamed (``streamed``, the day written whole as ``objects``), else by reading the day back."""
        if not self.selected:
            return None
        ctx, names = self.context, {k.name for k in self.selected}
        expected = list(expected_points or []) or None
        try:
            if streamed is not None:
                report = streamed.report(self.point_set.name, list(objects), expected)
            else:
                if self._lake is None:
                    self._lake = ctx.resources.lake.lake()
                    self._con = connect()
                report = validate_day(self._lake, self.point_set, day, expected, con=self._con)
            evaluations = check_evaluations(self.point_set, report, check_target(ctx.instance, ctx.asset_key, day.isoformat()))
        except Exception as e:
            ctx.log.warning(f"{day}: checks could not run: {e}")
            for key in self.selected:
                ctx.log_event(dg.AssetCheckEvaluation(
                    asset_key=ctx.asset_key, check_name=key.name, passed=False, severity=dg.AssetCheckSeverity.WARN,
                    description=f"the check could not run: {e}", partition=day.isoformat(),
                ))
            return None
        for evaluation in evaluations:
            if evaluation.check_name in names:
                ctx.log_event(evaluation)
        if report.status != "pass":
            bad = [c for c in report.checks.values() if not c.passed]
            ctx.log.warning(f"{day}: " + "; ".join(f"{c.name} [{c.severity}] {c.summary}" for c in bad))
        return report

    def outputs(self) -> Iterator[dg.Output]:
        """The empty outputs Dagster requires once per step for the asset's check specs; yield them last.

        The results themselves are the per-day evaluations :meth:`record` logged.
        """
        for key in self.selected:
            yield dg.Output(None, output_name=self.context.assets_def.get_output_name_for_asset_check_key(key))


def record_reports(
    instance: dg.DagsterInstance, point_set: PointSet, reports: Iterable[DayReport], picture: str | None = None
) -> int:
    """Record a validation as a run of its own (job ``naia_validate``): each day's check results, then one
    observation with the summary and the coverage picture's path. A run of its own, not runless events: the
    instance keeps one result per (check, partition, run), so a second validation of the same days would
    collide with the first. Returns how many check results were recorded."""
    key = dg.AssetKey(point_set.name)
    reports = list(reports)
    events: list[Any] = [
        evaluation
        for report in reports
        for evaluation in check_evaluations(point_set, report, check_target(instance, key, report.day.isoformat()))
    ]
    if reports:
        failed = [r.day.isoformat() for r in reports if r.status == "fail"]
        warned = [r.day.isoformat() for r in reports if r.status == "warn"]
        meta: dict[str, Any] = {
            "validated_days": dg.MetadataValue.int(len(reports)), "first_day": reports[0].day.isoformat(),
            "last_day": reports[-1].day.isoformat(), "failed_days": dg.MetadataValue.json(failed),
            "warned_days": dg.MetadataValue.json(warned), "samples": dg.MetadataValue.int(sum(r.samples for r in reports)),
        }
        if picture:
            meta["coverage_png"] = dg.MetadataValue.path(picture)
        events.append(dg.AssetObservation(asset_key=key, metadata=meta))

    @dg.op(name="record_validation")
    def _record(context) -> None:  # no annotation: this module postpones them, Dagster reads them
        for event in events:
            context.log_event(event)

    @dg.job(name="naia_validate", description=f"Check results of `naia-backfill validate {point_set.name}`.",
            tags={"naia/launched_by": "cli", "naia/point_set": point_set.name})
    def _validation() -> None:
        _record()

    if events:
        _validation.execute_in_process(instance=instance, run_config=_QUIET)
    return sum(isinstance(e, dg.AssetCheckEvaluation) for e in events)
