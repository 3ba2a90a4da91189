"""The ACE IoT connector against the simulator over a loopback socket: every column of every sample equals
``sim.truth`` over multi-day windows with small pages, unconfigured and retired points, odd value texts,
offline (404) days, empty pages with cursors and every fault; the dropped counts equal ``truth_stats``."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from naia_backfill.connectors import http
from naia_backfill.connectors.ace_iot import AceIotConnector, UnknownSiteError
from naia_backfill.connectors.ace_iot_sites import list_sites
from naia_backfill.connectors.base import Credentials
from naia_backfill.dev.simulators.ace_iot.data import AcePoint
from naia_backfill.dev.simulators.ace_iot.simulator import AceIotSimulator, serve
from naia_backfill.dev.simulators.ace_iot.sites import DEMO_SITE, LARGE_SITE
from naia_backfill.errors import CredentialsError, PointSetError, UnknownPointsError
from naia_backfill.schema import SAMPLE_SCHEMA
from naia_backfill.settings import AceIotSource

pytestmark = pytest.mark.integration

TOKEN = "integration-token"
FIRST = dt.date(2024, 1, 1)
FAULT_STATUSES = (429, 500, 502, 503, 504, 520, 521, 522, 523)


@pytest.fixture(scope="module")
def sim():
    return AceIotSimulator(seed=3, token=TOKEN)


@pytest.fixture(scope="module")
def url(sim):
    with serve(sim) as base:
        yield base


@pytest.fixture(autouse=True)
def _clean(sim, tmp_path, monkeypatch):
    monkeypatch.setenv("NAIA_RATE_LIMIT_DIR", str(tmp_path / "limits"))
    sim.clear_faults()
    yield
    sim.clear_faults()


def make(url: str, site: str = DEMO_SITE, token: str = TOKEN, **kw) -> AceIotConnector:
    s = AceIotSource.model_validate({"kind": "ace_iot", "base_url": url, "site": site, "timeout_seconds": 10,
                                     "auth": {"kind": "bearer", "token_env": "ACE_TOKEN"}, "rate_limit": None, **kw})
    retrier = http.Retrier(s.max_retries, backoff_initial=0.01, backoff_max=0.05, retry_after_max=1.5)
    return AceIotConnector(s, http.build_client(s, Credentials(token=token)), retrier=retrier)


def window(day: dt.date, days: float = 1.0) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    return start, start + dt.timedelta(days=days)


def fetch(conn: AceIotConnector, points: list[str], start: dt.datetime, end: dt.datetime) -> pa.Table:
    batches = list(conn.fetch(points, start, end))
    assert all(b.schema == SAMPLE_SCHEMA for b in batches)
    return pa.Table.from_batches(batches, schema=SAMPLE_SCHEMA)


def assert_same(got: pa.Table, truth: pa.Table) -> None:
    """Every column of every row equal, in order (NaN never occurs: odd values are dropped)."""
    assert got.num_rows == truth.num_rows, f"{got.num_rows} rows fetched, {truth.num_rows} expected"
    for name in SAMPLE_SCHEMA.names:
        a, b = got.column(name).combine_chunks(), truth.column(name).combine_chunks()
        if not a.equals(b):
            diff = pc.invert(pc.fill_null(pc.equal(a, b), False)).to_numpy(zero_copy_only=False)
            i = int(np.flatnonzero(diff)[0])
            raise AssertionError(f"column {name!r} differs first at row {i}: got {got.slice(i, 1).to_pylist()}, "
                                 f"expected {truth.slice(i, 1).to_pylist()}")


def series_requests(sim: AceIotSimulator) -> list[dict]:
    return [e for e in sim.request_log if e["path"].endswith("/timeseries/paginated")]


def test_days_with_small_pages_offline_days_and_counts(sim, url):
    last = FIRST + dt.timedelta(days=40)
    offline = sim.offline_days(DEMO_SITE, FIRST, last)[0]
    days = [offline - dt.timedelta(days=1), offline, offline + dt.timedelta(days=1)]
    conn = make(url, page_size=997)
    points = conn.list_points()
    assert points == sim.points(DEMO_SITE, configured_only=True)
    sim.clear_log()
    for day in days:
        batches = list(conn.fetch(points, *window(day)))
        assert_same(pa.Table.from_batches(batches, schema=SAMPLE_SCHEMA), sim.truth(DEMO_SITE, day))
        stats, truth = conn.stats(), sim.truth_stats(DEMO_SITE, day)
        assert {k: stats[k] for k in ("samples", "served", "dropped_null", "dropped_unconfigured")} == {
            k: truth[k] for k in ("samples", "served", "dropped_null", "dropped_unconfigured")}
        if day != offline:  # the daily outage: pages with nothing in them that still carry a cursor
            assert stats["pages"] > len(batches) and stats["dropped_null"] > 0
    assert [e["status"] for e in series_requests(sim)].count(404) == 1  # the offline day


def test_a_multi_day_window_with_edges_inside_days(sim, url):
    conn = make(url, page_size=4_000)
    points = conn.list_points()
    start = dt.datetime(2024, 2, 3, 17, 30, 0, 250_000, tzinfo=dt.UTC)
    end = start + dt.timedelta(days=2, hours=3, microseconds=125)
    truth = pa.Table.from_batches(sim.truth_batches(DEMO_SITE, start, end), schema=SAMPLE_SCHEMA)
    assert_same(fetch(conn, points, start, end), truth)


@pytest.mark.parametrize(("end_inclusive", "before_s", "after_s"), [(False, 0.0, 0.0), (True, 3_600.0, 600.0)])
def test_any_edge_semantics_of_the_server(end_inclusive, before_s, after_s):
    sim = AceIotSimulator(seed=4, token=TOKEN, end_inclusive=end_inclusive, before_start_s=before_s,
                          after_end_s=after_s)
    with serve(sim) as base:
        conn = make(base, page_size=5_000)
        day = FIRST + dt.timedelta(days=2)
        assert_same(fetch(conn, conn.list_points(), *window(day)), sim.truth(DEMO_SITE, day))


def test_named_points_including_unconfigured_ones(sim, url):
    names = ["acme/demo_site/VAV 3-12/Zone Temp Setpoint", "acme/demo_site/Gebäude A/Raum 1.07/Temperatur",
             "acme/demo_site/VAV 3-12/Zone Temp", "acme/demo_site/Chiller 2/Flow (gpm)"]
    conn = make(url, page_size=3_000)
    day = FIRST + dt.timedelta(days=5)
    assert_same(fetch(conn, names, *window(day)), sim.truth(DEMO_SITE, day, points=names))


def test_every_fault_is_survived(sim, url):
    conn = make(url, page_size=2_500, timeout_seconds=1.0, max_retries=20)  # the faults come back to back
    points = conn.list_points()
    day = FIRST + dt.timedelta(days=7)
    sim.clear_log()
    sim.inject(429, retry_after=1, path_contains="timeseries")
    for status in FAULT_STATUSES[1:]:
        sim.inject(status, path_contains="timeseries")
    sim.inject("slow", seconds=1.5, path_contains="timeseries")  # longer than the 1 s timeout: retried
    sim.inject("cut", fraction=0.4, times=2, path_contains="timeseries")
    sim.inject("drop", path_contains="timeseries")
    sim.inject(503, retry_after=dt.datetime.now(dt.UTC).strftime("%a, %d %b %Y %H:%M:%S GMT"),
               path_contains="cursor=")
    assert_same(fetch(conn, points, *window(day)), sim.truth(DEMO_SITE, day))
    faults = [e.get("fault") for e in series_requests(sim) if e.get("fault")]
    assert sorted(faults) == sorted([str(s) for s in FAULT_STATUSES] + ["slow", "cut", "cut", "drop", "503"])


def test_the_servers_rate_limit_is_honoured():
    sim = AceIotSimulator(seed=5, token=TOKEN, rate_limit=(4, 1.0))
    with serve(sim) as base:
        conn = make(base, page_size=20_000)
        day = FIRST + dt.timedelta(days=3)
        assert_same(fetch(conn, conn.list_points(), *window(day)), sim.truth(DEMO_SITE, day))
    limited = [e for e in sim.request_log if e["status"] == 429]
    assert limited, "the test should have hit the simulator's limit"


def test_the_large_site_pages_with_unconfigured_points(sim, url):
    conn = make(url, site=LARGE_SITE, page_size=50_000)
    points = conn.list_points()
    assert len(points) == 4_583
    start = dt.datetime(2024, 3, 1, 11, tzinfo=dt.UTC)
    end = start + dt.timedelta(minutes=50)
    truth = pa.Table.from_batches(sim.truth_batches(LARGE_SITE, start, end), schema=SAMPLE_SCHEMA)
    assert_same(fetch(conn, points, start, end), truth)
    assert conn.stats()["dropped_unconfigured"] == 217 * 50


def test_points_added_while_serving():
    sim = AceIotSimulator(seed=6, token=TOKEN)
    with serve(sim) as base:
        sim.add_point(DEMO_SITE, AcePoint("acme/demo_site/New/Sensor 9", interval_s=30.0, phase_s=1.5))
        conn = make(base, page_size=7_000)
        points = conn.list_points()
        assert "acme/demo_site/New/Sensor 9" in points
        day = FIRST + dt.timedelta(days=1)
        assert_same(fetch(conn, points, *window(day)), sim.truth(DEMO_SITE, day))


def test_bad_token_unknown_site_and_unknown_points_fail_clearly(sim, url):
    with pytest.raises(CredentialsError, match="HTTP 401.*JWT Signature Invalid"):
        make(url, token="forged").list_points()
    with pytest.raises(UnknownSiteError, match=r"site 'nowhere' not found; sites this token sees: demo_site, "):
        make(url, site="nowhere").list_points()
    with pytest.raises(UnknownPointsError, match=r"1 point\(s\) not found .*acme/demo_site/Nope"):
        list(make(url).fetch(["acme/demo_site/AHU-1/Fan Status", "acme/demo_site/Nope"], *window(FIRST)))


def test_every_site_of_the_token_is_listed_and_cached(sim, url, tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setenv("ACE_TOKEN", TOKEN)
    settings = AceIotSource.model_validate({"kind": "ace_iot", "base_url": url, "sites": "*", "rate_limit": None,
                                            "auth": {"kind": "bearer", "token_env": "ACE_TOKEN"}})
    sim.clear_log()
    assert list_sites(settings) == list_sites(settings) == [DEMO_SITE, LARGE_SITE]
    assert len([e for e in sim.request_log if e["path"] == "/api/sites/"]) == 1  # the second read the cache
    monkeypatch.setenv("ACE_TOKEN", "forged")
    assert list_sites(settings, max_age_s=0) == [DEMO_SITE, LARGE_SITE]  # unreachable: the last list
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "fresh"))
    with pytest.raises(PointSetError, match="list sites for sites: '\\*'.*401"):
        list_sites(settings)
