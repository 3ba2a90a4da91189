"""What `naia-backfill status` shows of a backfill: its days done, failed and in progress, samples, rate and
ETA, computed from the backfill's runs as Dagster itself counts a backfill's failed partitions."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

FINISHED = frozenset({"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"})
FAILED_RUNS = frozenset({"FAILURE", "CANCELED"})
ENDED_RUNS = FAILED_RUNS | {"SUCCESS"}
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
PARTITION = "dagster/partition"


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    status: str
    first_day: str | None
    last_day: str | None


@dataclass(frozen=True)
class BackfillStatus:
    """Where a backfill stands: its days, failures, throughput and expected end."""

    id: str
    point_set: str
    status: str
    created: dt.datetime
    ended: dt.datetime | None
    days_total: int
    days_done: int
    days_in_progress: int
    failed_days: list[str]
    samples: int
    samples_per_s: float | None
    eta_seconds: float | None
    runs: list[RunInfo] = field(default_factory=list)
    error: str | None = None
    title: str | None = None

    @property
    def days_failed(self) -> int:
        return len(self.failed_days)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def percent_done(self) -> float:
        return 100.0 * self.days_done / self.days_total if self.days_total else 0.0

    @property
    def succeeded(self) -> bool:
        return self.finished and self.status not in {"FAILED", "CANCELED"} and not self.failed_days and (
            self.days_done >= self.days_total)


def _days(first: str, last: str) -> list[str]:
    try:
        a, b = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    except ValueError:  # not a daily partition key: the range is all we know
        return [first] if first == last else [first, last]
    return [(a + dt.timedelta(days=i)).isoformat() for i in range((b - a).days + 1)]


def _run_days(tags: Mapping[str, str]) -> tuple[str | None, str | None, list[str]]:
    if tags.get(RANGE_START) and tags.get(RANGE_END):
        return tags[RANGE_START], tags[RANGE_END], _days(tags[RANGE_START], tags[RANGE_END])
    if tags.get(PARTITION):
        return tags[PARTITION], tags[PARTITION], [tags[PARTITION]]
    return None, None, []


def _int_entry(entries: list[dict[str, Any]], label: str) -> int:
    for entry in entries:
        if entry.get("label") == label and entry.get("intRepr") is not None:
            return int(entry["intRepr"])
    return 0


@dataclass
class _Tally:
    """What a backfill's runs say: each day's latest materialization (timestamp, samples), the runs, the days
    of failed and of unfinished runs, and when runs started."""

    materialized: dict[str, tuple[float, int]] = field(default_factory=dict)
    runs: list[RunInfo] = field(default_factory=list)
    failed: set[str] = field(default_factory=set)
    unfinished: set[str] = field(default_factory=set)
    started: list[float] = field(default_factory=list)


def _tally_runs(nodes: list[Mapping[str, Any]], asset: list[str] | None, target: set[str]) -> _Tally:
    out = _Tally()
    materialized, runs, failed, unfinished, started = out.materialized, out.runs, out.failed, out.unfinished, out.started
    for run in nodes:
        tags = {t["key"]: t["value"] for t in run.get("tags") or []}
        first, last, days = _run_days(tags)
        runs.append(RunInfo(run["runId"], run["status"], first, last))
        if run.get("startTime"):
            started.append(float(run["startTime"]))
        if run["status"] in FAILED_RUNS:
            failed.update(days)
        elif run["status"] not in ENDED_RUNS:
            unfinished.update(days)
        for event in run.get("assetMaterializations") or []:
            day = event.get("partition")
            if not day or (asset is not None and (event.get("assetKey") or {}).get("path") != asset):
                continue
            if target and day not in target:
                continue
            stamp = int(event["timestamp"]) / 1000.0
            if day not in materialized or materialized[day][0] <= stamp:
                materialized[day] = (stamp, _int_entry(event.get("metadataEntries") or [], "samples"))
    return out


def parse_backfill(node: Mapping[str, Any], now: float | None = None) -> BackfillStatus:
    """A ``BackfillFields`` GraphQL object as a :class:`BackfillStatus` (``now`` in epoch seconds)."""
    now = time.time() if now is None else now
    keys = [p["path"] for p in node.get("assetSelection") or []]
    asset = keys[0] if len(keys) == 1 else None
    targeted = list(node.get("partitionNames") or [])
    target = set(targeted)
    counts = [s for s in (node.get("assetBackfillData") or {}).get("assetBackfillStatuses") or [] if s]
    total = len(targeted) or node.get("numPartitions") or sum(c.get("numPartitionsTargeted", 0) for c in counts)

    tally = _tally_runs(node.get("runs") or [], asset, target)
    materialized, runs, failed, unfinished, started = (
        tally.materialized, tally.runs, tally.failed, tally.unfinished, tally.started)

    done = max(len(materialized), max((c.get("numPartitionsMaterialized", 0) for c in counts), default=0))
    failed_days = sorted(d for d in failed - materialized.keys() if not target or d in target)
    in_progress = len(unfinished - materialized.keys() - set(failed_days))
    samples = sum(s for _, s in materialized.values())

    status = node["status"]
    end_ts = node.get("endTimestamp")
    first_start = min(started) if started else None
    until = float(end_ts) if end_ts else (
        max((t for t, _ in materialized.values()), default=now) if status in FINISHED else now)
    elapsed = until - first_start if first_start is not None else 0.0
    rate = samples / elapsed if elapsed > 0 and materialized else None
    eta = None
    remaining = total - done - len(failed_days)
    if status not in FINISHED and first_start is not None and done and remaining > 0 and now > first_start:
        eta = remaining / (done / (now - first_start))

    error = node.get("error") or None
    return BackfillStatus(
        id=node["id"],
        point_set="/".join(asset) if asset else ", ".join("/".join(k) for k in keys) or "-",
        status=status,
        created=dt.datetime.fromtimestamp(float(node["timestamp"]), dt.UTC),
        ended=dt.datetime.fromtimestamp(float(end_ts), dt.UTC) if end_ts else None,
        days_total=int(total or 0),
        days_done=done,
        days_in_progress=in_progress,
        failed_days=failed_days,
        samples=samples,
        samples_per_s=rate,
        eta_seconds=eta,
        runs=runs,
        error=_first_line(error["message"]) if error else None,
        title=node.get("title"),
    )


def _first_line(message: str, cls: str | None = None) -> str:
    """The useful part of a Python error message: first line, without the exception class prefix."""
    line = message.strip().splitlines()[0] if message.strip() else message
    head, sep, rest = line.partition(": ")
    if sep and " " not in head and ("." in head or head == cls):
        line = rest
    for noise in ("Failure condition: ", "Invariant failed. Description: "):
        line = line.removeprefix(noise)
    return line
