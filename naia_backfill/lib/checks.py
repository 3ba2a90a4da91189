"""Asset checks of a point set: each materialized day's data quality, recorded on that day's partition.

The checks are declared on the point-set asset (``check_specs``, partitioned like the asset) and evaluated
inside its run: right after a day is written and materialized, :class:`DayChecks` validates it with DuckDB
(:mod:`naia_backfill.validation`) and logs one ``AssetCheckEvaluation`` per check *for that partition*,
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

from naia_backfill.lib.partitions import daily_partitions
from naia_backfill.settings import PointSet
from naia_backfill.validation import ERROR, SEVERITY, DayReport, connect, gap_threshold_seconds, validate_day

try:  # Dagster has no public constructor for the pointer from a check result to the materialization it checked.
    from dagster._core.definitions.asset_checks.asset_check_evaluation import (
        AssetCheckEvaluationTargetMaterializationData as _Target,
    )
except ImportError:  # pragma: no cover - results are still recorded, the UI just shows them as outdated
    _Target = None

DESCRIPTIONS = {
    "samples_present": "The day has a Parquet object with rows, and every point of the point set has events "
    "(a missing object fails; an empty object, meaning the source had no data, or missing points only warn).",
    "no_duplicates": "No event twice: no (point, ts, ordinal) in two objects of the day, no point written twice "
    "into one object.",
    "gaps": "No gap between a point's events longer than checks.max_gap_seconds (default 3x the sample interval).",
    "value_ranges": "Values of the points named by each checks.ranges rule are inside its bounds.",
}


def check_specs(point_set: PointSet) -> list[dg.AssetCheckSpec]:
    """The point set's checks, one result per day partition; none if it writes no Parquet lake."""
    if point_set.sink("parquet") is None:
        return []
    partitions = daily_partitions(point_set)
    specs = []
    for name, severity in SEVERITY.items():
        meta: dict[str, Any] = {"severity": severity}
        if name == "gaps":
            meta["threshold_seconds"] = gap_threshold_seconds(point_set) or "not checked"
        if name == "value_ranges":
            meta["rules"] = len(point_set.checks.ranges)
        with warnings.catch_warnings():
            # Partitioned checks are a preview feature of Dagster 1.13; they are what ties a result to its day.
            warnings.filterwarnings("ignore", category=dg.PreviewWarning, message=".*partitions_def on an AssetCheckSpec")
            specs.append(dg.AssetCheckSpec(
                name, asset=point_set.name, description=DESCRIPTIONS[name], partitions_def=partitions, metadata=meta,
            ))
    return specs


def _severity(level: str) -> dg.AssetCheckSeverity:
    return dg.AssetCheckSeverity.ERROR if level == ERROR else dg.AssetCheckSeverity.WARN


def _metadata(report: DayReport, details: dict[str, Any], skipped: bool) -> dict[str, Any]:
    meta: dict[str, Any] = {"samples": report.samples, "points": report.points, "objects": len(report.objects)}
    meta |= {k: v for k, v in details.items() if isinstance(v, int | float | str) and not isinstance(v, bool)}
    meta["details"] = dg.MetadataValue.json(details)
    if skipped:
        meta["skipped"] = True
    return meta


def target_materialization(instance: dg.DagsterInstance, asset_key: dg.AssetKey, day: dt.date) -> Any:
    """The latest materialization of the day's partition, for the check results to point at."""
    if _Target is None:
        return None
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[day.isoformat()]), limit=1
    ).records
    if not records:
        return None
    rec = records[0]
    return _Target(storage_id=rec.storage_id, run_id=rec.run_id, timestamp=rec.timestamp)


def check_evaluations(asset_key: dg.AssetKey, report: DayReport, target: Any = None) -> list[dg.AssetCheckEvaluation]:
    """One evaluation per check of ``report``, on the day's partition."""
    return [
        dg.AssetCheckEvaluation(
            asset_key=asset_key, check_name=c.name, passed=c.passed, severity=_severity(c.severity),
            description=c.summary, metadata=_metadata(report, c.details, c.skipped),
            partition=report.day.isoformat(), target_materialization_data=target,
        )
        for c in report.checks.values()
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

    def record(self, day: dt.date, expected_points: Sequence[str] | None) -> DayReport | None:
        """Validate a materialized day and log each selected check's result on its partition."""
        if not self.selected:
            return None
        ctx, names = self.context, {k.name for k in self.selected}
        try:
            if self._lake is None:
                self._lake = ctx.resources.lake.lake()
                self._con = connect()
            report = validate_day(self._lake, self.point_set, day, list(expected_points or []) or None, con=self._con)
            evaluations = check_evaluations(ctx.asset_key, report, target_materialization(ctx.instance, ctx.asset_key, day))
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
    """Record a validation outside any run: each day's check results, then one observation with the summary
    and the coverage picture's path. Returns how many check results were recorded."""
    key = dg.AssetKey(point_set.name)
    reports = list(reports)
    count = 0
    for report in reports:
        for evaluation in check_evaluations(key, report, target_materialization(instance, key, report.day)):
            instance.report_runless_asset_event(evaluation)
            count += 1
    if reports:
        failed = [r.day.isoformat() for r in reports if r.status == "fail"]
        warned = [r.day.isoformat() for r in reports if r.status == "warn"]
        meta: dict[str, Any] = {
            "validated_days": len(reports), "first_day": reports[0].day.isoformat(),
            "last_day": reports[-1].day.isoformat(), "failed_days": dg.MetadataValue.json(failed),
            "warned_days": dg.MetadataValue.json(warned), "samples": sum(r.samples for r in reports),
        }
        if picture:
            meta["coverage_png"] = dg.MetadataValue.path(picture)
        instance.report_runless_asset_event(dg.AssetObservation(asset_key=key, metadata=meta))
    return count
