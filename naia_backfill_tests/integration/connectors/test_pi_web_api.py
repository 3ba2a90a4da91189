"""The PI Web API connector against the simulator over a loopback socket, compared with ``sim.truth``."""

from __future__ import annotations

import datetime as dt
import email.utils
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from naia_backfill.connectors import http
from naia_backfill.connectors.base import Credentials
from naia_backfill.connectors.pi_web_api import PiWebApiConnector
from naia_backfill.errors import SourceError, UnknownPointsError
from naia_backfill.schema import SAMPLE_SCHEMA
from naia_backfill.settings import PiWebApiSource
from naia_backfill.dev.simulators.pi_web_api.simulator import PiSimulator, SimPoint, serve

pytestmark = pytest.mark.integration

DAY = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
ERROR_TEXTS = {"[-11059] No Good Data For Calculation", "Error reading the value from the PI Data Archive.",
               "[-10722] PINET: Timeout on PI RPC or System Call."}


@pytest.fixture(scope="module")
def sim():
    return PiSimulator(seed=11)


@pytest.fixture(scope="module")
def url(sim):
    with serve(sim) as base:
        yield base


@pytest.fixture(autouse=True)
def _clean(sim):
    sim.clear_faults()
    yield
    sim.clear_faults()


def make(url: str, credentials: Credentials | None = None, rows_per_request: int = 1_000_000,
         **kw) -> PiWebApiConnector:
    s = PiWebApiSource.model_validate({"kind": "pi_web_api", "base_url": url, "data_server": "PISRV1",
                                       "timeout_seconds": 10, **kw})
    client = http.build_client(s, credentials or Credentials())
    retrier = http.Retrier(s.max_retries, backoff_initial=0.01, backoff_max=0.05, retry_after_max=0.3)
    return PiWebApiConnector(s, client, retrier=retrier, rows_per_request=rows_per_request)


def fetch_table(conn: PiWebApiConnector, names: list[str], start: dt.datetime, end: dt.datetime) -> pa.Table:
    """Fetched rows, each point's rows together in ``names`` order, each point's own order kept."""
    batches = list(conn.fetch(names, start, end))
    assert all(b.schema == SAMPLE_SCHEMA for b in batches)
    table = pa.Table.from_batches(batches, schema=SAMPLE_SCHEMA)
    rank = pc.index_in(table.column("point"), pa.array(names))
    return table.take(pc.sort_indices(pa.table({"rank": rank}), sort_keys=[("rank", "ascending")]))


def assert_same(got: pa.Table, truth: pa.Table) -> None:
    assert got.num_rows == truth.num_rows, f"{got.num_rows} rows fetched, {truth.num_rows} expected"
    for name in SAMPLE_SCHEMA.names:
        a, b = got.column(name).combine_chunks(), truth.column(name).combine_chunks()
        if not a.equals(b):
            diff = pc.invert(pc.fill_null(pc.equal(a, b), False)).to_numpy(zero_copy_only=False)
            diff |= (a.is_null().to_numpy(zero_copy_only=False) != b.is_null().to_numpy(zero_copy_only=False))
            i = int(np.flatnonzero(diff)[0])
            raise AssertionError(f"column {name!r} differs first at row {i}: got {got.slice(i, 1).to_pylist()}, "
                                 f"expected {truth.slice(i, 1).to_pylist()}")


def recorded_requests(sim: PiSimulator) -> list[dict]:
    return [e for e in sim.request_log if e["path"].endswith("/streamsets/recorded")]


def test_three_days_of_every_default_point_day_by_day(sim, url):
    conn = make(url)
    names = conn.list_points("*")
    assert sorted(names) == sorted(p.name for p in sim.points)
    for d in range(3):
        start, end = DAY + dt.timedelta(days=d), DAY + dt.timedelta(days=d + 1)
        assert_same(fetch_table(conn, names, start, end), sim.truth(names, start, end))


def test_multi_day_window_with_small_pages(sim, url):
    names = ["SINUSOID", "CDM158", "OPERATOR.NOTE", "BURST.VALVE", "SPARSE.LAB", "NODATA.1", "LEVEL101.I16"]
    conn = make(url, max_count=97, points_per_request=3)
    start, end = DAY + dt.timedelta(hours=5), DAY + dt.timedelta(days=2, hours=7, microseconds=1)
    assert_same(fetch_table(conn, names, start, end), sim.truth(names, start, end))


def test_page_boundaries_inside_runs_of_equal_timestamps():
    runs = [SimPoint("RUNS.A", interval_s=600.0, burst_every=2, burst_size=6),
            SimPoint("RUNS.B", interval_s=300.0, jitter=True, burst_every=3, burst_size=4),
            SimPoint("RUNS.D", "Digital", 450.0, "Modes", burst_every=2, burst_size=5),
            SimPoint("RUNS.S", "String", 900.0, burst_every=2, burst_size=3)]
    sim = PiSimulator(seed=5, points=runs)
    names = [p.name for p in runs]
    truth = sim.truth(names, DAY, DAY + dt.timedelta(days=1))
    keys = pa.table({"p": truth.column("point"), "t": truth.column("ts")})
    keys = keys.group_by(["p", "t"]).aggregate([([], "count_all")])
    assert pc.max(keys.column("count_all")).as_py() >= 5  # runs longer than the 4 rows a shared page gives
    with serve(sim) as url:
        conn = make(url, max_count=7, points_per_request=3, rows_per_request=12)
        assert_same(fetch_table(conn, names, DAY, DAY + dt.timedelta(days=1)), truth)
    assert len(recorded_requests(sim)) < truth.num_rows  # every page brings new events: no request loop


def test_a_run_longer_than_max_count_fails_clearly():
    sim = PiSimulator(seed=5, points=[SimPoint("RUNS.LONG", interval_s=600.0, burst_every=1, burst_size=12)])
    with serve(sim) as url:
        conn = make(url, max_count=5)
        with pytest.raises(SourceError, match=r"'RUNS.LONG' has at least 5 events at .*raise max_count"):
            list(conn.fetch(["RUNS.LONG"], DAY, DAY + dt.timedelta(days=1)))
        assert len(recorded_requests(sim)) <= 4


@pytest.mark.parametrize("fault,kw", [("500", {}), ("502", {}), ("503", {"retry_after": 0}), ("429", {}),
                                      ("429", {"retry_after": "date"}), ("cut", {}), ("cut", {"fraction": 0.01}),
                                      ("webexception", {}), ("slow", {"seconds": 2.5})])
def test_injected_faults_are_retried_and_lose_nothing(sim, url, fault, kw):
    if kw.get("retry_after") == "date":
        kw = {"retry_after": email.utils.formatdate(time.time() + 1, usegmt=True)}
    names = ["SINUSOID", "CDT158", "CDM158", "OPERATOR.NOTE"]
    conn = make(url, max_count=2000, points_per_request=2, timeout_seconds=1.0)
    conn.missing_points(names)
    sim.clear_log()
    sim.inject(fault, times=2, path_contains="streamsets", **kw)
    got = fetch_table(conn, names, DAY, DAY + dt.timedelta(days=1))
    assert_same(got, sim.truth(names, DAY, DAY + dt.timedelta(days=1)))
    deadline = time.monotonic() + 10  # a slow answer is logged when the server finishes it, after the client left
    while sum(e.get("fault") == fault for e in sim.request_log) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sum(e.get("fault") == fault for e in sim.request_log) == 2


def test_error_values_are_kept_as_bad_samples(sim, url):
    names = ["SINUSOID", "FLOW101.F64", "CDM158"]
    conn = make(url)
    sim.inject("value_errors", times=1, path_contains="streamsets", every=7)
    got = fetch_table(conn, names, DAY, DAY + dt.timedelta(days=1))
    truth = sim.truth(names, DAY, DAY + dt.timedelta(days=1))
    errors = pc.is_in(got.column("text"), pa.array(sorted(ERROR_TEXTS))).to_numpy(zero_copy_only=False)
    errors &= ~pc.is_in(truth.column("text"), pa.array(sorted(ERROR_TEXTS))).fill_null(False).to_numpy(
        zero_copy_only=False)
    assert errors.sum() > 100
    bad = got.filter(pa.array(errors))
    assert bad.column("value").null_count == bad.num_rows
    assert not any(bad.column("good").to_pylist()) and not any(bad.column("is_system").to_pylist())
    assert bad.column("ts").equals(truth.filter(pa.array(errors)).column("ts"))
    assert_same(got.filter(pa.array(~errors)), truth.filter(pa.array(~errors)))


def test_401_fails_at_once_naming_credentials(sim, url):
    conn = make(url)
    conn.missing_points(["SINUSOID"])
    sim.clear_log()
    sim.inject("401", times=5)
    with pytest.raises(SourceError, match="refused the credentials"):
        list(conn.fetch(["SINUSOID"], DAY, DAY + dt.timedelta(days=1)))
    assert len(sim.request_log) == 1


def test_webexception_with_a_client_status_is_not_retried(sim, url):
    conn = make(url)
    conn.missing_points(["SINUSOID"])
    sim.clear_log()
    sim.inject("webexception", times=5, status_code=400, message="The query is invalid.")
    with pytest.raises(SourceError, match="The query is invalid"):
        list(conn.fetch(["SINUSOID"], DAY, DAY + dt.timedelta(days=1)))
    assert len(sim.request_log) == 1


def test_basic_auth_against_a_server_that_requires_it():
    sim = PiSimulator(seed=1, points=[SimPoint("TAG1")], username="svc", password="pw-0815")
    with serve(sim) as url:
        auth = {"kind": "basic", "username_env": "NAIA_PI_USER", "password_env": "NAIA_PI_PASSWORD"}
        good = make(url, Credentials(username="svc", password="pw-0815"), auth=auth)
        assert good.resolve(name_filter="TAG*") == ["TAG1"]
        bad = make(url, Credentials(username="svc", password="wrong-secret"), auth=auth)
        with pytest.raises(SourceError, match="refused the credentials") as e:
            bad.resolve(names=["TAG1"])
        assert "wrong-secret" not in str(e.value) and "pw-0815" not in str(e.value)


def test_unknown_points_are_listed(url):
    conn = make(url)
    with pytest.raises(UnknownPointsError) as e:
        conn.resolve(names=["SINUSOID", "NOPE.1", "cdt158", "NOPE.2"])
    assert e.value.points == ["NOPE.1", "NOPE.2"]


def test_unreachable_server_names_the_url():
    with socket_free_port() as port:
        conn = make(f"http://127.0.0.1:{port}/piwebapi", max_retries=1)
        with pytest.raises(SourceError, match=rf"cannot connect to http://127.0.0.1:{port}/piwebapi/dataservers"):
            conn.list_points()


def test_client_side_rate_limit_keeps_the_server_from_refusing():
    sim = PiSimulator(seed=2, points=[SimPoint(f"R{i}", interval_s=600.0) for i in range(6)], rate_limit_per_s=10)
    with serve(sim) as url:
        conn = make(url, max_count=10, points_per_request=2,
                    rate_limit={"requests": 8, "per_seconds": 1.0}, pool="naia_test_pi_rate_limit")
        names = [f"R{i}" for i in range(6)]
        assert_same(fetch_table(conn, names, DAY, DAY + dt.timedelta(hours=6)),
                    sim.truth(names, DAY, DAY + dt.timedelta(hours=6)))
    assert len(sim.request_log) > 15
    assert not [e for e in sim.request_log if e["status"] == 429]


class socket_free_port:
    """A loopback port with nothing listening on it."""

    def __enter__(self) -> int:
        import socket

        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        return self.port

    def __exit__(self, *exc: object) -> None:
        pass
