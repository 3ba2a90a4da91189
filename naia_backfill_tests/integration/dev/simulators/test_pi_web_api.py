"""The PI Web API simulator over a real loopback socket, read with httpx and parsed with plain json."""

from __future__ import annotations

import copy
import datetime as dt
import email.utils
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import jsonschema
import pytest

from naia_backfill.dev.simulators.pi_web_api import RECORDED_DIR
from naia_backfill.dev.simulators.pi_web_api import recording as pi_fixtures
from naia_backfill.dev.simulators.pi_web_api.simulator import PiSimulator, SimPoint, serve

pytestmark = pytest.mark.integration

#: The paths and definitions a backfill uses, from OSIsoft's PI Web API 2018 SP1 swagger.
SWAGGER = Path(__file__).with_name("pi-web-api-2018sp1-subset.json")
FIXTURES = RECORDED_DIR
DAY = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
NEXT = DAY + dt.timedelta(days=1)
ISO_DAY = {"startTime": "2024-01-01T00:00:00Z", "endTime": "2024-01-02T00:00:00Z"}


@pytest.fixture(scope="module")
def sim():
    return PiSimulator(seed=7)


@pytest.fixture(scope="module")
def url(sim):
    with serve(sim) as base:
        yield base


@pytest.fixture
def client(url, sim):
    sim.clear_faults()
    with httpx.Client(base_url=url, timeout=60) as c:
        yield c
    sim.clear_faults()


def pi_ns(text: str) -> int:
    """Nanoseconds since the epoch of a PI timestamp, parsed here and not by project code."""
    assert text.endswith("Z")
    base, _, frac = text[:-1].partition(".")
    assert len(frac) <= 7 and not frac.endswith("0")
    seconds = dt.datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.UTC).timestamp()
    return int(seconds) * 10**9 + int(frac.ljust(7, "0")) * 100 if frac else int(seconds) * 10**9


def wire_rows(name: str, items: list[dict]) -> list[dict]:
    """Canonical sample rows from wire TimedValues, mapped the obvious way."""
    rows = []
    for it in items:
        v = it["Value"]
        row = {
            "point": name,
            "ts": pi_ns(it["Timestamp"]),
            "value": None,
            "text": None,
            "state_code": None,
            "is_system": False,
            "good": it["Good"],
            "questionable": it["Questionable"],
            "substituted": it["Substituted"],
            "annotated": it["Annotated"],
        }
        if isinstance(v, dict):
            row.update(text=v["Name"], state_code=v["Value"], is_system=v["IsSystem"])
        elif isinstance(v, str):
            row["text"] = v
        else:
            row["value"] = float(v)
        rows.append(row)
    return rows


def truth_ns(sim, names, start=DAY, end=NEXT) -> list[dict]:
    table = sim.truth(names, start, end)
    ts = table.column("ts").cast("int64").to_pylist()
    rows = table.drop_columns(["ts"]).to_pylist()
    return [{**r, "ts": t} for r, t in zip(rows, ts, strict=True)]


def recorded(client, sim, name, **params):
    r = client.get(f"/streams/{sim.webid(name)}/recorded", params={**ISO_DAY, "maxCount": 150_000, **params})
    assert r.status_code == 200, r.text
    return json.loads(r.text)


def test_landing_and_data_servers(client, url, sim):
    home = client.get("").json()
    assert set(home["Links"]) == {"Self", "AssetServers", "DataServers", "Search", "System"}
    assert home["Links"]["DataServers"] == f"{url}/dataservers"
    servers = client.get("/dataservers").json()
    assert servers["Links"] == {}
    (server,) = servers["Items"]
    assert list(server) == ["WebId", "Id", "Name", "Path", "IsConnected", "ServerVersion", "ServerTime", "Links"]
    assert server["WebId"] == "P1DSUElTUlYx" and server["Name"] == "PISRV1" and server["IsConnected"] is True
    assert client.get("/dataservers", params={"name": "pisrv1"}).json()["WebId"] == server["WebId"]
    assert client.get("/dataservers", params={"path": "\\\\PIServers[PISRV1]"}).json()["Name"] == "PISRV1"
    assert client.get(f"/dataservers/{server['WebId']}").json()["Id"] == server["Id"]
    missing = client.get("/dataservers", params={"name": "OTHER"})
    assert missing.status_code == 404 and missing.json()["Errors"]


def test_point_search_wildcards_and_paging(client, sim):
    points_url = f"/dataservers/{sim.data_server_webid}/points"
    everything = client.get(points_url).json()["Items"]
    assert [p["Name"] for p in everything] == [p.name for p in sim.points]
    assert [p["Id"] for p in everything] == sorted(p["Id"] for p in everything)
    paged, start = [], 0
    while True:
        page = client.get(points_url, params={"nameFilter": "*", "startIndex": start, "maxCount": 3}).json()["Items"]
        paged += page
        start += len(page)
        if len(page) < 3:
            break
    assert paged == everything

    def names(pattern):
        return [p["Name"] for p in client.get(points_url, params={"nameFilter": pattern}).json()["Items"]]

    assert names("SIN*") == ["SINUSOID", "SINUSOIDU"]
    assert names("sinusoid?") == ["SINUSOIDU"]
    assert names("ba:*.1") == ["BA:TEMP.1", "BA:ACTIVE.1"]
    assert names("CDT15?") == ["CDT158"]
    assert names("NOTHING*") == []
    point = everything[0]
    assert point["Path"] == "\\\\PISRV1\\SINUSOID" and point["PointType"] == "Float32"
    assert set(point["Links"]) == {
        "Self",
        "DataServer",
        "Attributes",
        "InterpolatedData",
        "RecordedData",
        "PlotData",
        "SummaryData",
        "Value",
        "EndValue",
    }
    over = client.get(points_url, params={"maxCount": sim.max_returned_items + 1})
    assert over.status_code == 400 and over.json()["Errors"]


def test_point_by_path_and_webid(client, sim):
    by_path = client.get("/points", params={"path": "\\\\PISRV1\\BA:TEMP.1"})
    assert by_path.status_code == 200
    point = by_path.json()
    assert point["WebId"] == sim.webid("BA:TEMP.1") and point["EngineeringUnits"] == "DEG C"
    assert client.get("/points", params={"path": "\\\\pisrv1\\ba:temp.1"}).json()["Name"] == "BA:TEMP.1"
    assert client.get(f"/points/{point['WebId']}").json() == point
    digital = client.get("/points", params={"path": "\\\\PISRV1\\CDM158"}).json()
    assert digital["PointType"] == "Digital" and digital["DigitalSetName"] == "Modes" and digital["Step"] is True
    for path in ["\\\\PISRV1\\NOPE", "\\\\OTHER\\SINUSOID"]:
        r = client.get("/points", params={"path": path})
        assert r.status_code == 404 and isinstance(r.json()["Errors"][0], str)
    unknown = client.get("/points/P1DPUElTUlYxXE5PUEU")
    assert unknown.status_code == 404 and unknown.json()["Errors"]
    malformed = client.get("/points/not!a!webid")
    assert malformed.status_code == 400 and malformed.json()["Errors"]


@pytest.mark.parametrize(
    "name", ["SINUSOID", "CDM158", "OPERATOR.NOTE", "LEVEL101.I16", "FLOW101.F64", "FAST.1HZ", "BURST.VALVE"]
)
def test_truth_is_what_the_wire_serves_for_a_day(client, sim, name):
    body = recorded(client, sim, name)
    assert body["Links"] == {} and body["UnitsAbbreviation"] == ""
    served = wire_rows(name, body["Items"])
    if served and served[-1]["ts"] == pi_ns("2024-01-02T00:00:00Z"):  # Inside includes the end; a day does not
        served = [r for r in served if r["ts"] < pi_ns("2024-01-02T00:00:00Z")]
    assert served == truth_ns(sim, [name])


def test_one_second_point_exceeds_a_day_of_seconds_and_carries_every_kind(client, sim):
    items = recorded(client, sim, "FAST.1HZ")["Items"]
    assert len(items) > 86_400
    stamps = [it["Timestamp"] for it in items]
    assert any(a == b for a, b in zip(stamps, stamps[1:], strict=False))
    system = [it for it in items if isinstance(it["Value"], dict)]
    assert system and all(v["Value"]["IsSystem"] and not v["Good"] for v in system)
    assert {v["Value"]["Name"] for v in system} <= {"I/O Timeout", "No Data", "Shutdown", "Bad Input"}
    assert any(it["Questionable"] for it in items) and any(it["Substituted"] for it in items)
    assert any(it["Annotated"] for it in items)
    sub_second = recorded(client, sim, "SINUSOID")["Items"]
    assert any(len(it["Timestamp"]) == len("2024-01-01T00:00:00.1234567Z") for it in sub_second)


def test_truncation_is_silent_and_maxcount_above_the_limit_is_400(client, sim):
    full = recorded(client, sim, "CDT158")["Items"]
    first = recorded(client, sim, "CDT158", maxCount=100)
    assert first["Items"] == full[:100] and set(first) == {"Links", "Items", "UnitsAbbreviation"}
    assert len(recorded(client, sim, "CDT158")["Items"]) == len(full)
    default = client.get(f"/streams/{sim.webid('CDT158')}/recorded", params=ISO_DAY).json()
    assert len(default["Items"]) == 1000
    over = client.get(f"/streams/{sim.webid('CDT158')}/recorded", params={**ISO_DAY, "maxCount": 150_001})
    assert over.status_code == 400 and list(over.json()) == ["Errors"] and "150000" in over.json()["Errors"][0]


def test_empty_ranges_descending_order_and_time_strings(client, sim):
    assert recorded(client, sim, "NODATA.1")["Items"] == []
    days = [DAY + dt.timedelta(days=d) for d in range(30)]
    counts = [len(sim.truth(["SPARSE.LAB"], d, d + dt.timedelta(days=1))) for d in days]
    empty = days[counts.index(0)]
    params = {"startTime": empty.isoformat(), "endTime": (empty + dt.timedelta(hours=23)).isoformat()}
    assert recorded(client, sim, "SPARSE.LAB", **params)["Items"] == []
    up = recorded(client, sim, "BURST.VALVE", startTime="2024-01-01T01:00:00Z", endTime="2024-01-01T02:00:00Z")
    down = recorded(client, sim, "BURST.VALVE", startTime="2024-01-01T02:00:00Z", endTime="2024-01-01T01:00:00Z")
    assert down["Items"] == up["Items"][::-1]
    for start, end in [("*-1d", "*"), ("y", "t"), ("t-2h", "*"), ("2024-01-01T01:00:00+01:00", "2024-01-01T00:30Z")]:
        assert (
            client.get(
                f"/streams/{sim.webid('SINUSOIDU')}/recorded", params={"startTime": start, "endTime": end}
            ).status_code
            == 200
        )
    shifted = recorded(client, sim, "SINUSOIDU", startTime="2024-01-01T01:00:00+01:00", endTime="2024-01-01T00:30Z")
    assert [it["Timestamp"] for it in shifted["Items"]] == [
        "2024-01-01T00:00:00Z",
        "2024-01-01T00:05:00Z",
        "2024-01-01T00:10:00Z",
        "2024-01-01T00:15:00Z",
        "2024-01-01T00:20:00Z",
        "2024-01-01T00:25:00Z",
        "2024-01-01T00:30:00Z",
    ]
    bad = client.get(f"/streams/{sim.webid('SINUSOIDU')}/recorded", params={"startTime": "last tuesday"})
    assert bad.status_code == 400 and bad.json()["Errors"]
    outside = client.get(f"/streams/{sim.webid('SINUSOIDU')}/recorded", params={"boundaryType": "Outside"})
    assert outside.status_code == 400


def test_paging_through_equal_timestamps_across_truncation_boundaries(client, sim):
    """The client's algorithm: restart at the last timestamp, drop the events already taken there by count."""
    name, page_size = "BURST.VALVE", 7
    expected = truth_ns(sim, [name])
    taken: list[dict] = []
    start, split_runs = "2024-01-01T00:00:00Z", 0
    while True:
        items = recorded(client, sim, name, startTime=start, maxCount=page_size)["Items"]
        rows = wire_rows(name, items)
        already = sum(1 for r in taken if taken and r["ts"] == rows[0]["ts"]) if rows else 0
        taken += rows[already:]
        if len(items) < page_size:
            break
        last = items[-1]["Timestamp"]
        more = recorded(client, sim, name, startTime=last, endTime=last, maxCount=page_size)["Items"]
        split_runs += len(more) > sum(1 for it in items if it["Timestamp"] == last)
        start = last
    taken = [r for r in taken if r["ts"] < pi_ns("2024-01-02T00:00:00Z")]
    assert taken == expected
    assert split_runs > 10  # many pages ended inside a run of equal timestamps


def test_streamsets_recorded(client, sim, url):
    names = ["CDM158", "BURST.VALVE", "OPERATOR.NOTE", "FAST.1HZ"]
    params = [("webId", sim.webid(n)) for n in names] + list(ISO_DAY.items()) + [("maxCount", "500")]
    body = json.loads(client.get("/streamsets/recorded", params=params).text)
    assert body["Links"] == {} and [s["Name"] for s in body["Items"]] == names
    for stream, name in zip(body["Items"], names, strict=True):
        assert list(stream) == ["WebId", "Name", "Path", "Links", "Items", "UnitsAbbreviation"]
        assert stream["WebId"] == sim.webid(name) and stream["Path"] == f"\\\\PISRV1\\{name}"
        assert stream["Links"] == {"Source": f"{url}/points/{sim.webid(name)}"}
        assert stream["Items"] == recorded(client, sim, name, maxCount=500)["Items"]
    assert len(body["Items"][3]["Items"]) == 500  # maxCount applies per stream
    missing = params + [("webId", "P1DPUElTUlYxXE5PUEU")]
    items = client.get("/streamsets/recorded", params=missing).json()["Items"]
    assert items[-1]["Items"] == [] and items[-1]["WebException"]["StatusCode"] == 404
    assert items[0]["Items"] == body["Items"][0]["Items"]
    assert client.get("/streamsets/recorded", params=[("webId", "garbage")]).status_code == 400


def test_batch_runs_independent_gets(client, sim, url):
    wid = sim.webid("SINUSOIDU")
    batch = {
        "a": {"Method": "GET", "Resource": f"{url}/points/{wid}"},
        "b": {
            "Method": "GET",
            "Resource": f"{url}/streams/{wid}/recorded?startTime=2024-01-01&endTime=2024-01-01T00:10:00Z",
        },
        "c": {"Method": "GET", "Resource": f"{url}/points?path=%5C%5CPISRV1%5CNOPE"},
    }
    r = client.post("/batch", json=batch)
    assert r.status_code == 207
    out = r.json()
    assert out["a"]["Status"] == 200 and out["a"]["Content"]["Name"] == "SINUSOIDU"
    assert len(out["b"]["Content"]["Items"]) == 3
    assert out["c"]["Status"] == 404 and out["c"]["Content"]["Errors"]


def test_request_size_limits(client, sim):
    long_url = client.get("/streamsets/recorded", params=[("webId", sim.webid("SINUSOID"))] * 700)
    assert long_url.status_code == 414
    big = client.post("/batch", content=b" " * (4 * 1024 * 1024 + 1), headers={"Content-Type": "application/json"})
    assert big.status_code == 413 and big.json()["Errors"]
    assert client.get("/dataservers").status_code == 200


def test_add_and_remove_points_while_serving(client, sim):
    sim.add_point(SimPoint("NEW.TAG", "Int32", 3600.0, descriptor="added at run time"))
    try:
        point = client.get("/points", params={"path": "\\\\PISRV1\\NEW.TAG"}).json()
        assert point["PointType"] == "Int32"
        items = recorded(client, sim, "NEW.TAG")["Items"]
        assert len(items) == 25 and all(isinstance(it["Value"], int | dict) for it in items)
    finally:
        sim.remove_point("NEW.TAG")
    assert client.get("/points", params={"path": "\\\\PISRV1\\NEW.TAG"}).status_code == 404
    assert client.get(f"/points/{point['WebId']}").status_code == 404


def test_rate_limit_with_and_without_retry_after():
    for retry_after in (True, False):
        sim = PiSimulator(rate_limit_per_s=0.01, retry_after=retry_after)  # one request, then none for 100 s
        with serve(sim) as base, httpx.Client(base_url=base) as c:
            assert c.get("/dataservers").status_code == 200
            r = c.get("/dataservers")
            assert r.status_code == 429 and r.json() == {"Errors": ["Rate limit was reached"]}
            assert ("retry-after" in r.headers) is retry_after
            if retry_after:
                assert int(r.headers["retry-after"]) >= 1
        assert [e["status"] for e in sim.request_log] == [200, 429]


def test_injected_http_errors(client, sim):
    for status in ("500", "502", "503"):
        sim.inject(status)
        r = client.get("/dataservers")
        assert r.status_code == int(status) and isinstance(r.json()["Errors"][0], str)
    sim.inject("503", retry_after=3)
    assert client.get("/dataservers").headers["retry-after"] == "3"
    date = email.utils.formatdate(usegmt=True)
    sim.inject("429", retry_after=date)
    r = client.get("/dataservers")
    assert r.status_code == 429 and r.headers["retry-after"] == date
    sim.inject("429", retry_after=None)
    assert "retry-after" not in client.get("/dataservers").headers
    sim.inject("429")
    assert client.get("/dataservers").headers["retry-after"] == "1"
    assert client.get("/dataservers").status_code == 200


def test_faults_match_paths_and_count_down(client, sim):
    sim.inject("500", times=2, path_contains="/streams/")
    assert client.get("/dataservers").status_code == 200
    wid = sim.webid("SINUSOIDU")
    assert [client.get(f"/streams/{wid}/recorded").status_code for _ in range(3)] == [500, 500, 200]
    sim.inject("401", path_contains="streamsets")
    assert client.get("/points", params={"path": "\\\\PISRV1\\SINUSOID"}).status_code == 200
    r = client.get("/streamsets/recorded", params={"webId": wid})
    assert r.status_code == 401 and r.content == b"" and "www-authenticate" in r.headers
    assert sim.request_log[-1]["fault"] == "401"


def test_slow_cut_webexception_and_value_error_faults(client, sim, url):
    wid = sim.webid("CDT158")
    sim.inject("slow", seconds=2.0)
    with pytest.raises(httpx.ReadTimeout):
        client.get(f"/streams/{wid}/recorded", params=ISO_DAY, timeout=0.2)
    with httpx.Client(base_url=url, timeout=60) as fresh:
        assert fresh.get(f"/streams/{wid}/recorded", params=ISO_DAY).status_code == 200

        sim.inject("cut")
        with pytest.raises(httpx.RemoteProtocolError):
            fresh.get(f"/streams/{wid}/recorded", params={**ISO_DAY, "maxCount": 5000})
    host, port = urlsplit(url).hostname, urlsplit(url).port
    sim.inject("cut", fraction=0.3)
    with socket.create_connection((host, port)) as s:
        s.sendall(
            f"GET /piwebapi/streams/{wid}/recorded?maxCount=5000&startTime=2024-01-01 HTTP/1.1\r\n"
            f"Host: {host}:{port}\r\n\r\n".encode()
        )
        raw = b""
        while chunk := s.recv(1 << 16):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = int(next(line.split(b":")[1] for line in lines if line.lower().startswith(b"content-length")))
    assert head.startswith(b"HTTP/1.1 200") and 0 < len(body) < length
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)

    with httpx.Client(base_url=url, timeout=60) as fresh:
        sim.inject("webexception")
        r = fresh.get(f"/streams/{wid}/recorded", params=ISO_DAY)
        assert r.status_code == 200
        assert r.json() == {
            "WebException": {"Errors": ["Error occurred during writing of the output stream."], "StatusCode": 500}
        }
        sim.inject("value_errors", every=3, path_contains="streamsets")
        params = [("webId", wid), ("webId", sim.webid("CDM158")), *ISO_DAY.items(), ("maxCount", "30")]
        streams = fresh.get("/streamsets/recorded", params=params).json()["Items"]
        clean = fresh.get("/streamsets/recorded", params=params).json()["Items"]
        for broken, good in zip(streams, clean, strict=True):
            assert [it["Timestamp"] for it in broken["Items"]] == [it["Timestamp"] for it in good["Items"]]
            bad = broken["Items"][2::3]
            assert len(bad) == 10 and not any(it["Good"] for it in bad)
            shapes = {
                (
                    "object"
                    if isinstance(it["Value"], dict) and "Errors" in it["Value"]
                    else "property"
                    if "Errors" in it
                    else "string"
                    if isinstance(it["Value"], str)
                    else "?"
                )
                for it in bad
            }
            assert shapes == {"object", "property", "string"}
            pairs = enumerate(zip(broken["Items"], good["Items"], strict=True))
            assert all(a == b for i, (a, b) in pairs if i % 3 != 2)


def test_auth_basic_and_bearer():
    sim = PiSimulator(username="pi-reader", password="s3cret", token="tok-123", points=[SimPoint("A")])
    with serve(sim) as base, httpx.Client(base_url=base) as c:
        r = c.get("/dataservers")
        assert r.status_code == 401 and r.content == b""
        assert r.headers.get_list("www-authenticate") == ['Basic realm="PISRV1"', "Bearer"]
        assert c.get("/dataservers", auth=("pi-reader", "wrong")).status_code == 401
        assert c.get("/dataservers", headers={"Authorization": "Bearer nope"}).status_code == 401
        assert c.get("/dataservers", auth=("pi-reader", "s3cret")).status_code == 200
        assert c.get("/dataservers", headers={"Authorization": "Bearer tok-123"}).status_code == 200
    basic_only = PiSimulator(username="u", password="p", points=[SimPoint("A")])
    with serve(basic_only) as base, httpx.Client(base_url=base) as c:
        assert c.get("/dataservers", headers={"Authorization": "Bearer p"}).status_code == 401
        assert c.get("/", auth=("u", "p")).status_code == 200


def test_request_log(client, sim):
    sim.clear_log()
    client.get(
        "/streamsets/recorded",
        params=[("webId", sim.webid("SINUSOID")), ("webId", sim.webid("CDT158")), ("maxCount", "2")],
    )
    (entry,) = sim.request_log
    assert entry["method"] == "GET" and entry["path"] == "/piwebapi/streamsets/recorded"
    assert entry["query"] == [("webId", sim.webid("SINUSOID")), ("webId", sim.webid("CDT158")), ("maxCount", "2")]
    assert entry["status"] == 200 and entry["time"] > 0


def test_main_serves_until_sigterm():
    env = {**os.environ, "NAIA_PI_SIM_PASSWORD": "pw"}
    command = [
        sys.executable,
        "-m",
        "naia_backfill.dev.simulators.pi_web_api.simulator",
        "--port",
        "0",
        "--seed",
        "3",
        "--username",
        "reader",
        "--rate-limit",
        "1000",
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        base = next(word for word in line.split() if word.startswith("http://127.0.0.1:"))
        assert base.endswith("/piwebapi")
        with httpx.Client(base_url=base, timeout=60) as c:
            assert c.get("/dataservers").status_code == 401
            assert c.get("/dataservers", auth=("reader", "pw")).json()["Items"][0]["Name"] == "PISRV1"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def swagger_validator(definition: str) -> jsonschema.Draft4Validator:
    spec = json.loads(SWAGGER.read_text())
    defs = copy.deepcopy(spec["definitions"])
    for name in (
        "TimedValue",
        "ExtendedTimedValue",
        "StreamValues",
        "Point",
        "Errors",
        "WebException",
        "DataServer",
        "Landing",
        "PointLinks",
        "DataServerLinks",
        "LandingLinks",
        "StreamValuesLinks",
    ):
        defs[name]["additionalProperties"] = False
    for name in ("TimedValue", "ExtendedTimedValue"):
        defs[name]["properties"]["Value"].pop("type")  # swagger's "object" means any JSON value here
    return jsonschema.Draft4Validator({"definitions": defs, "$ref": f"#/definitions/{definition}"})


def test_responses_validate_against_the_2018_sp1_swagger(client, sim):
    ds = sim.data_server_webid
    day = list(ISO_DAY.items())
    cases = [
        ("", {}, "Landing"),
        ("/dataservers", {}, "Items[DataServer]"),
        (f"/dataservers/{ds}", {}, "DataServer"),
        (f"/dataservers/{ds}/points", {"maxCount": 100}, "Items[Point]"),
        ("/points", {"path": "\\\\PISRV1\\CDM158"}, "Point"),
        (f"/points/{sim.webid('OPERATOR.NOTE')}", {}, "Point"),
        (f"/streams/{sim.webid('FAST.1HZ')}/recorded", {**ISO_DAY, "maxCount": 20_000}, "ExtendedTimedValues"),
        (
            "/streamsets/recorded",
            [
                *[("webId", sim.webid(n)) for n in ("CDM158", "BURST.VALVE", "OPERATOR.NOTE", "FLOW101.F64")],
                *day,
                ("maxCount", "2000"),
            ],
            "Items[StreamValues]",
        ),
        ("/points", {"path": "\\\\PISRV1\\NOPE"}, "Errors"),
        (f"/streams/{sim.webid('SINUSOID')}/recorded", {"maxCount": 10**6}, "Errors"),
    ]
    for path, params, definition in cases:
        body = client.get(path, params=params).json()
        if definition == "ExtendedTimedValues":
            assert body.pop("Links") == {}  # PI sends it although the swagger type lacks it
        swagger_validator(definition).validate(body)
    sim.inject("webexception")
    swagger_validator("Landing").validate(client.get("").json())
    sim.inject("value_errors", every=2)
    errors = client.get(f"/streams/{sim.webid('SINUSOID')}/recorded", params=ISO_DAY).json()
    errors.pop("Links")
    swagger_validator("ExtendedTimedValues").validate(errors)
    with pytest.raises(jsonschema.ValidationError):  # the check is strict enough to notice an extra key
        swagger_validator("TimedValue").validate({"Timestamp": "2024-01-01T00:00:00Z", "Value": 1, "Extra": 1})


def test_recorded_fixtures_are_what_the_simulator_serves():
    manifest = json.loads((FIXTURES / "sim_manifest.json").read_text())
    fresh = pi_fixtures.record()
    assert [entry for entry, _ in fresh.values()] == manifest
    for entry in manifest:
        text = fresh[entry["file"]][1]
        if entry["file"] is None:
            assert text == "" and entry["status"] == 401
            continue
        assert (FIXTURES / entry["file"]).read_text(encoding="utf-8") == text, entry["file"]
        json.loads(text)
