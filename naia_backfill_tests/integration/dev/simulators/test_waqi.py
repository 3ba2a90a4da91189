"""The WAQI simulator over a real loopback socket, polled the way a forward collector would: httpx, plain json."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys

import httpx
import pytest

from naia_backfill.dev.simulators.waqi.clock import SimClock
from naia_backfill.dev.simulators.waqi.simulator import WaqiSimulator, serve

pytestmark = pytest.mark.integration

TOKEN = "sim-token-123"
UTC = dt.UTC
START = dt.datetime(2024, 1, 14, tzinfo=UTC)
HANOI, DELHI, STUCK, CITIZEN = 1583, 2553, -122913, -475705
FEED_KEYS = {"aqi", "idx", "attributions", "city", "dominentpol", "iaqi", "time", "forecast"}


@pytest.fixture(scope="module")
def sim() -> WaqiSimulator:
    return WaqiSimulator(seed=4, token=TOKEN, clock=SimClock(START))


@pytest.fixture(scope="module")
def url(sim):
    with serve(sim) as base:
        yield base


@pytest.fixture
def client(url, sim):
    sim.clear_faults()
    sim.clock.set(START)
    with httpx.Client(base_url=url, timeout=30, params={"token": TOKEN}) as c:
        yield c
    sim.clear_faults()


def feed(client, what: str) -> dict:
    r = client.get(f"/feed/{what}/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    return json.loads(r.content)


def observed(data: dict) -> dt.datetime:
    """The observation instant of a feed, from time.iso (time.v is the wall clock encoded as if UTC)."""
    return dt.datetime.fromisoformat(data["time"]["iso"]).astimezone(UTC)


def test_feed_by_uid_has_the_documented_shape(client, sim):
    body = feed(client, f"@{HANOI}")
    assert body["status"] == "ok" and set(body["data"]) <= FEED_KEYS
    data = body["data"]
    assert data["idx"] == HANOI and (isinstance(data["aqi"], int) or data["aqi"] == "-")
    assert set(data["city"]) == {"geo", "name", "url"} and data["city"]["url"].startswith("https://aqicn.org/city/")
    assert data["attributions"][-1]["name"] == "World Air Quality Index Project"
    assert all(set(v) == {"v"} and isinstance(v["v"], int | float) for v in data["iaqi"].values())
    assert set(data["time"]) == {"s", "tz", "v", "iso"} and data["time"]["tz"] == "+07:00"
    t = observed(data)
    assert data["time"]["v"] == int(t.timestamp()) + 7 * 3_600
    expected = sim.latest(HANOI, START)
    assert t == expected.time and data["aqi"] == expected.aqi
    assert {k: v["v"] for k, v in data["iaqi"].items()} == expected.iaqi
    assert set(data["forecast"]["daily"]) == {"o3", "pm10", "pm25", "uvi"}


def test_feed_by_city_geo_here_and_negative_uid(client):
    assert feed(client, "hanoi")["data"]["idx"] == HANOI
    assert feed(client, "geo:28.6;77.2")["data"]["idx"] == DELHI
    delhi = feed(client, f"@{DELHI}")["data"]
    assert delhi["time"]["tz"] == "+05:30" and observed(delhi).minute == 30
    assert feed(client, "here")["status"] == "ok"
    citizen = feed(client, f"@{CITIZEN}")["data"]
    assert citizen["idx"] == CITIZEN and set(citizen["iaqi"]) <= {"pm25", "pm10", "t", "h"}


def test_errors_are_http_200_with_status_error(client, url):
    assert feed(client, "@424242") == {"status": "error", "data": "Unknown station"}
    assert feed(client, "atlantis") == {"status": "error", "data": "Unknown station"}
    for params in ({"token": "wrong"}, {"token": ""}, {}):
        r = httpx.get(f"{url}/feed/@{HANOI}/", params=params)
        assert r.status_code == 200 and r.json() == {"status": "error", "data": "Invalid key"}


def test_the_clock_drives_the_feed_and_keys_come_and_go(client, sim):
    seen, keys = {}, set()
    for hour in range(48):
        sim.clock.set(START + dt.timedelta(hours=hour, minutes=59))
        data = feed(client, f"@{HANOI}")["data"]
        seen[observed(data)] = data
        keys.add(tuple(sorted(data.get("iaqi", {}))))
    polls = [START + dt.timedelta(hours=h, minutes=59) for h in range(48)]
    assert sorted(seen) == [r.time for r in sim.polled(polls, uids=[HANOI])]
    assert len(keys) > 3
    stuck = {observed(feed(client, f"@{STUCK}")["data"]) for _ in range(2)}
    sim.clock.advance(dt.timedelta(days=3))
    stuck.add(observed(feed(client, f"@{STUCK}")["data"]))
    assert len(stuck) == 1 and stuck.pop() < dt.datetime(2024, 1, 10, tzinfo=UTC)


def test_a_dash_aqi_reaches_the_wire(client, sim):
    dash = next(r for r in sim.readings_between(HANOI, START, START + dt.timedelta(days=60)) if r.aqi == "-")
    sim.clock.set(dash.published)
    data = feed(client, f"@{HANOI}")["data"]
    assert data["aqi"] == "-" and "dominentpol" not in data and observed(data) == dash.time


def test_search_and_map_bounds(client):
    found = client.get("/search/", params={"keyword": "hanoi"}).json()
    assert found["status"] == "ok" and [s["uid"] for s in found["data"]] == [HANOI]
    item = found["data"][0]
    assert isinstance(item["aqi"], str) and set(item["station"]) == {"name", "geo", "url", "country"}
    assert set(item["time"]) == {"tz", "stime", "vtime"}
    assert client.get("/search/", params={"keyword": "zzz"}).json() == {"status": "ok", "data": []}
    box = client.get("/map/bounds", params={"latlng": "8,100,24,110"}).json()
    uids = {s["uid"] for s in box["data"]}
    assert HANOI in uids and CITIZEN in uids and DELHI not in uids
    assert all(set(s) == {"lat", "lon", "uid", "aqi", "station"} for s in box["data"])
    assert client.get("/map/bounds", params={"latlng": "8,100"}).json()["status"] == "error"


def test_quota_per_minute_answers_over_quota():
    sim = WaqiSimulator(quota=5, clock=SimClock(START))
    with serve(sim) as base, httpx.Client(base_url=base, params={"token": "any"}) as c:
        answers = [c.get(f"/feed/@{HANOI}/").json()["status"] for _ in range(6)]
        over = c.get(f"/feed/@{HANOI}/")
    assert answers == ["ok"] * 5 + ["error"]
    assert over.status_code == 200 and over.json() == {"status": "error", "data": "Over quota"}
    on_clock = WaqiSimulator(quota=2, quota_on_clock=True, clock=SimClock(START))
    with serve(on_clock) as base, httpx.Client(base_url=base, params={"token": "any"}) as c:
        assert [c.get("/feed/here/").json()["status"] for _ in range(3)] == ["ok", "ok", "error"]
        on_clock.clock.advance(61)
        assert c.get("/feed/here/").json()["status"] == "ok"


def test_faults_and_the_request_log(client, sim, url):
    for status in (500, 502, 503, 504):
        sim.inject(status)
        r = client.get(f"/feed/@{HANOI}/")
        assert r.status_code == status and r.headers["content-type"].startswith("text/html")
    sim.inject(503, retry_after=30)
    assert client.get("/feed/here/").headers["retry-after"] == "30"
    with httpx.Client(base_url=url, timeout=30, params={"token": TOKEN}) as fresh:
        sim.inject("cut", fraction=0.5)
        with pytest.raises(httpx.RemoteProtocolError):
            fresh.get(f"/feed/@{HANOI}/")
    sim.inject("slow", seconds=1.0)
    with pytest.raises(httpx.ReadTimeout):
        client.get(f"/feed/@{HANOI}/", timeout=0.2)
    sim.clear_log()
    with httpx.Client(base_url=url, timeout=30) as fresh:
        fresh.get(f"/feed/@{HANOI}/", params={"token": TOKEN})
    (entry,) = sim.request_log
    assert entry["path"] == f"/feed/@{HANOI}/" and entry["status"] == 200
    assert entry["query"] == [("token", "***")] and TOKEN not in repr(entry)


def test_cli_serves_until_sigterm():
    command = [sys.executable, "-m", "naia_backfill.dev.simulators.cli", "waqi", "--port", "0",
               "--start", "2024-01-14T12:34:00", "--speed", "0"]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        line = proc.stdout.readline()
        base = next(word for word in line.split() if word.startswith("http://127.0.0.1:"))
        data = httpx.get(f"{base}/feed/@{HANOI}/", params={"token": "t"}).json()["data"]
        assert observed(data) <= dt.datetime(2024, 1, 14, 12, 34, tzinfo=UTC)
        assert observed(data) >= dt.datetime(2024, 1, 14, 9, tzinfo=UTC)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
