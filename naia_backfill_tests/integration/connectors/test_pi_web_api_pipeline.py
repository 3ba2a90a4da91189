"""The PI connector's pipelined requests seen from the simulator: how many are answered at once, a failed one
retried in place, the rate limit honoured; every column still equal to ``sim.truth``."""

from __future__ import annotations

import datetime as dt

import pytest

from naia_backfill.dev.simulators.pi_web_api.simulator import PiSimulator, SimPoint, serve
from naia_backfill_tests.integration.connectors.test_pi_web_api import (
    DAY,
    assert_same,
    fetch_table,
    make,
    recorded_requests,
)

pytestmark = pytest.mark.integration

NEXT = DAY + dt.timedelta(days=1)
NAMES = [f"PIPE{i:02d}" for i in range(12)]
SLOW_S = 3.0  # the first two requests' answers are held this long; the others go on meanwhile


@pytest.fixture(scope="module")
def sim():
    return PiSimulator(seed=7, points=[SimPoint(n, interval_s=120.0 * (1 + i % 3), jitter=i % 2 == 1,
                                                burst_every=5, burst_size=3) for i, n in enumerate(NAMES)])


@pytest.fixture(scope="module")
def url(sim):
    with serve(sim) as base:
        yield base


@pytest.fixture(autouse=True)
def _clean(sim):
    sim.clear_faults()
    yield
    sim.clear_faults()


def most_at_once(entries: list[dict]) -> int:
    """The most requests the server was answering at the same time (from its log: start, duration)."""
    edges = sorted([(e["time"], 1) for e in entries] + [(e["time"] + e["duration_s"], -1) for e in entries])
    now = most = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


@pytest.mark.parametrize("depth,concurrent,most", [(1, 1, 1), (3, 1, 1), (3, 3, 3), (2, 4, 2)])
def test_the_server_answers_at_most_the_allowed_requests_at_once(sim, url, depth, concurrent, most):
    conn = make(url, points_per_request=2, max_count=500, pipeline_depth=depth, concurrent_requests=concurrent)
    conn.missing_points(NAMES)
    sim.clear_log()
    for name in NAMES[0], NAMES[2]:  # the first two requests (two points each)
        sim.inject("slow", times=1, path_contains=sim.webid(name), seconds=SLOW_S)
    assert_same(fetch_table(conn, NAMES, DAY, NEXT), sim.truth(NAMES, DAY, NEXT))
    entries = recorded_requests(sim)
    assert len(entries) > 2 * depth
    assert most_at_once(entries) == most  # the held requests did not stop the next ones, nor let more through


def test_a_failed_request_is_retried_in_place(sim, url):
    conn = make(url, points_per_request=3, max_count=5000, pipeline_depth=3, concurrent_requests=3)
    conn.missing_points(NAMES)
    sim.clear_log()
    sim.inject("503", times=1, path_contains=sim.webid(NAMES[3]))  # the second request, with NAMES[3:6]
    batches = list(conn.fetch(NAMES, DAY, NEXT))
    first_points = [sorted(set(b.column("point").to_pylist())) for b in batches]
    assert first_points[:4] == [NAMES[0:3], NAMES[3:6], NAMES[6:9], NAMES[9:12]]
    assert sum(e.get("fault") == "503" for e in recorded_requests(sim)) == 1
    assert_same(fetch_table(conn, NAMES, DAY, NEXT), sim.truth(NAMES, DAY, NEXT))


def test_pipelined_requests_keep_to_the_client_rate_limit():
    points = [SimPoint(f"R{i}", interval_s=600.0) for i in range(16)]
    sim = PiSimulator(seed=3, points=points, rate_limit_per_s=10)
    names = [p.name for p in points]
    with serve(sim) as url:
        conn = make(url, max_count=10, points_per_request=2, pipeline_depth=8, concurrent_requests=8,
                    rate_limit={"requests": 8, "per_seconds": 1.0}, pool="naia_test_pi_pipeline_rate")
        end = DAY + dt.timedelta(hours=4)
        assert_same(fetch_table(conn, names, DAY, end), sim.truth(names, DAY, end))
    assert len(recorded_requests(sim)) > 16
    assert not [e for e in sim.request_log if e["status"] == 429]
