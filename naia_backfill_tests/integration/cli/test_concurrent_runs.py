"""Several `naia-backfill run` processes started together on a fresh DAGSTER_HOME: the instance is created
once, under a lock, and every run and every later command works (real processes, several trials)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from naia_backfill_tests.conftest import ROOT, write_point_set

pytestmark = pytest.mark.integration

TRIALS, PROCESSES = 3, 3


def cli(home: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "DAGSTER_HOME": str(home), "NAIA_LAKE_URL": str(home.parent / "lake")}
    return subprocess.Popen([sys.executable, "-m", "naia_backfill.cli", *args], env=env, cwd=home.parent,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("trial", range(TRIALS))
def test_runs_started_together_on_a_fresh_home_all_succeed(tmp_path: Path, trial: int):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(ROOT / "dagster.yaml", home / "dagster.yaml")
    plant = write_point_set(tmp_path, "plant", sinks=["parquet"],
                            source={"kind": "synthetic", "points": 3, "interval_seconds": 3600})
    days = [f"2024-01-0{i + 1}" for i in range(PROCESSES)]
    procs = [cli(home, "run", str(plant), "--start", day, "--end", day) for day in days]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    for code, err in results:
        assert code == 0, err[-3000:]
        counts = re.findall(r"(\d+)/(\d+) days", err)
        assert counts and all(done == total == "1" for done, total in counts), err[-500:]  # only its own day
    listing = cli(home, "--point-sets", str(plant), "list")
    out, err = listing.communicate(timeout=300)
    assert listing.returncode == 0, err[-3000:]
    assert re.search(r"plant\b.*\b3/\d+", out), out  # the three days, recorded by three processes
    for day in days:
        assert (tmp_path / f"lake/point_set=plant/date={day}/all.parquet").is_file()
