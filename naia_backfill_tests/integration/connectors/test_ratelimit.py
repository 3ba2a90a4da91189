"""Several processes reading one source share its request-rate limit: never above it, and fully used
while every process has requests waiting. Measured at the PI Web API simulator, over real sockets."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from naia_backfill.dev.simulators.pi_web_api.simulator import PiSimulator, SimPoint, serve
from naia_backfill_tests.conftest import write_point_set

pytestmark = pytest.mark.integration

LIMIT, PER = 8, 1.0
PROCESSES, CALLS = 3, 12

WORKER = """
import pathlib, sys, time
from naia_backfill.connectors import build_source
from naia_backfill.settings import load_point_set
ps = load_point_set(sys.argv[1])
ready, go = pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
with build_source(ps) as source:
    ready.touch()
    while not go.exists():
        time.sleep(0.002)
    for _ in range(int(sys.argv[4])):
        assert source.list_points("PLANT.*")
"""


@pytest.mark.parametrize("store", ["file", "postgres"])
def test_processes_share_one_limit_and_use_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: str,
                                              service_env):
    """The slots live in a file (one machine) or in PostgreSQL (every pod of a cluster)."""
    monkeypatch.setenv("NAIA_RATE_LIMIT_DIR", str(tmp_path / "limits"))
    if store == "postgres":
        monkeypatch.setenv("NAIA_RATE_LIMIT_DSN", service_env.pg_dsn)
    sim = PiSimulator(seed=1, points=[SimPoint(f"PLANT.{i}") for i in range(5)])
    with serve(sim) as url:
        path = write_point_set(tmp_path, "plant", points={"name_filter": "PLANT.*"}, source={
            "kind": "pi_web_api", "base_url": url, "data_server": "PISRV1",
            "rate_limit": {"requests": LIMIT, "per_seconds": PER}})
        go = tmp_path / "go"
        ready = [tmp_path / f"ready{i}" for i in range(PROCESSES)]
        procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(path), str(r), str(go), str(CALLS)],
                                  stderr=subprocess.PIPE) for r in ready]
        deadline = time.monotonic() + 120
        while not all(r.exists() for r in ready):  # every worker imported and waiting before the first request
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "workers did not start"
            time.sleep(0.05)
        sim.clear_log()
        go.touch()
        for p in procs:
            assert p.wait(timeout=120) == 0, p.stderr.read().decode()[-2000:]
        log = sorted((e["time"], e["duration_s"]) for e in sim.request_log)
    times = [t for t, _ in log]
    n = len(times)
    assert n >= PROCESSES * CALLS
    # Never above the limit: any LIMIT+1 consecutive arrivals span at least the window (a little slack for
    # the network between the limiter's slot and the server's clock).
    assert min(times[i + LIMIT] - times[i] for i in range(n - LIMIT)) >= PER * 0.9
    # Used in full while work waits: a request counts from its answer, so request i+LIMIT may go out one window
    # after request i was answered -- and it does, without waiting longer than that.
    waits = sorted(times[i + LIMIT] - (times[i] + log[i][1]) for i in range(n - LIMIT))
    median = waits[len(waits) // 2]
    assert median <= PER * 1.2, f"request i+{LIMIT} went out {median:.2f}s after request i was answered (window {PER}s)"


def test_point_sets_of_one_source_with_different_limits_share_the_strictest(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch):
    """The reported case: two point sets on one PI host, 2/s and 4 per 2 s, sent 6 requests within 1 s."""
    monkeypatch.setenv("NAIA_RATE_LIMIT_DIR", str(tmp_path / "limits"))
    sim = PiSimulator(seed=1, points=[SimPoint(f"PLANT.{i}") for i in range(5)])
    with serve(sim) as url:
        folder = tmp_path / "sets"
        folder.mkdir()
        for name, limit in (("strict", {"requests": 2, "per_seconds": 1}), ("loose", {"requests": 4, "per_seconds": 2})):
            write_point_set(folder, name, points={"name_filter": "PLANT.*"}, source={
                "kind": "pi_web_api", "base_url": url, "data_server": "PISRV1", "rate_limit": limit})
        worker = WORKER.replace("ps = load_point_set(sys.argv[1])",
                                "from naia_backfill.settings import load_point_sets\n"
                                "ps = load_point_sets([sys.argv[1]])[sys.argv[5]]")
        go = tmp_path / "go"
        ready = {name: tmp_path / f"ready_{name}" for name in ("strict", "loose")}
        procs = [subprocess.Popen([sys.executable, "-c", worker, str(folder), str(r), str(go), "6", name],
                                  stderr=subprocess.PIPE) for name, r in ready.items()]
        deadline = time.monotonic() + 120
        while not all(r.exists() for r in ready.values()):
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "workers did not start"
            time.sleep(0.05)
        sim.clear_log()
        go.touch()
        for p in procs:
            assert p.wait(timeout=120) == 0, p.stderr.read().decode()[-2000:]
        times = sorted(e["time"] for e in sim.request_log)
    assert len(times) >= 12
    # Together never above 2 per second: any 3 consecutive arrivals span at least a second.
    assert min(times[i + 2] - times[i] for i in range(len(times) - 2)) >= 0.9
