"""Run days of one point set through Dagster in-process, chunk by chunk, with a live progress bar."""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
import time
import uuid
from typing import Any

import dagster as dg
import psutil
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from naia_backfill.lib import doneness, partitions
from naia_backfill.lib.dagster_internals import free_pool_slots_of_finished_runs
from naia_backfill.lib.definitions import build_definitions
from naia_backfill.lib.factory import job_name
from naia_backfill.lib.resources import LakeResource
from naia_backfill.settings import PointSet
from naia_backfill.sinks.lake import Lake

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
#: Tags the UI hides (Dagster's ``.dagster/`` prefix): which process of which host runs a CLI run.
HOST_TAG, PID_TAG, PID_STARTED_TAG = ".dagster/naia/host", ".dagster/naia/pid", ".dagster/naia/pid_started"


def range_tags(chunk: list[dt.date]) -> dict[str, str]:
    """Tags of a CLI run over ``chunk``: its partition range and the process that runs it."""
    return {
        **partitions.partition_range_tags(chunk[0], chunk[-1]),
        "naia/launched_by": "cli",
        HOST_TAG: socket.gethostname(),
        PID_TAG: str(os.getpid()),
        PID_STARTED_TAG: str(int(psutil.Process().create_time())),
    }


def _process_alive(tags: dict[str, str]) -> bool:
    try:
        proc = psutil.Process(int(tags[PID_TAG]))
        return int(proc.create_time()) == int(tags.get(PID_STARTED_TAG, proc.create_time()))
    except (psutil.NoSuchProcess, KeyError, ValueError):
        return False


def recover_dead_runs(instance: dg.DagsterInstance, console: Console) -> list[str]:
    """Mark CLI runs of this host whose process died (killed, crashed) as failed and free their pool slots.

    The daemon's run monitoring does this for runs it launched; in-process CLI runs have no daemon, so
    the next CLI run does it. Without it a killed run would hold its source's pool slot for ever.
    """
    recovered = []
    records = instance.get_run_records(
        filters=dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING],
            tags={"naia/launched_by": "cli", HOST_TAG: socket.gethostname()},
        )
    )
    for record in records:
        run = record.dagster_run
        if not _process_alive(run.tags):
            instance.report_run_failed(run, "the process running it is gone (killed or crashed)")
            recovered.append(run.run_id)
    free_pool_slots_of_finished_runs(instance)
    for run_id in recovered:
        console.print(f"run {run_id[:8]} died without finishing; marked failed, its finished days are kept")
    return recovered


class _Watcher(threading.Thread):
    """Follows materialization events of one asset and advances the progress bar per finished day."""

    def __init__(self, instance: dg.DagsterInstance, key: dg.AssetKey, progress: Progress, task: Any) -> None:
        super().__init__(daemon=True)
        self.instance, self.key, self.progress, self.task = instance, key, progress, task
        latest = instance.fetch_materializations(key, limit=1)
        self.cursor = latest.records[0].storage_id if latest.records else 0
        self.run_ids: set[str] = set()  # only this command's runs move the bar, not concurrent ones
        self.samples = 0
        self.started = time.monotonic()
        self.stop = threading.Event()

    def poll(self) -> None:
        records = self.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=self.key, after_storage_id=self.cursor), limit=1000, ascending=True
        ).records
        for rec in records:
            self.cursor = max(self.cursor, rec.storage_id)
            if rec.run_id not in self.run_ids:
                continue
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
    defs = build_definitions(point_sets, lake_url=lake)
    key = dg.AssetKey(ps.name)
    job = defs.resolve_job_def(job_name(ps))
    instance = instance or dg.DagsterInstance.get()
    recover_dead_runs(instance, console)
    todo = days if force else days_to_run(instance, ps, days, LakeResource(url=lake).lake(), console)
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
            for chunk in partitions.contiguous_chunks(todo, ps.chunk_days):
                run_id = str(uuid.uuid4())
                watcher.run_ids.add(run_id)
                result = job.execute_in_process(
                    instance=instance, tags=range_tags(chunk), run_config=QUIET, raise_on_error=False, run_id=run_id,
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


def days_to_run(
    instance: dg.DagsterInstance, ps: PointSet, days: list[dt.date], lake: Lake | None, console: Console
) -> list[dt.date]:
    """The days not done in this lake (see :mod:`naia_backfill.lib.doneness`), saying why recorded ones run again."""
    done, stale = doneness.audit(instance, ps, days, lake)
    for day, why in sorted(stale.items()):
        console.print(f"{day}: materialized, but {why}; fetching it again", highlight=False, soft_wrap=True)
    if done:
        console.print(f"{len(done)} of {len(days)} day(s) already done in this lake; skipped (--force re-runs them)")
    return [d for d in days if d not in done]


def _in_run(instance: dg.DagsterInstance, key: dg.AssetKey, day: dt.date, run_id: str) -> bool:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[day.isoformat()]), limit=1
    ).records
    return bool(records) and records[0].run_id == run_id
