"""The PI Web API simulator without sockets: its data model, JSON writer, time strings, WebIDs and routes."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pyarrow as pa
import pytest

from naia_backfill.schema import SAMPLE_SCHEMA, conform
from naia_backfill.dev.simulators.pi_web_api.data import (
    DIGITAL_SETS,
    KIND_DIGITAL,
    KIND_NUMBER,
    KIND_STRING,
    KIND_SYSTEM,
    STRING_VALUES,
    SYSTEM_STATES,
    TICKS_PER_DAY,
    SimPoint,
    default_points,
    generate,
    to_ticks,
)
from naia_backfill.dev.simulators.pi_web_api.timed_values import VALUE_ERROR_SHAPES, iso, timed_values
from naia_backfill.dev.simulators.pi_web_api.routes import PiApi, decode_webid, point_webid
from naia_backfill.dev.simulators.pi_web_api.time_strings import PiTimeError, parse_pi_time
from naia_backfill.dev.simulators.pi_web_api.simulator import PiSimulator

DAY = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
T0 = to_ticks(DAY)
POINTS = {p.name: p for p in default_points()}


def day_events(name: str, day: int = 0, seed: int = 0):
    return generate(POINTS[name], seed, T0 + day * TICKS_PER_DAY, T0 + (day + 1) * TICKS_PER_DAY - 1)


def reference_iso(ticks: int) -> str:
    """PI's timestamp text, written independently of the simulator."""
    seconds, frac = divmod(int(ticks), 10_000_000)
    text = (dt.datetime(1970, 1, 1) + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{frac:07d}".rstrip("0") if frac else "") + "Z"


def test_default_catalogue_names_types_and_rates():
    assert list(POINTS)[:5] == ["SINUSOID", "SINUSOIDU", "CDT158", "CDM158", "BA:TEMP.1"]
    types = {p.point_type for p in POINTS.values()}
    assert {"Float32", "Float64", "Int16", "Int32", "Digital", "String"} <= types
    assert POINTS["FAST.1HZ"].interval_s == 1.0 and POINTS["FAST.10HZ"].interval_s == 0.1
    assert all(p.digital_set in DIGITAL_SETS for p in POINTS.values() if p.point_type == "Digital")


def test_events_are_a_function_of_seed_point_and_time_not_of_the_range_asked():
    whole = day_events("BURST.VALVE")
    a, b = T0 + 3_600 * 10**7, T0 + 7_200 * 10**7
    part = generate(POINTS["BURST.VALVE"], 0, a, b)
    inside = (whole.ticks >= a) & (whole.ticks <= b)
    np.testing.assert_array_equal(part.ticks, whole.ticks[inside])
    np.testing.assert_array_equal(part.number, whole.number[inside])
    again = day_events("BURST.VALVE")
    np.testing.assert_array_equal(again.number, whole.number)
    other_seed = day_events("BURST.VALVE", seed=1)
    assert not np.array_equal(other_seed.number[:100], whole.number[:100])


def test_inside_boundaries_limit_and_descending_order():
    p = POINTS["SINUSOIDU"]  # one event every 300 s exactly on the grid
    ev = generate(p, 0, T0, T0 + 3_000 * 10**7)
    assert len(ev) == 11 and ev.ticks[0] == T0 and ev.ticks[-1] == T0 + 3_000 * 10**7
    first = generate(p, 0, T0, T0 + TICKS_PER_DAY, limit=5)
    np.testing.assert_array_equal(first.ticks, ev.ticks[:5])
    down = generate(p, 0, T0, T0 + 3_000 * 10**7, descending=True)
    np.testing.assert_array_equal(down.ticks, ev.ticks[::-1])
    assert len(generate(p, 0, T0 + 1, T0 + 299 * 10**7)) == 0


def test_one_second_point_has_more_than_86400_events_a_day_with_bursts_and_system_states():
    ev = day_events("FAST.1HZ")
    assert len(ev) > 86_400
    assert np.all(np.diff(ev.ticks) >= 0)
    equal = np.flatnonzero(np.diff(ev.ticks) == 0)
    assert len(equal) > 100
    assert np.any(ev.number[equal] != ev.number[equal + 1])
    system = ev.kind == KIND_SYSTEM
    assert system.any() and not ev.good[system].any()
    assert set(ev.code[system].tolist()) <= {246, 248, 254, 255}
    assert ev.questionable.any() and ev.substituted.any() and ev.annotated.any()
    assert (~ev.good & (ev.kind == KIND_NUMBER)).any()  # bad numbers


def test_types_values_and_sub_second_timestamps():
    ints = day_events("LEVEL101.I16")
    nums = ints.number[ints.kind == KIND_NUMBER]
    assert np.all(nums == np.rint(nums)) and nums.max() <= 32_767
    f32 = day_events("CDT158").number
    f32 = f32[~np.isnan(f32)]
    np.testing.assert_array_equal(np.round(f32, 3), f32)
    digital = day_events("CDM158")
    states = digital.code[digital.kind == KIND_DIGITAL]
    assert states.min() >= 0 and states.max() < len(DIGITAL_SETS["Modes"]) and len(set(states.tolist())) > 1
    strings = day_events("OPERATOR.NOTE", day=3)
    assert set(strings.code[strings.kind == KIND_STRING].tolist()) <= set(range(len(STRING_VALUES)))
    jitter = day_events("SINUSOID").ticks % 10**7
    assert np.any(jitter % 10 != 0) and np.any((jitter != 0) & (jitter % 10_000 == 0))
    fast = generate(POINTS["FAST.10HZ"], 0, T0, T0 + 10**7)
    assert [reference_iso(t) for t in fast.ticks[:3]] == [
        "2024-01-01T00:00:00Z",
        "2024-01-01T00:00:00.1Z",
        "2024-01-01T00:00:00.2Z",
    ]


def test_sparse_point_has_empty_days_and_nodata_point_none():
    counts = [len(day_events("SPARSE.LAB", day=d)) for d in range(20)]
    assert 0 in counts and max(counts) > 0
    assert sum(len(day_events("NODATA.1", day=d)) for d in range(5)) == 0


def test_timed_values_json_matches_the_events_exactly():
    for name in POINTS:
        ev = generate(POINTS[name], 0, T0, T0 + TICKS_PER_DAY, limit=20_000)
        items = json.loads(timed_values(ev, POINTS[name]))
        assert len(items) == len(ev)
        for i in range(0, len(ev), max(1, len(ev) // 500)):
            item = items[i]
            assert list(item) == [
                "Timestamp",
                "UnitsAbbreviation",
                "Good",
                "Questionable",
                "Substituted",
                "Annotated",
                "Value",
            ]
            assert item["Timestamp"] == reference_iso(int(ev.ticks[i]))
            assert (item["Good"], item["Questionable"], item["Substituted"], item["Annotated"]) == (
                ev.good[i],
                ev.questionable[i],
                ev.substituted[i],
                ev.annotated[i],
            )
            value, kind, code = item["Value"], ev.kind[i], int(ev.code[i])
            if kind == KIND_NUMBER:
                assert value == ev.number[i]
                assert isinstance(value, int) == (POINTS[name].point_type in ("Int16", "Int32"))
            elif kind == KIND_SYSTEM:
                assert value == {"Name": SYSTEM_STATES[code], "Value": code, "IsSystem": True}
            elif kind == KIND_DIGITAL:
                assert value == {"Name": POINTS[name].states[code], "Value": code, "IsSystem": False}
            else:
                assert value == STRING_VALUES[code]


def test_timestamps_trim_trailing_zeros_and_handle_any_tick():
    for ticks in [0, 1, 10, 1_234_500, 9_999_999, -1, T0 + 5_000_000, 253_402_300_799 * 10**7]:
        assert iso(ticks) == reference_iso(ticks)


def test_value_errors_replace_every_nth_value_in_each_shape():
    ev = day_events("CDT158")
    items = json.loads(timed_values(ev, POINTS["CDT158"], value_errors=4))
    bad = items[3::4]
    assert all(not it["Good"] for it in bad)
    assert isinstance(bad[0]["Value"], dict) and bad[0]["Value"]["Errors"]
    assert bad[1]["Value"] is None and bad[1]["Errors"][0]["FieldName"] == "Value"
    assert isinstance(bad[2]["Value"], str)
    assert [it["Timestamp"] for it in items] == [reference_iso(int(t)) for t in ev.ticks]
    assert len(VALUE_ERROR_SHAPES) == 3


def test_truth_is_canonical_half_open_and_maps_every_kind():
    sim = PiSimulator()
    names = ["CDM158", "SINUSOIDU", "OPERATOR.NOTE", "CDT158"]
    table = sim.truth(names, DAY, DAY + dt.timedelta(days=1))
    assert table.schema == SAMPLE_SCHEMA
    conform(table)
    points = table.column("point").to_pylist()
    assert points == sorted(points, key=names.index)
    sinus = table.filter(pa.compute.equal(table.column("point"), "SINUSOIDU"))
    assert len(sinus) == 288  # the event at the next midnight belongs to the next day
    rows = table.to_pylist()
    digital = next(r for r in rows if r["point"] == "CDM158" and not r["is_system"])
    assert digital["value"] is None and digital["text"] in DIGITAL_SETS["Modes"] and digital["state_code"] is not None
    system = next(r for r in rows if r["is_system"])
    assert system["text"] == SYSTEM_STATES[system["state_code"]] and system["good"] is False
    number = next(r for r in rows if r["point"] == "CDT158" and not r["is_system"])
    assert number["text"] is None and number["state_code"] is None and isinstance(number["value"], float)


def test_webid_is_path_only_webid_2():
    assert point_webid("PISRV1", "SINUSOID") == "P1DPUElTUlYxXFNJTlVTT0lE"
    assert point_webid("pisrv1", "sinusoid") == "P1DPUElTUlYxXFNJTlVTT0lE"
    assert decode_webid("P1DPUElTUlYxXFNJTlVTT0lE") == ("DP", "PISRV1\\SINUSOID")
    assert PiSimulator().data_server_webid == "P1DSUElTUlYx"


def test_pi_time_strings():
    now = parse_pi_time("2024-03-31T12:34:56.1234567Z", 0)
    day = 86_400 * 10**7
    assert parse_pi_time("*", now) == now and parse_pi_time("*-1d", now) == now - day
    assert parse_pi_time("t", now) == to_ticks(dt.datetime(2024, 3, 31))
    assert parse_pi_time("y", now) == to_ticks(dt.datetime(2024, 3, 30))
    assert parse_pi_time("2024-01-01T02:00:00+02:00", now) == T0
    assert parse_pi_time("2024-01-01T00:00:00.12345678Z", now) == T0 + 1_234_567
    assert parse_pi_time("2024-01-01", now) == T0
    assert parse_pi_time("t-1mo+8h", now) == to_ticks(dt.datetime(2024, 2, 29, 8))
    for bad in ["", "yesterday-ish", "2024-13-01", "*-1parsec"]:
        with pytest.raises(PiTimeError):
            parse_pi_time(bad, now)


def test_routes_without_a_socket():
    sim = PiSimulator(max_returned_items=1000)
    api = PiApi(sim)

    def get(path, *params):
        return api.handle("GET", path, list(params), b"", "http://pi.test/piwebapi")

    page = json.loads(get(f"/dataservers/{sim.data_server_webid}/points", ("nameFilter", "sinusoid?")).body)
    assert [p["Name"] for p in page["Items"]] == ["SINUSOIDU"]
    too_many = get(f"/streams/{sim.webid('SINUSOID')}/recorded", ("maxCount", "1001"))
    assert too_many.status == 400 and json.loads(too_many.body)["Errors"]
    assert get("/streams/P1DPUElTUlYxXE5PUEU/recorded").status == 404
    assert get("/streams/not-a-webid/recorded").status == 400
    assert get(f"/streams/{sim.webid('SINUSOID')}/recorded", ("maxCount", "many")).status == 400
    assert get("/no/such/resource").status == 404
    assert api.handle("DELETE", "/dataservers", [], b"", "http://pi.test/piwebapi").status == 405


def test_sim_point_validation():
    with pytest.raises(ValueError):
        SimPoint("X", "Digital")
    with pytest.raises(ValueError):
        SimPoint("X", "Digital", digital_set="Nope")
    with pytest.raises(ValueError):
        SimPoint("BAD*NAME")
    with pytest.raises(ValueError):
        SimPoint("X", "Complex128")
