"""PI Web API connector against recorded JSON and a small in-test fake server (httpx.MockTransport)."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner

from naia_backfill.dev.simulators.pi_web_api import RECORDED_DIR
from naia_backfill.connectors import http
from naia_backfill.connectors.base import Credentials
from naia_backfill.connectors.pi_web_api import PiWebApiConnector, build
from naia_backfill.connectors.pi_web_api_json import iso, parse_streamset
from naia_backfill.errors import SourceError, UnknownPointsError
from naia_backfill.schema import SAMPLE_SCHEMA, conform
from naia_backfill.settings import PiWebApiSource

FIXTURES = RECORDED_DIR
DAY = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
NEXT = DAY + dt.timedelta(days=1)
S = 1_000_000_000
T0 = 1_704_067_200 * S  # DAY in ns


def pi_time(ns: int) -> str:
    """PI's timestamp form, written independently of the connector: 0-7 fractional digits, 'Z'."""
    text = str(np.datetime64(ns, "ns"))[:27]
    return text.rstrip("0").rstrip(".") + "Z"


def parse_time(text: str) -> int:
    return int(np.datetime64(text.rstrip("Z"), "ns").astype(np.int64))


class FakePI:
    """Enough of PI Web API for the connector: data servers, point search and lookup, streamsets/recorded.

    ``series[name]`` is a list of (ns, value, good) events in order. ``faults`` is a list of callables tried
    before each streamsets request; one returning a response or raising answers that request instead.
    """

    def __init__(self, series: dict[str, list[tuple]], per_request_max_count: bool = False,
                 shuffle_streams: bool = False) -> None:
        self.series = series
        self.ids = {name: f"F1DPfake{i:04d}{name}" for i, name in enumerate(series)}
        self.names = {w: n for n, w in self.ids.items()}
        self.per_request = per_request_max_count
        self.shuffle = shuffle_streams
        self.faults: list = []
        self.requests: list[httpx.Request] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path.removeprefix("/piwebapi/")
        q = parse_qsl(request.url.query.decode(), keep_blank_values=True)
        p = dict(q)
        if path == "dataservers":
            return httpx.Response(200, json={"Links": {}, "Items": [
                {"WebId": "F1DSother", "Name": "OTHER"}, {"WebId": "F1DSsrv1", "Name": "PISRV1"}]})
        if path == "dataservers/F1DSsrv1/points":
            import fnmatch
            hits = [n for n in self.series if fnmatch.fnmatchcase(n.upper(), p["nameFilter"].upper())]
            page = hits[int(p["startIndex"]): int(p["startIndex"]) + int(p["maxCount"])]
            return httpx.Response(200, json={"Items": [{"WebId": self.ids[n], "Name": n} for n in page]})
        if path == "points":
            name = p["path"].split("\\")[-1]
            if not p["path"].startswith("\\\\PISRV1\\") or name.upper() not in {n.upper() for n in self.series}:
                return httpx.Response(404, json={"Errors": [f"PI Point not found '{p['path']}'."]})
            real = next(n for n in self.series if n.upper() == name.upper())
            return httpx.Response(200, json={"WebId": self.ids[real], "Name": real, "PointType": "Float32"})
        if path == "streamsets/recorded":
            for fault in list(self.faults):
                self.faults.remove(fault)
                answer = fault(request)
                if answer is not None:
                    return answer
            return self.recorded([v for k, v in q if k == "webId"], p)
        return httpx.Response(404, json={"Errors": ["no route"]})

    def recorded(self, web_ids: list[str], p: dict) -> httpx.Response:
        assert p["boundaryType"] == "Inside"
        lo, hi, max_count = parse_time(p["startTime"]), parse_time(p["endTime"]), int(p["maxCount"])
        budget = max_count
        streams = []
        for w in web_ids:
            events = [e for e in self.series[self.names[w]] if lo <= e[0] <= hi]
            take = min(len(events), budget if self.per_request else max_count)
            budget -= take
            streams.append({"WebId": w, "Name": self.names[w], "Path": "", "Links": {}, "UnitsAbbreviation": "",
                            "Items": [{"Timestamp": pi_time(t), "Value": v, "UnitsAbbreviation": "", "Good": g,
                                       "Questionable": False, "Substituted": False, "Annotated": False}
                                      for t, v, g in events[:take]]})
        if self.shuffle:
            streams.reverse()
        return httpx.Response(200, json={"Links": {}, "Items": streams})

    def truth(self, name: str, lo: int = T0, hi: int = T0 + 86_400 * S) -> list[tuple]:
        return [(t, v) for t, v, _ in self.series[name] if lo <= t < hi]


def settings(**kw) -> PiWebApiSource:
    base = {"kind": "pi_web_api", "base_url": "https://pi.example/piwebapi", "data_server": "PISRV1",
            "max_count": 5, "points_per_request": 3}
    return PiWebApiSource.model_validate({**base, **kw})


def sleeps() -> tuple[http.Retrier, list[float]]:
    slept: list[float] = []
    return http.Retrier(3, sleep=slept.append, rng=random.Random(0)), slept


def connector(fake: FakePI, rows_per_request: int = 1_000_000, **kw) -> PiWebApiConnector:
    s = settings(**kw)
    client = http.build_client(s, Credentials(), transport=httpx.MockTransport(fake.handler))
    return PiWebApiConnector(s, client, retrier=sleeps()[0], rows_per_request=rows_per_request)


def fetched(conn: PiWebApiConnector, names, start=DAY, end=NEXT) -> dict[str, list[tuple]]:
    batches = list(conn.fetch(names, start, end))
    out: dict[str, list[tuple]] = {n: [] for n in names}
    for b in batches:
        assert b.schema == SAMPLE_SCHEMA
        conform(b)
        for point, ts, value in zip(b.column("point").to_pylist(), b.column("ts").cast(pa.int64()).to_pylist(),
                                    b.column("value").to_pylist(), strict=True):
            out[point].append((ts, value))
    return out


def series(n: int, step: int = 60 * S, start: int = T0, first: float = 0.0) -> list[tuple]:
    return [(start + i * step, first + i, True) for i in range(n)]


# --- parsing ------------------------------------------------------------------------------------------------

def test_every_value_kind_from_a_recorded_response():
    page = parse_streamset((FIXTURES / "connector_streamsets_kinds.json").read_bytes())
    b = page.batch(["SINUSOID", "VALVE1", "EMPTY"])
    assert b.schema == SAMPLE_SCHEMA and b.num_rows == 12
    rows = b.to_pylist()
    ts = b.column("ts").cast(pa.int64()).to_pylist()
    assert ts[:3] == [T0, T0 + 123_456_700, T0 + 123_456_700]  # 7 digits, exact to 100 ns
    assert ts[3:6] == [T0 + 1_500_000_000, T0 + 2 * S + 100, T0 + 3_999_000_000]
    assert ts[10] == T0 - 100  # 23:59:59.9999999 the day before
    assert [r["value"] for r in rows] == [12.3, -7.0, 1e300, None, 1.0, 0.0, None, None, None, None, None, None]
    assert [r["text"] for r in rows] == [None, None, None, "I/O Timeout", None, None, None,
                                         "[-11059] No Good Data For Calculation; second message", "Bad Value",
                                         "Error reading the value from the PI Data Archive.", "Open", "Shutdown"]
    assert [r["state_code"] for r in rows] == [None, None, None, 246, None, None, None, None, None, None, 1, 254]
    assert [r["is_system"] for r in rows] == [False, False, False, True] + [False] * 7 + [True]
    assert [r["good"] for r in rows] == [True, True, True, False, True, True, True, False, False, False, True, False]
    assert [r["questionable"] for r in rows] == [False, True] + [False] * 10
    assert [r["substituted"] for r in rows] == [False, False, True] + [False] * 9
    assert [r["annotated"] for r in rows] == [False, False, True] + [False] * 9
    assert [r["point"] for r in rows] == ["SINUSOID"] * 10 + ["VALVE1"] * 2


def test_all_numeric_page_takes_the_fast_path_and_keeps_equal_timestamp_order():
    items = [{"Timestamp": "2024-01-01T00:00:00Z", "Value": float(i), "Good": True} for i in range(4)]
    page = parse_streamset(json.dumps({"Items": [{"WebId": "A", "Items": items}]}).encode())
    b = page.batch(["A"])
    assert b.column("value").to_pylist() == [0.0, 1.0, 2.0, 3.0]
    assert b.column("text").null_count == 4 and b.column("state_code").null_count == 4


def test_cut_body_and_webexception_are_transient_bad_shape_is_not():
    body = (FIXTURES / "connector_streamsets_kinds.json").read_bytes()
    with pytest.raises(http.TransientError, match="cut-off"):
        parse_streamset(body[: len(body) // 2])
    with pytest.raises(http.TransientError, match="HTTP 503"):
        parse_streamset(b'{"WebException":{"Errors":["busy"],"StatusCode":503}}')
    with pytest.raises(http.HttpStatusError, match="bad webId"):
        parse_streamset(b'{"WebException":{"Errors":["bad webId"],"StatusCode":400}}')
    with pytest.raises(SourceError, match="unexpected response"):
        parse_streamset(b'{"Items":[{"Items":[{"Value":1}]}]}')  # no Timestamp
    with pytest.raises(SourceError, match="not in time order"):
        parse_streamset(b'{"Items":[{"Name":"X","Items":[{"Timestamp":"2024-01-02T00:00:00Z"},'
                        b'{"Timestamp":"2024-01-01T00:00:00Z"}]}]}')


def test_iso_formats_100ns_ticks():
    assert iso(T0) == "2024-01-01T00:00:00Z"
    assert iso(T0 + 123_456_700) == "2024-01-01T00:00:00.1234567Z"
    assert iso(T0 + 500_000_000) == "2024-01-01T00:00:00.5Z"
    assert iso(T0 + 1) == "2024-01-01T00:00:00.000000001Z"


# --- fetching -----------------------------------------------------------------------------------------------

def test_request_shape_repeated_webids_iso_times_inside_max_count():
    fake = FakePI({"A": series(2), "B": series(2)})
    fetched(connector(fake), ["A", "B"])
    req = next(r for r in fake.requests if r.url.path.endswith("streamsets/recorded"))
    q = parse_qsl(req.url.query.decode())
    assert [v for k, v in q if k == "webId"] == [fake.ids["A"], fake.ids["B"]]
    assert dict(q)["startTime"] == "2024-01-01T00:00:00Z" and dict(q)["endTime"] == "2024-01-02T00:00:00Z"
    assert dict(q)["boundaryType"] == "Inside" and dict(q)["maxCount"] == "5"


def test_window_is_half_open():
    events = [(T0 - 100, -1.0, True), (T0, 0.0, True), (T0 + 86_400 * S - 100, 1.0, True),
              (T0 + 86_400 * S, 2.0, True), (T0 + 86_400 * S, 3.0, True)]
    got = fetched(connector(FakePI({"A": events}), max_count=100), ["A"])
    assert got["A"] == [(T0, 0.0), (T0 + 86_400 * S - 100, 1.0)]


def test_paging_with_equal_timestamp_runs_across_page_boundaries():
    events = series(3) + [(T0 + 3 * 60 * S, 10.0 + k, True) for k in range(4)] + series(6, start=T0 + 240 * S, first=20)
    fake = FakePI({"A": events, "B": series(23, step=S), "C": series(2)})
    got = fetched(connector(fake), ["A", "B", "C"])
    for name in "ABC":
        assert got[name] == fake.truth(name)


def test_short_streams_end_after_one_request_when_the_response_exceeds_max_count():
    fake = FakePI({"A": series(4), "B": series(4), "C": series(3)})
    got = fetched(connector(fake), ["A", "B", "C"])
    assert all(got[n] == fake.truth(n) for n in "ABC")
    assert sum(r.url.path.endswith("recorded") for r in fake.requests) == 1


def test_page_made_of_one_timestamp_is_read_again_alone_with_the_full_max_count():
    run = [(T0 + S, float(k), True) for k in range(7)]
    fake = FakePI({"A": series(1) + run + series(2, start=T0 + 2 * S, first=100), "B": series(9, step=S)})
    # two streams per request share 4 rows per stream; alone, A gets max_count 10 and passes the run of 7
    got = fetched(connector(fake, rows_per_request=8, max_count=10), ["A", "B"])
    assert got["A"] == fake.truth("A") and got["B"] == fake.truth("B")


def test_a_run_longer_than_max_count_fails_clearly_instead_of_looping():
    fake = FakePI({"A": [(T0 + S, float(k), True) for k in range(12)]})
    with pytest.raises(SourceError, match=r"point 'A' has at least 5 events at 2024-01-01T00:00:01Z.*raise max_count"):
        fetched(connector(fake), ["A"])
    assert len(fake.requests) < 10


def test_server_applying_max_count_per_request_still_gives_every_event():
    fake = FakePI({n: series(7, step=S * (i + 1)) for i, n in enumerate("ABCD")}, per_request_max_count=True)
    got = fetched(connector(fake, points_per_request=4), list("ABCD"))
    for n in "ABCD":
        assert got[n] == fake.truth(n)


def test_streams_answered_in_another_order_are_matched_by_webid():
    fake = FakePI({"A": series(3, first=0), "B": series(3, first=100)}, shuffle_streams=True)
    got = fetched(connector(fake), ["A", "B"])
    assert got["A"] == fake.truth("A") and got["B"] == fake.truth("B")


def test_batches_stream_page_by_page():
    fake = FakePI({"A": series(12), "B": series(12)})
    batches = list(connector(fake, max_count=4, points_per_request=2).fetch(["A", "B"], DAY, NEXT))
    # pages of 4 overlap by the one event at the last timestamp: 4 + 3 + 3 + 2 events per point
    assert [b.num_rows for b in batches] == [8, 6, 6, 4]


def test_dense_points_use_the_row_budget_per_request():
    fake = FakePI({n: series(50, step=S) for n in "ABCD"})
    got = fetched(connector(fake, rows_per_request=40, max_count=100, points_per_request=4), list("ABCD"))
    assert all(got[n] == fake.truth(n) for n in "ABCD")
    first = next(r for r in fake.requests if r.url.path.endswith("recorded"))
    assert dict(parse_qsl(first.url.query.decode()))["maxCount"] == "10"


@pytest.mark.parametrize("fault", ["503", "429", "cut", "protocol", "webexception", "timeout"])
def test_transient_faults_are_retried_and_lose_nothing(fault):
    def inject(request):
        if fault == "503":
            return httpx.Response(503, json={"Errors": ["busy"]})
        if fault == "429":
            return httpx.Response(429, headers={"Retry-After": "2"}, json={"Errors": ["Rate limit was reached"]})
        if fault == "cut":
            return httpx.Response(200, content=fake.recorded(*args(request)).content[:50])
        if fault == "webexception":
            return httpx.Response(200, json={"WebException": {"Errors": ["Internal"], "StatusCode": 500}})
        if fault == "timeout":
            raise httpx.ReadTimeout("slow", request=request)
        raise httpx.RemoteProtocolError("peer closed connection without sending complete message body",
                                        request=request)

    def args(request):
        q = parse_qsl(request.url.query.decode())
        return [v for k, v in q if k == "webId"], dict(q)

    fake = FakePI({"A": series(12), "B": series(3)})
    fake.faults = [inject, inject]
    got = fetched(connector(fake), ["A", "B"])
    assert got["A"] == fake.truth("A") and got["B"] == fake.truth("B")


@pytest.mark.parametrize("status,match", [(400, "maxCount is too large"), (401, "refused the credentials"),
                                          (403, "refused the credentials"), (404, "not found")])
def test_client_errors_fail_at_once(status, match):
    fake = FakePI({"A": series(3)})
    msg = {400: "maxCount is too large", 404: "not found"}.get(status, "denied")
    fake.faults = [lambda r: httpx.Response(status, json={"Errors": [msg]})]
    with pytest.raises(SourceError, match=match):
        fetched(connector(fake), ["A"])
    assert sum(r.url.path.endswith("recorded") for r in fake.requests) == 1


def test_exhausted_retries_name_the_last_cause():
    fake = FakePI({"A": series(3)})
    fake.faults = [lambda r: httpx.Response(502, json={"Errors": ["Bad gateway"]})] * 10
    with pytest.raises(SourceError, match=r"gave up after 4 attempt\(s\).*HTTP 502.*Bad gateway"):
        fetched(connector(fake), ["A"])


def test_unreachable_server_names_the_url():
    def handler(request):
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    s = settings()
    conn = PiWebApiConnector(s, http.build_client(s, Credentials(), transport=httpx.MockTransport(handler)),
                             retrier=sleeps()[0])
    with pytest.raises(SourceError, match="cannot connect to https://pi.example/piwebapi/dataservers"):
        conn.list_points()


# --- points -------------------------------------------------------------------------------------------------

def test_unknown_points_are_all_listed():
    conn = connector(FakePI({"A": series(1), "B": series(1)}))
    with pytest.raises(UnknownPointsError) as e:
        list(conn.fetch(["A", "NOPE1", "b", "NOPE2"], DAY, NEXT))
    assert e.value.points == ["NOPE1", "NOPE2"]
    assert conn.resolve(names=["a", "B"]) == ["a", "B"]


def test_many_names_are_resolved_by_a_prefix_listing():
    names = [f"TAG{i:04d}" for i in range(150)]
    fake = FakePI({n: series(1) for n in names})
    conn = connector(fake)
    assert conn.missing_points(names + ["TAGX"]) == ["TAGX"]
    paths = [r.url.path for r in fake.requests]
    assert paths.count("/piwebapi/points") == 1  # only TAGX was looked up by path
    q = dict(parse_qsl(next(r for r in fake.requests if "points" in r.url.path and "dataservers" in r.url.path)
                       .url.query.decode()))
    assert q["nameFilter"] == "TAG*"


def test_list_points_pages_by_start_index():
    fake = FakePI({f"P{i:05d}": [] for i in range(2500)})
    conn = connector(fake)
    found = conn.list_points("P*")
    assert found == sorted(fake.series) and len(found) == 2500
    listings = [r for r in fake.requests if r.url.path.endswith("points")]
    starts = [dict(parse_qsl(r.url.query.decode()))["startIndex"] for r in listings]
    assert starts == ["0", "1000", "2000"]
    assert conn.resolve(name_filter="P0000?") == [f"P0000{i}" for i in range(10)]


def test_unknown_data_server_lists_the_offered_ones():
    conn = connector(FakePI({"A": []}), data_server="NOSUCH")
    with pytest.raises(SourceError, match="no data server named 'NOSUCH'.*OTHER, PISRV1"):
        conn.list_points()


def test_estimate_counts_requests_per_day():
    est = connector(FakePI({})).estimate(points=7, days=10)
    assert est.samples is None and est.requests == 30


def test_factory_builds_a_client_with_auth():
    s = settings(auth={"kind": "basic", "username_env": "NAIA_PI_USER", "password_env": "NAIA_PI_PASSWORD"})
    conn = build(s, Credentials(username="u", password="p"))
    try:
        assert str(conn.client.base_url) == "https://pi.example/piwebapi/"
        assert conn.description == "PI Web API https://pi.example/piwebapi (PISRV1)"
    finally:
        conn.close()


@pytest.mark.parametrize("seed", range(40))
def test_random_runs_page_sizes_and_windows_match_the_truth(seed):
    rng = random.Random(seed)
    data = {}
    for name in ["A", "B", "C", "D", "E"][: rng.randint(1, 5)]:
        t, events = T0 - 5 * S, []
        while t < T0 + 86_400 * S + 5 * S and len(events) < 60:
            for _ in range(rng.choice([1, 1, 1, 2, 3, 4])):  # runs of equal timestamps
                events.append((t, float(len(events)), rng.random() > 0.1))
            t += rng.choice([100, S, 3_600 * S, 7_000 * S])
        data[name] = events
    fake = FakePI(data, per_request_max_count=rng.random() < 0.3)
    conn = connector(fake, rows_per_request=rng.randint(4, 30), max_count=rng.randint(5, 9),
                     points_per_request=rng.randint(1, 5))
    got = fetched(conn, list(data))
    for name in data:
        assert got[name] == fake.truth(name), name


def test_benchmark_builds_a_parsable_response_and_reports(capsys):
    from naia_backfill.dev.benchmarks import pi_parse

    page = parse_streamset(pi_parse.build_response(30, 1000))
    b = page.batch([f"B{i}" for i in range(30)])
    assert b.num_rows == 30_000 and b.column("is_system").to_numpy(zero_copy_only=False).sum() > 0
    assert b.column("state_code").null_count < 30_000 and b.column("text").null_count < 30_000
    result = CliRunner().invoke(pi_parse.command, ["--streams", "3", "--values", "200", "--repeat", "1", "--no-pin", "--compare"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "samples/s" in out and "command: naia-backfill bench pi-parse --streams 3" in out
