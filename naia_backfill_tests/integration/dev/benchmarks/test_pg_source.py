"""The PostgreSQL source benchmark on a tiny day against the real server: naia's path and the limit copy the
same rows, and the figures it writes are complete."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("shape", ["users", "samples"])
def test_naia_and_the_limit_read_the_same_day(service_env, tmp_path: Path, shape: str):
    figures = tmp_path / "figures.json"
    out = subprocess.run([sys.executable, "-m", "naia_backfill.dev.benchmarks.pg_source", "--shape", shape, "--rows",
                          "10000", "--no-dlt", "--json", str(figures), "--dsn", service_env.pg_dsn],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    runs = {r["path"]: r for r in json.loads(figures.read_text())["runs"]}
    assert sorted(runs) == ["limit", "naia"] and runs["naia"]["rows"] == runs["limit"]["rows"] == 10_000
    assert runs["naia"]["bytes"] > 0 and all(r["seconds"] > 0 and r["peak_mb"] >= r["baseline_mb"] for r in runs.values())
    assert "vs limit, paired" in out.stdout
