"""ACE IoT connector against a small in-test fake of the API (httpx.MockTransport): paging, window edges,
dropped samples and their counts, errors."""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import parse_qsl

import httpx
import pyarrow as pa
import pytest

from naia_backfill.connectors import http
from naia_backfill.connectors.ace_iot import AceIotConnector, UnknownSiteError, build, iso
from naia_backfill.connectors.base import Credentials
from naia_backfill.errors import CredentialsError, PointSetError, SourceError, UnknownPointsError
from naia_backfill.schema import SAMPLE_SCHEMA
from naia_backfill.settings import AceIotSource

DAY = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
NEXT = DAY + dt.timedelta(days=1)
SITE = "plant_1"
CONFIGURED = ["p/A", "p/B x", "p/C"]
POINTS = [*CONFIGURED, "p/not configured"]


def t(seconds: float) -> str:
    """A sample time ``seconds`` after DAY, as ACE writes it (written independently of the connector)."""
    text = (DAY + dt.timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")
    return text


class FakeAce:
    """Sites, point lists (page/per_page) and a paginated series served from ``samples`` (dicts as on the wire),
    ``page_size`` at a time; ``empty_pages`` inserts pages with no sample but a cursor; ``faults`` are callables
    tried before each series request (a response or an exception answers it instead)."""

    def __init__(self, samples: list[dict], token: str = "tok", empty_pages: int = 0) -> None:
        self.samples, self.token, self.empty_pages = samples, token, empty_pages
        self.faults: list = []
        self.requests: list[httpx.Request] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return httpx.Response(401, json={"message": "JWT Signature Invalid"})
        path = request.url.path.removeprefix("/api/")
        q = dict(parse_qsl(request.url.query.decode()))
        if path == "sites/":
            return self._list(q, [{"name": SITE}, {"name": "other"}])
        if not path.startswith(f"sites/{SITE}/"):
            return httpx.Response(404, json={"message": "Site not found"})
        what = path.removeprefix(f"sites/{SITE}/")
        if what in ("points", "configured_points"):
            names = CONFIGURED if what == "configured_points" else POINTS
            return self._list(q, [{"name": n, "collect_interval": 60} for n in names])
        if self.faults:
            fault = self.faults.pop(0)
            result = fault(request)
            if result is not None:
                return result
        return self._series(q)

    def _list(self, q: dict, items: list[dict]) -> httpx.Response:
        page, per = int(q["page"]), int(q["per_page"])
        pages = -(-len(items) // per)
        return httpx.Response(200, json={"page": page, "pages": pages, "per_page": per, "total": len(items),
                                         "items": items[(page - 1) * per : page * per]})

    def _series(self, q: dict) -> httpx.Response:
        if not self.samples:
            return httpx.Response(404, json={"message": "No data found"})
        pos = int(q.get("cursor") or 0)
        size = int(q["page_size"])
        if pos < self.empty_pages:
            body = {"point_samples": [], "next_cursor": str(pos + 1), "has_more": True}
            return httpx.Response(200, json=body)
        lo = pos - self.empty_pages
        chunk = self.samples[lo : lo + size]
        more = lo + size < len(self.samples)
        body = {"point_samples": chunk, "next_cursor": str(pos + size) if more else None, "has_more": more}
        return httpx.Response(200, content=json.dumps(body).encode())


def make(fake: FakeAce, token: str = "tok", **kw) -> AceIotConnector:
    s = AceIotSource.model_validate({"kind": "ace_iot", "base_url": "http://ace.test/api", "site": SITE,
                                     "auth": {"kind": "bearer", "token_env": "ACE_TOKEN"}, "rate_limit": None, **kw})
    client = http.build_client(s, Credentials(token=token), transport=httpx.MockTransport(fake.handler))
    return AceIotConnector(s, client, retrier=http.Retrier(s.max_retries, sleep=lambda _s: None))


def fetch(conn: AceIotConnector, points=CONFIGURED, start=DAY, end=NEXT) -> pa.Table:
    batches = list(conn.fetch(points, start, end))
    assert all(b.schema == SAMPLE_SCHEMA for b in batches)
    return pa.Table.from_batches(batches, schema=SAMPLE_SCHEMA)


def sample(name: str, value, seconds: float) -> dict:
    return {"name": name, "value": value, "time": t(seconds)}


def test_values_parse_exactly_and_odd_ones_are_dropped_and_counted():
    wire = [
        sample("p/A", "45.5", 0), sample("p/A", "0.1", 60), sample("p/B x", "nan", 60), sample("p/B x", "", 61),
        sample("p/B x", None, 62), sample("p/C", "inf", 63), sample("p/C", "-inf", 64), sample("p/C", "-1e-3", 65),
        sample("p/not configured", "7", 65), sample("retired/point", "8", 66), sample("p/C", "13", 67),
        sample("p/A", "1.7976931348623157e308", 68), sample("p/A", "active", 69),
    ]
    conn = make(FakeAce(wire))
    got = fetch(conn)
    assert got.column("point").to_pylist() == ["p/A", "p/A", "p/C", "p/C", "p/A", "p/A"]
    assert got.column("value").to_pylist() == [45.5, 0.1, -0.001, 13.0, 1.7976931348623157e308, None]
    assert got.column("text").to_pylist() == [None] * 5 + ["active"]  # not a number: kept as text
    assert got.column("good").to_pylist() == [True] * 6
    assert conn.stats() == {"samples": 6, "served": 13, "dropped_null": 5, "dropped_unconfigured": 2, "pages": 1}


def test_window_is_half_open_whatever_the_server_serves():
    wire = [sample("p/A", "1", -30), sample("p/A", "2", 0), sample("p/A", "3", 86_399.999999),
            sample("p/A", "4", 86_400), sample("p/A", "5", 86_430)]
    conn = make(FakeAce(wire))
    got = fetch(conn, ["p/A"])
    assert got.column("value").to_pylist() == [2.0, 3.0]
    ns = got.column("ts").cast(pa.int64()).to_pylist()
    assert ns == [1_704_067_200 * 10**9, 1_704_067_200 * 10**9 + 86_399_999_999_000]
    assert conn.stats()["served"] == 2


def test_pages_follow_the_cursor_through_empty_pages():
    wire = [sample(CONFIGURED[i % 3], str(i), i * 10.0) for i in range(250)]
    fake = FakeAce(wire, empty_pages=3)
    conn = make(fake, page_size=40)
    got = fetch(conn)
    assert got.column("value").to_pylist() == [float(i) for i in range(250)]
    series = [r for r in fake.requests if "timeseries" in r.url.path]
    assert len(series) == 3 + 7 and conn.stats()["pages"] == 10
    first = dict(parse_qsl(series[0].url.query.decode()))
    assert first == {"start_time": "2024-01-01T00:00:00Z", "end_time": "2024-01-02T00:00:00Z",
                     "page_size": "40", "raw_data": "true"}


def test_a_404_first_page_is_an_empty_window_but_a_404_later_page_fails():
    conn = make(FakeAce([]))
    assert fetch(conn).num_rows == 0 and conn.stats()["pages"] == 0
    fake = FakeAce([sample("p/A", str(i), i) for i in range(10)])
    fake.faults = [lambda r: None, lambda r: httpx.Response(404, json={"message": "No data found"})]
    with pytest.raises(SourceError, match="404"):
        fetch(make(fake, page_size=4))


def test_transient_failures_and_cut_bodies_are_retried():
    fake = FakeAce([sample("p/A", str(i), i) for i in range(10)])
    fake.faults = [
        lambda r: httpx.Response(429, headers={"Retry-After": "0"}, json={"message": "Too Many Requests"}),
        lambda r: httpx.Response(520, text="error code: 520"),
        lambda r: httpx.Response(200, content=b'{"point_samples":[{"name":"p/A","val'),
        lambda r: None,
        lambda r: httpx.Response(503, json={"message": "busy"}),
    ]
    assert fetch(make(fake, page_size=4)).column("value").to_pylist() == [float(i) for i in range(10)]


def test_unknown_points_site_and_token_fail_clearly():
    with pytest.raises(UnknownPointsError, match=r"1 point\(s\) not found .*: nope"):
        fetch(make(FakeAce([])), ["p/A", "nope"])
    assert fetch(make(FakeAce([])), ["p/not configured"]).num_rows == 0  # listed but not configured: allowed
    conn = make(FakeAce([]), site="gone")
    with pytest.raises(UnknownSiteError, match=r"site 'gone' not found; sites this token sees: plant_1, other"):
        conn.list_points()
    with pytest.raises(CredentialsError, match="JWT Signature Invalid"):
        make(FakeAce([]), token="wrong").list_points()


def test_a_point_going_back_in_time_or_a_repeated_cursor_fails():
    wire = [sample("p/A", "1", 10), sample("p/B x", "2", 5), sample("p/A", "3", 9)]
    with pytest.raises(SourceError, match=r"'p/A' go back in time"):
        fetch(make(FakeAce(wire)))
    interleaved = [sample("p/A", "1", 10), sample("p/B x", "2", 5), sample("p/A", "3", 11)]
    assert fetch(make(FakeAce(interleaved))).num_rows == 3  # other points may interleave out of order
    fake = FakeAce([sample("p/A", "1", 10)])
    fake.faults = [lambda r: httpx.Response(200, json={"point_samples": [], "next_cursor": "x", "has_more": True})] * 2
    with pytest.raises(SourceError, match="cursor it was given again"):
        fetch(make(fake))


def test_points_lists_filters_and_estimate():
    conn = make(FakeAce([]), list_page_size=2)
    assert conn.list_points() == CONFIGURED
    assert conn.list_points("P/B*") == ["p/B x"]
    assert make(FakeAce([]), points_from="all").list_points("*configured") == ["p/not configured"]
    estimate = conn.estimate(3, 2)
    assert estimate.samples == 3 * 1440 * 2 and estimate.requests == 2  # 4 points x 1440 fit one 10k page


def test_several_sites_are_refused_by_the_connector():
    s = AceIotSource.model_validate({"kind": "ace_iot", "base_url": "http://ace.test/api", "sites": ["a", "b"]})
    with pytest.raises(PointSetError, match="one point set per site"):
        build(s, Credentials())


def test_iso_floors_starts_and_ceils_ends():
    ns = 1_704_067_200 * 10**9 + 1_500
    assert iso(ns) == "2024-01-01T00:00:00.000001Z"
    assert iso(ns, ceil=True) == "2024-01-01T00:00:00.000002Z"
    assert iso(1_704_067_200 * 10**9, ceil=True) == "2024-01-01T00:00:00Z"
