"""The MongoDB benchmark's phases run against the real server on a tiny day, and its quota figure counts every
request a simulated day of polls sends."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from naia_backfill.dev.benchmarks.mongodb import quota
from naia_backfill.dev.simulators.waqi.stations import default_stations

pytestmark = pytest.mark.integration


def test_quota_counts_one_request_per_station_and_poll():
    q = quota(60)
    stations = len(default_stations())
    assert q["requests"] == 24 * stations and q["busiest_minute"] == stations and q["allowed"] == 1_440_000


def test_the_sink_and_insert_many_phases_report_the_same_documents(service_env):
    rows = []
    for phase in ("sink", "insert_many", "rerun"):
        out = subprocess.run([sys.executable, "-m", "naia_backfill.dev.benchmarks.mongodb", "--child", phase, "--tag",
                              "test", "--points", "3", "--interval", "600", "--rerun-points", "2",
                              "--uri", service_env.mongodb_uri], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        rows.append(json.loads(out.stdout.strip().splitlines()[-1])["rows"])
    assert rows[0] == rows[1] > 0 and 0 < rows[2] < rows[0]
