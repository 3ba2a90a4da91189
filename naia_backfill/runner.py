"""Run days of one point set through Dagster in-process, chunk by chunk, with a live progress bar."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import dagster as dg
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from naia_backfill.definitions import build_definitions
from naia_backfill.lib.resources import LakeResource
from naia_backfill.settings import PointSet

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def chunks(days: list[dt.date], size: int) -> list[list[dt.date]]:
    """Contiguous runs of ``days`` split into pieces of at most ``size`` days."""
    out: list[list[dt.date]] = []
    for day in days:
        last = out[-1] if out else None
        if last and len(last) < size and (day - last[-1]).days == 1:
            last.append(day)
        else:
            out.append([day])
    return out


def range_tags(chunk: list[dt.date]) -> dict[str, str]:
    return {
        "dagster/asset_partition_range_start": chunk[0].isoformat(),
        "dagster/asset_partition_range_end": chunk[-1].isoformat(),
        "naia/launched_by": "cli",
    }


class _Watcher(threading.Thread):
    """Follows materialization events of one asset and advances the progress bar per finished day."""

    def __init__(self, instance: dg.DagsterInstance, key: dg.AssetKey, progress: Progress, task: Any) -> None:
        super().__init__(daemon=True)
        self.instance, self.key, self.progress, self.task = instance, key, progress, task
        latest = instance.fetch_materializations(key, limit=1)
        self.cursor = latest.records[0].storage_id if latest.records else 0
        self.samples = 0
        self.started = time.monotonic()
        self.stop = threading.Event()

    def poll(self) -> None:
        records = self.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=self.key, after_storage_id=self.cursor), limit=1000, ascending=True
        ).records
        for rec in records:
            self.cursor = max(self.cursor, rec.storage_id)
            meta = rec.asset_materialization.metadata if rec.asset_materialization else {}
            samples = meta.get("samples")
            self.samples += int(samples.value) if samples is not None else 0
            rate = self.samples / max(1e-6, time.monotonic() - self.started)
            self.progress.update(self.task, advance=1, rate=f"{rate:,.0f} samples/s")

    def run(self) -> None:
        while not self.stop.wait(0.5):
            self.poll()
        self.poll()


def _failure(result: dg.ExecuteInProcessResult) -> str:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data.error:
            err = event.step_failure_data.error
            while err.cause is not None and "DayFailedError" not in err.cls_name:
                err = err.cause
            return err.message.strip()
    return "run failed"


def run_days(
    point_sets: dict[str, PointSet],
    ps: PointSet,
    days: list[dt.date],
    *,
    lake: str | None = None,
    force: bool = False,
    console: Console | None = None,
    instance: dg.DagsterInstance | None = None,
) -> list[str]:
    """Materialize ``days`` (skipping materialized ones unless ``force``); return the days that failed."""
    console = console or Console(stderr=True)
    defs = build_definitions(point_sets)
    key = dg.AssetKey(ps.name)
    asset = defs.get_assets_def(key)
    resources = dict(defs.resources or {})
    if lake:
        resources["lake"] = LakeResource(url=lake)
    instance = instance or dg.DagsterInstance.get()
    done = set() if force else instance.get_materialized_partitions(key)
    todo = [d for d in days if d.isoformat() not in done]
    if len(todo) < len(days):
        console.print(f"{len(days) - len(todo)} of {len(days)} day(s) already materialized; skipped (--force re-runs them)")
    failed: list[str] = []
    if not todo:
        return failed
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("days"),
               TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(ps.name, total=len(todo), rate="")
        watcher = _Watcher(instance, key, progress, task)
        watcher.start()
        try:
            for chunk in chunks(todo, ps.chunk_days):
                result = dg.materialize(
                    [asset], instance=instance, resources=resources, tags=range_tags(chunk),
                    run_config=QUIET, raise_on_error=False,
                )
                if not result.success:
                    failed.extend(d.isoformat() for d in chunk if not _in_run(instance, key, d, result.run_id))
                    progress.console.print(
                        f"[red]run {result.run_id[:8]} failed:[/] {escape(_failure(result))}", soft_wrap=True
                    )
        finally:
            watcher.stop.set()
            watcher.join()
    return failed


def _in_run(instance: dg.DagsterInstance, key: dg.AssetKey, day: dt.date, run_id: str) -> bool:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[day.isoformat()]), limit=1
    ).records
    return bool(records) and records[0].run_id == run_id
