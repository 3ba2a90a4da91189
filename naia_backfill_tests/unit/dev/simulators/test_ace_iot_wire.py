"""The ACE IoT simulator's JSON (``point_samples`` pages) parsed with the standard library, and its routes
called as plain functions (no sockets)."""

from __future__ import annotations

import datetime as dt
import json
from email.message import Message

import numpy as np
import pytest

from naia_backfill.dev.simulators.ace_iot import routes, wire
from naia_backfill.dev.simulators.ace_iot.data import KIND_NUMBER, ODD_TEXTS, US_PER_DAY, to_us
from naia_backfill.dev.simulators.ace_iot.simulator import AceIotSimulator
from naia_backfill.dev.simulators.ace_iot.sites import DEMO_SITE, demo_site
from naia_backfill.dev.simulators.httpserver import Request

DAY = dt.date(2024, 1, 2)
T0 = to_us(DAY)


@pytest.fixture(scope="module")
def sim() -> AceIotSimulator:
    return AceIotSimulator(seed=5, sites=[demo_site()])


def reference_time(t_us: int) -> str:
    """The API's time text, written independently: isoformat of a UTC datetime with 'Z'."""
    t = dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=int(t_us))
    return t.isoformat() + "Z"


def test_point_samples_are_the_samples_as_the_api_writes_them(sim):
    model = sim.model(DEMO_SITE)
    s = model.between(T0, T0 + US_PER_DAY)
    doc = json.loads(wire.point_samples(model, s))
    assert list(doc) == ["point_samples"] and len(doc["point_samples"]) == len(s)
    values = model.values(s)
    for i, item in enumerate(doc["point_samples"]):
        assert list(item) == ["name", "value", "time"]
        assert item["name"] == model.names[s.pidx[i]] and item["time"] == reference_time(s.t[i])
        kind, text = int(s.kind[i]), item["value"]
        if kind != KIND_NUMBER:
            assert text == ODD_TEXTS[kind]
            continue
        assert isinstance(text, str) and float(text) == values[i]
        point = model.points[s.pidx[i]]
        assert text == (str(int(s.mant[i])) if point.integer_text else repr(float(values[i])))


def test_times_are_whole_seconds_or_six_fraction_digits():
    for t in (dt.datetime(2024, 2, 29, 23, 59, 59, 1), dt.datetime(1999, 12, 31), dt.datetime(2024, 1, 1, 0, 0, 0, 25)):
        assert wire.iso(to_us(t)) == t.isoformat() + "Z"
    texts = wire.iso_texts(np.array([to_us(dt.datetime(2030, 7, 4, 5, 6, 7, 890)), 0], dtype=np.int64))
    assert texts == [b"2030-07-04T05:06:07.000890", b"1970-01-01T00:00:00"]


def test_pages_carry_cursor_and_has_more(sim):
    model = sim.model(DEMO_SITE)
    s = model.between(T0, T0 + 3_600_000_000)
    for chunk in (1, 7, 8192):
        body = b"".join(wire.sample_chunks(model, s, chunk))
        assert json.loads(body) == json.loads(wire.point_samples(model, s))["point_samples"]
    page = json.loads(b"".join(wire.page_parts(model, s.take(slice(0, 3)), "abc+/=", True)))
    assert list(page) == ["point_samples", "next_cursor", "has_more"]
    assert page["next_cursor"] == "abc+/=" and page["has_more"] is True and len(page["point_samples"]) == 3
    last = json.loads(b"".join(wire.page_parts(model, s.take(slice(0, 0)), None, False)))
    assert last == {"point_samples": [], "next_cursor": None, "has_more": False}


def request(path: str, **query: str | int) -> Request:
    return Request("GET", path, path, path, [(k, str(v)) for k, v in query.items()], Message())


def test_cursors_are_opaque_base64_and_checked():
    cursor = routes.encode_cursor("site", 1, 2, (3, 4, 5))
    assert routes.decode_cursor("site", cursor) == (1, 2, (3, 4, 5))
    for bad in ("not base64!", cursor[:-4], routes.encode_cursor("other", 1, 2, (3, 4, 5))):
        with pytest.raises(routes.ApiError) as e:
            routes.decode_cursor("site", bad)
        assert e.value.status == 400


def test_routes_answer_parameter_errors_with_messages(sim):
    series = f"/api/sites/{DEMO_SITE}/timeseries/paginated"
    day = {"start_time": "2024-01-02T00:00:00Z", "end_time": "2024-01-03T00:00:00Z", "raw_data": "true"}
    cases = [
        (request(series, end_time="2024-01-03"), 400),
        (request(series, **{**day, "start_time": "yesterday"}), 400),
        (request(series, **{**day, "end_time": "2024-01-01T00:00:00Z"}), 400),
        (request(series, **{**day, "page_size": 500_001}), 400),
        (request(series, **{**day, "page_size": 0}), 400),
        (request(series, **{**day, "raw_data": "false"}), 400),
        (request(series, **{**day, "cursor": "bogus"}), 400),
        (request("/api/sites/nowhere/timeseries/paginated", **day), 404),
        (request("/api/points/no%20such/timeseries", **day), 404),
        (request("/api/elsewhere"), 404),
    ]
    for req, status in cases:
        resp = sim.handle(req)
        assert resp.status == status, (req.target, req.query)
        assert isinstance(json.loads(resp.body)["message"], str)
    assert sim.handle(request(series, **day)).status == 200
    assert sim.handle(Request("POST", series, series, series, [], Message())).status == 405
