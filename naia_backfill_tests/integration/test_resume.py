"""Resume inside a chunk: a 30-day run is SIGKILLed after some days; the retry fetches only the rest."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from naia_backfill.connectors.synthetic import SyntheticConnector
from naia_backfill.core.daycopy import day_window
from naia_backfill.cli.runner import range_tags
from naia_backfill.schema import SAMPLE_SCHEMA
from naia_backfill.settings import load_point_set
from naia_backfill_tests.conftest import write_point_set
from naia_backfill_tests.integration.resume_job import IN_PROCESS, reconstructable

pytestmark = pytest.mark.integration

DAYS = [dt.date(2024, 2, 1) + dt.timedelta(days=i) for i in range(30)]
KEY = dg.AssetKey("plant")


def start_killable(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy())


def kill_after(proc: subprocess.Popen, instance: dg.DagsterInstance, days_done: int, timeout: float = 300) -> set[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = instance.get_materialized_partitions(KEY)
        if len(done) >= days_done:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return instance.get_materialized_partitions(KEY)
        if proc.poll() is not None:
            raise AssertionError(f"run ended before the kill: {proc.stderr.read().decode()[-3000:]}")
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError("no day finished in time")


def truth(ps, day: dt.date) -> pa.Table:
    src = SyntheticConnector(ps.source)
    start, end = day_window(day)
    return pa.Table.from_batches(list(src.fetch(src.list_points(), start, end)), schema=SAMPLE_SCHEMA)


def stamps(workdir: Path, days: set[str]) -> dict[str, int]:
    return {d: (workdir / f"lake/point_set=plant/date={d}/all.parquet").stat().st_mtime_ns for d in days}


def assert_lake_exact(workdir: Path, ps) -> None:
    folder = workdir / "lake/point_set=plant"
    assert sorted(p.name for p in folder.iterdir()) == [f"date={d}" for d in DAYS]
    for day in DAYS:
        objects = [p.name for p in (folder / f"date={day}").iterdir() if p.suffix == ".parquet"]
        assert objects == ["all.parquet"]
        got = pq.read_table(folder / f"date={day}/all.parquet")
        assert got.equals(truth(ps, day).replace_schema_metadata(got.schema.metadata)), day


@pytest.fixture
def plant(workdir: Path):
    path = write_point_set(workdir, "plant", chunk_days=30, sinks=["parquet"],
                           source={"kind": "synthetic", "points": 300, "interval_seconds": 60, "seed": 5})
    return path, load_point_set(path)


def test_reexecution_from_failure_after_sigkill_fetches_only_unfinished_days(workdir: Path, plant):
    path, ps = plant
    instance = dg.DagsterInstance.get()
    code = (
        "import dagster as dg\n"
        "from naia_backfill_tests.integration.resume_job import reconstructable, IN_PROCESS\n"
        f"dg.execute_job(reconstructable([{str(path)!r}], 'plant'), dg.DagsterInstance.get(), "
        f"run_config=IN_PROCESS, tags={range_tags(DAYS)!r})\n"
    )
    finished = kill_after(start_killable(code), instance, days_done=4)
    assert 4 <= len(finished) < 30
    killed = instance.get_run_records()[0].dagster_run
    assert killed.status == dg.DagsterRunStatus.STARTED  # nobody told Dagster: the process just died
    before = stamps(workdir, finished)

    # What the daemon's run monitoring does for a run whose process is gone: mark it failed, free its slot.
    instance.report_run_failed(killed)
    instance.event_log_storage.free_concurrency_slots_for_run(killed.run_id)
    # Like the UI's "re-execute from failure": the parent's tags (its partition range) carry over.
    result = dg.execute_job(
        reconstructable([str(path)], "plant"), instance, run_config=IN_PROCESS, tags=killed.tags,
        reexecution_options=dg.ReexecutionOptions.from_failure(killed.run_id, instance),
    )
    assert result.success
    again = {m.partition for m in result.asset_materializations_for_node("plant")}
    assert again == {d.isoformat() for d in DAYS} - finished  # none of the finished days fetched again
    assert stamps(workdir, finished) == before
    assert instance.get_materialized_partitions(KEY) == {d.isoformat() for d in DAYS}
    assert_lake_exact(workdir, ps)


def test_new_run_from_the_cli_after_sigkill_fetches_only_unfinished_days(workdir: Path, plant):
    path, ps = plant
    instance = dg.DagsterInstance.get()
    code = (
        "from naia_backfill.cli import cli\n"
        f"cli(['run', {str(path)!r}, '--start', '{DAYS[0]}', '--end', '{DAYS[-1]}'], prog_name='naia-backfill')\n"
    )
    finished = kill_after(start_killable(code), instance, days_done=3)
    assert 3 <= len(finished) < 30
    before = stamps(workdir, finished)
    proc = subprocess.run(
        [sys.executable, "-m", "naia_backfill.cli", "run", str(path), "--start", str(DAYS[0]), "--end", str(DAYS[-1])],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"{len(finished)} of 30 day(s) already done in this lake" in proc.stderr
    assert stamps(workdir, finished) == before
    assert_lake_exact(workdir, ps)
