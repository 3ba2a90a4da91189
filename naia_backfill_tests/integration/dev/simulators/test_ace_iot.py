"""The ACE IoT simulator over a real loopback socket, used the way a connector would: httpx, plain json."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
from urllib.parse import quote

import httpx
import pyarrow as pa
import pytest

from naia_backfill.dev.simulators.ace_iot.simulator import AceIotSimulator, AcePoint, serve
from naia_backfill.dev.simulators.ace_iot.sites import DEMO_SITE, LARGE_SITE, demo_site

pytestmark = pytest.mark.integration

TOKEN = "eyJhbGciOiJIUzI1NiJ9.sim.token"
DAY = dt.date(2024, 1, 2)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
POINT_KEYS = ["id", "name", "client", "site", "kv_tags", "marker_tags", "point_type", "collect_enabled",
              "collect_interval", "collect_config", "bacnet_data", "created", "updated"]  # fmt: skip


def iso(t: dt.datetime | dt.date) -> str:
    if not isinstance(t, dt.datetime):
        t = dt.datetime.combine(t, dt.time(), dt.UTC)
    return t.isoformat().replace("+00:00", "Z")


def day_params(day: dt.date, **extra: object) -> dict[str, object]:
    return {"start_time": iso(day), "end_time": iso(day + dt.timedelta(days=1)), "raw_data": "true", **extra}


def ns(text: str) -> int:
    """Nanoseconds since the epoch of an API time, parsed here and not by project code."""
    return (dt.datetime.fromisoformat(text.replace("Z", "+00:00")) - EPOCH) // dt.timedelta(microseconds=1) * 1000


@pytest.fixture(scope="module")
def sim() -> AceIotSimulator:
    return AceIotSimulator(seed=7, token=TOKEN)


@pytest.fixture(scope="module")
def url(sim):
    with serve(sim) as base:
        yield base


@pytest.fixture
def client(url, sim):
    sim.clear_faults()
    with httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        yield c
    sim.clear_faults()


def fetch_series(client, site: str, params: dict[str, object]) -> tuple[list[dict], list[dict]]:
    """Every sample of a period by following cursors, and each page's envelope (count, has_more, cursor)."""
    samples, pages, cursor = [], [], None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        r = client.get(f"/sites/{site}/timeseries/paginated", params=query)
        assert r.status_code == 200, r.text
        page = json.loads(r.content)
        assert list(page) == ["point_samples", "next_cursor", "has_more"]
        samples += page["point_samples"]
        pages.append({"n": len(page["point_samples"]), "has_more": page["has_more"], "cursor": page["next_cursor"]})
        if not (page["has_more"] and page["next_cursor"]):
            return samples, pages
        cursor = page["next_cursor"]


def keep(samples: list[dict], configured: set[str], day: dt.date, hours: int = 24) -> list[tuple[str, int, float]]:
    """What a connector keeps: configured points, finite values, times in [day, day + hours)."""
    lo = ns(iso(day))
    hi = lo + hours * 3_600 * 10**9
    out = []
    for s in samples:
        if s["name"] not in configured or s["value"] in (None, "") or not lo <= ns(s["time"]) < hi:
            continue
        value = float(s["value"])
        if value == value and abs(value) != float("inf"):
            out.append((s["name"], ns(s["time"]), value))
    return out


def rows(table: pa.Table) -> list[tuple[str, int, float]]:
    """(point, ns, value) of canonical sample rows."""
    columns = table.column("point").to_pylist(), table.column("ts").cast("int64").to_pylist()
    return list(zip(*columns, table.column("value").to_pylist(), strict=True))


def truth_rows(sim, site: str, day: dt.date) -> list[tuple[str, int, float]]:
    return rows(sim.truth(site, day))


def test_sites_and_point_lists(client, sim):
    sites = client.get("/sites/").json()
    assert {k: sites[k] for k in ("page", "pages", "total")} == {"page": 1, "pages": 1, "total": 2}
    assert [s["name"] for s in sites["items"]] == [DEMO_SITE, LARGE_SITE]
    assert client.get(f"/sites/{DEMO_SITE}").json()["client"] == "acme"
    missing = client.get("/sites/nowhere/points")
    assert missing.status_code == 404 and set(missing.json()) == {"message"}
    configured, page = [], 1
    while True:
        body = client.get(f"/sites/{DEMO_SITE}/configured_points", params={"page": page, "per_page": 5}).json()
        assert set(body) == {"page", "pages", "per_page", "total", "items"} and body["per_page"] == 5
        configured += body["items"]
        if page >= body["pages"] or not body["items"]:
            break
        page += 1
    assert all(list(item) == POINT_KEYS and item["collect_enabled"] for item in configured)
    assert [p["name"] for p in configured] == sim.points(DEMO_SITE, configured_only=True)
    everything = client.get(f"/sites/{DEMO_SITE}/points", params={"per_page": 100}).json()["items"]
    names = [p["name"] for p in everything]
    assert set(names) > {p["name"] for p in configured} and not any("Old BAS" in n for n in names)
    assert any("/" in n and " " in n for n in names)
    beyond = client.get(f"/sites/{DEMO_SITE}/points", params={"page": 99}).json()
    assert beyond["items"] == [] and beyond["total"] == len(names)
    clamped = client.get(f"/sites/{LARGE_SITE}/configured_points", params={"per_page": 10_000}).json()
    assert clamped["per_page"] == sim.max_per_page and clamped["pages"] == -(-4_583 // sim.max_per_page)


def test_a_paged_day_cut_to_the_day_and_filtered_equals_truth(client, sim):
    samples, pages = fetch_series(client, DEMO_SITE, day_params(DAY, page_size=3_000))
    configured = set(sim.points(DEMO_SITE, configured_only=True))
    assert keep(samples, configured, DAY) == truth_rows(sim, DEMO_SITE, DAY)
    assert any(p["n"] == 0 and p["has_more"] and p["cursor"] for p in pages)  # an empty page with a cursor
    assert any(0 < p["n"] < 3_000 and p["has_more"] for p in pages)  # a short page that is not the last
    assert pages[-1]["has_more"] is False and pages[-1]["cursor"] is None
    times = [ns(s["time"]) for s in samples]
    assert times == sorted(times)
    day_ns = ns(iso(DAY)), ns(iso(DAY + dt.timedelta(days=1)))
    assert min(times) < day_ns[0] and max(times) == day_ns[1]  # straddles: before the start, at the end
    values = {s["value"] for s in samples}
    assert {"nan", "inf", "-inf", "", None} <= values and all(isinstance(v, str) for v in values - {None})
    assert len({(s["name"], s["time"]) for s in samples}) < len(samples)  # one point, several samples, one time
    assert any("." in s["time"] for s in samples)  # sub-second times
    assert any(s["name"] not in configured for s in samples)


def test_page_size_limits_and_the_large_site(client, sim):
    too_big = client.get(f"/sites/{LARGE_SITE}/timeseries/paginated", params=day_params(DAY, page_size=500_001))
    assert too_big.status_code == 400 and "500000" in too_big.json()["message"]
    start = dt.datetime.combine(DAY, dt.time(), dt.UTC)
    params = {"start_time": iso(start), "end_time": iso(start + dt.timedelta(hours=1)), "raw_data": "true"}
    samples, pages = fetch_series(client, LARGE_SITE, {**params, "page_size": 500_000})
    assert len(pages) == 1 and len(samples) > 4_800 * 60
    configured = set(sim.points(LARGE_SITE, configured_only=True))
    truth = rows(pa.Table.from_batches(list(sim.truth_batches(LARGE_SITE, start, start + dt.timedelta(hours=1)))))
    assert keep(samples, configured, DAY, hours=1) == truth
    assert 4_583 * 60 - 50 < len(truth) < 4_583 * 60  # a few odd values


def test_an_empty_period_is_404_but_a_period_with_data_never_is(client, sim):
    offline = sim.offline_days(DEMO_SITE, dt.date(2024, 1, 1), dt.date(2024, 6, 30))[0]
    r = client.get(f"/sites/{DEMO_SITE}/timeseries/paginated", params=day_params(offline))
    assert r.status_code == 404 and set(r.json()) == {"message"}
    name = "acme/demo_site/AHU-1/Supply Air Temp"
    r = client.get(f"/points/{quote(name, safe='')}/timeseries", params=day_params(offline))
    assert r.status_code == 404 and sim.truth(DEMO_SITE, offline).num_rows == 0
    outage = {"start_time": f"{DAY}T02:05:00Z", "end_time": f"{DAY}T03:55:00Z", "raw_data": "true"}
    assert client.get(f"/sites/{DEMO_SITE}/timeseries/paginated", params=outage).status_code == 404


def test_bad_parameters_and_cursors(client):
    series = f"/sites/{DEMO_SITE}/timeseries/paginated"
    assert client.get(series, params={"start_time": iso(DAY)}).status_code == 400
    assert client.get(series, params=day_params(DAY, cursor="garbage")).status_code == 400
    assert client.get(series, params=day_params(DAY, raw_data="false")).status_code == 400
    plus = client.get(series, params=day_params(DAY) | {"start_time": f"{DAY}T00:00:00+00:00"})
    assert plus.status_code == 200  # httpx encodes '+'; a raw '+' would be a space and a 400


def test_point_series_with_url_encoded_names(client, sim):
    configured = set(sim.points(DEMO_SITE, configured_only=True))
    site = keep(fetch_series(client, DEMO_SITE, day_params(DAY, page_size=50_000))[0], configured, DAY)
    for name in ("acme/demo_site/Gebäude A/Raum 1.07/Temperatur", "acme/demo_site/AHU-1/Damper Position %",
                 "acme/demo_site/Chiller 2/Flow (gpm)", "acme/demo_site/VAV 3-12/Zone Temp"):  # fmt: skip
        r = client.get(f"/points/{quote(name, safe='')}/timeseries", params=day_params(DAY))
        assert r.status_code == 200, name
        body = r.json()
        assert list(body) == ["point_samples"] and {s["name"] for s in body["point_samples"]} == {name}
        assert keep(body["point_samples"], {name}, DAY) == [row for row in site if row[0] == name]
    unknown = quote("acme/demo_site/nope", safe="")
    assert client.get(f"/points/{unknown}/timeseries", params=day_params(DAY)).status_code == 404
    retired = quote("acme/demo_site/Old BAS/Point 17", safe="")
    assert client.get(f"/points/{retired}/timeseries", params=day_params(DAY)).status_code == 404


def test_bearer_auth(url):
    series = f"{url}/sites/{DEMO_SITE}/points"
    missing = httpx.get(series)
    assert missing.status_code == 401 and set(missing.json()) == {"message"}
    for header in ({"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}, {"Authorization": TOKEN}):
        r = httpx.get(series, headers=header)
        assert r.status_code == 401 and r.json() == {"message": "JWT Signature Invalid"}
    for name, scheme in (("authorization", "Bearer"), ("AUTHORIZATION", "bearer"), ("Authorization", "BEARER")):
        assert httpx.get(series, headers={name: f"{scheme} {TOKEN}"}).status_code == 200


def test_rate_limit_answers_429_with_retry_after():
    sim = AceIotSimulator(sites=[demo_site()], rate_limit=(3, 60.0))
    with serve(sim) as base, httpx.Client(base_url=base) as c:
        assert [c.get("/sites/").status_code for _ in range(3)] == [200, 200, 200]
        r = c.get("/sites/")
        assert r.status_code == 429 and set(r.json()) == {"message"}
        assert 55 <= int(r.headers["retry-after"]) <= 60
    assert [e["status"] for e in sim.request_log] == [200, 200, 200, 429]


def test_injected_faults(client, sim, url):
    for status in (500, 502, 503, 504, 520, 521, 522, 523):
        sim.inject(status)
        r = client.get("/sites/")
        assert r.status_code == status and r.content
    sim.inject(503, retry_after=7, times=2, path_contains="/timeseries/")
    assert client.get("/sites/").status_code == 200
    series = f"/sites/{DEMO_SITE}/timeseries/paginated"
    assert [client.get(series, params=day_params(DAY)).status_code for _ in range(3)] == [503, 503, 200]
    sim.inject(429, retry_after="Wed, 21 Oct 2015 07:28:00 GMT")
    assert client.get("/sites/").headers["retry-after"] == "Wed, 21 Oct 2015 07:28:00 GMT"
    sim.inject("slow", seconds=1.0)
    with pytest.raises(httpx.ReadTimeout):
        client.get("/sites/", timeout=0.2)
    with httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {TOKEN}"}) as fresh:
        sim.inject("cut", fraction=0.3, path_contains=LARGE_SITE)
        with pytest.raises(httpx.RemoteProtocolError):
            fresh.get(f"/sites/{LARGE_SITE}/timeseries/paginated", params=day_params(DAY, page_size=20_000))
    with httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {TOKEN}"}) as fresh:
        sim.inject("cut")
        with pytest.raises(httpx.RemoteProtocolError):
            fresh.get("/sites/")
    with httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {TOKEN}"}) as fresh:
        sim.inject("drop")
        with pytest.raises(httpx.RemoteProtocolError):
            fresh.get("/sites/")
        assert fresh.get("/sites/").status_code == 200
    assert [e.get("fault") for e in sim.request_log[-3:]] == ["cut", "drop", None]


def test_points_added_and_removed_while_serving(client, sim):
    name = "acme/demo_site/New Meter/Gas m3"
    sim.add_point(DEMO_SITE, AcePoint(name, interval_s=300.0, decimals=2))
    try:
        listed = client.get(f"/sites/{DEMO_SITE}/configured_points", params={"per_page": 100}).json()["items"]
        assert name in [p["name"] for p in listed]
        samples, _ = fetch_series(client, DEMO_SITE, day_params(DAY, page_size=50_000))
        configured = set(sim.points(DEMO_SITE, configured_only=True))
        assert keep(samples, configured, DAY) == truth_rows(sim, DEMO_SITE, DAY)
        assert sum(1 for s in samples if s["name"] == name) >= 288 - 24  # five-minute samples, less the outage
    finally:
        sim.remove_point(name)
    listed = client.get(f"/sites/{DEMO_SITE}/points", params={"per_page": 100}).json()["items"]
    assert name not in [p["name"] for p in listed]


def test_request_log(client, sim):
    sim.clear_log()
    client.get(f"/sites/{DEMO_SITE}/configured_points", params={"page": 2, "per_page": 3})
    (entry,) = sim.request_log
    assert entry["method"] == "GET" and entry["path"] == f"/api/sites/{DEMO_SITE}/configured_points"
    assert entry["query"] == [("page", "2"), ("per_page", "3")] and entry["status"] == 200 and entry["bytes"] > 0


def test_end_semantics_are_configurable():
    sim = AceIotSimulator(sites=[demo_site()], end_inclusive=False, before_start_s=0.0)
    with serve(sim) as base, httpx.Client(base_url=base, timeout=60) as c:
        samples, _ = fetch_series(c, DEMO_SITE, day_params(DAY, page_size=100_000))
    times = [ns(s["time"]) for s in samples]
    assert min(times) >= ns(iso(DAY)) and max(times) < ns(iso(DAY + dt.timedelta(days=1)))


def test_cli_serves_until_sigterm():
    env = {**os.environ, "NAIA_ACE_SIM_TOKEN": "cli-token"}
    command = [sys.executable, "-m", "naia_backfill.dev.simulators.cli", "ace-iot", "--port", "0",
               "--token-env", "NAIA_ACE_SIM_TOKEN", "--rate-limit", "100"]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        base = next(word for word in line.split() if word.startswith("http://127.0.0.1:"))
        assert base.endswith("/api")
        assert httpx.get(f"{base}/sites/").status_code == 401
        sites = httpx.get(f"{base}/sites/", headers={"Authorization": "Bearer cli-token"}).json()
        assert [s["name"] for s in sites["items"]] == [DEMO_SITE, LARGE_SITE]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
