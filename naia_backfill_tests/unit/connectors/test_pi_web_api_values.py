"""The vectorised PI response parser against a plain per-event reading of the same JSON, on random responses
holding every kind of value and flag PI sends (and a few it should not), plus its edge cases one by one."""

from __future__ import annotations

import random
import subprocess
import sys

import numpy as np
import orjson
import pyarrow as pa
import pytest

from naia_backfill.connectors.pi_web_api_json import parse_streamset
from naia_backfill.errors import SourceError
from naia_backfill.schema import SAMPLE_SCHEMA

T0 = np.datetime64("2024-01-01T00:00:00", "ns")
NAMES = ["Open", "Closed", "I/O Timeout", "Ünder Range", "状态", "Shutdown"]
TEXTS = ["idle", "Bad Value", "", "Überlauf", "温度 ok", "quote \" and \\ backslash", "new\nline"]


def reference_rows(body: bytes) -> list[dict]:
    """Each event read on its own from ``orjson.loads``, by the rules in the connector's docs."""
    rows = []
    for stream in orjson.loads(body).get("Items") or []:
        for x in stream.get("Items") or []:
            v = {"Errors": x["Errors"]} if x.get("Errors") is not None else x.get("Value")
            ts = np.datetime64(x["Timestamp"].rstrip("Z"), "ns") - np.datetime64(0, "ns")
            row = {"ts": int(ts.astype(np.int64)), "value": None, "text": None, "state_code": None, "is_system": False,
                   "good": x.get("Good", True), "questionable": x.get("Questionable", False),
                   "substituted": x.get("Substituted", False), "annotated": x.get("Annotated", False)}
            if type(v) in (int, float, bool):
                row["value"] = float(v)
            elif type(v) is str:
                row["text"] = v
            elif type(v) is dict and "Errors" in v:
                errors = v["Errors"] if type(v["Errors"]) is list else [v["Errors"]]
                parts = []
                for e in errors:
                    e = e["Message"] if type(e) is dict and "Message" in e else e
                    parts += [str(m) for m in e] if type(e) is list else [str(e)]
                row["text"], row["good"] = "; ".join(parts), False
            elif type(v) is dict and "Name" in v:
                row["text"] = str(v["Name"])
                code = v.get("Value")
                if type(code) in (int, float) and -(2**31) <= code < 2**31:
                    row["state_code"] = int(code)
                row["is_system"] = bool(v.get("IsSystem"))
            elif v is not None:
                row["text"] = orjson.dumps(v).decode()
            rows.append(row)
    return rows


def _stamp(ns: int) -> str:
    text = str(T0 + np.timedelta64(ns, "ns"))
    return text.rstrip("0").rstrip(".") + "Z"


def _value(rng: random.Random):
    """A Value of every shape, common ones most often; and whether the event is usually bad."""
    kind = rng.choices(["float", "int", "bool", "null", "str", "state", "system", "errors", "big_code", "float_code",
                        "other_dict", "extra_keys", "list"], [40, 6, 2, 3, 5, 8, 4, 3, 1, 1, 1, 1, 1])[0]
    if kind == "float":
        return rng.choice([rng.uniform(-1e6, 1e6), 0.0, -0.0, 1e300, 5e-324]), True
    if kind == "int":
        return rng.choice([0, -7, 2**40, 2**63 + 5]), True
    if kind == "bool":
        return rng.random() < 0.5, True
    if kind == "null":
        return None, True
    if kind == "str":
        return rng.choice(TEXTS), True
    if kind in ("state", "system"):
        state = {"Name": rng.choice(NAMES), "Value": rng.randint(0, 300), "IsSystem": kind == "system"}
        if rng.random() < 0.2:
            del state["IsSystem"]
        return state, kind == "state"
    if kind == "errors":
        return {"Errors": rng.choice([["[-11059] No Good Data"], ["a", "b"], "one"])}, False
    if kind == "big_code":
        return {"Name": "Huge", "Value": 2**31, "IsSystem": False}, True
    if kind == "float_code":
        return {"Name": "Half", "Value": 2.5, "IsSystem": False}, True
    if kind == "other_dict":
        return rng.choice([{"Value": 3}, {}, {"Weird": [1, 2]}]), True
    if kind == "extra_keys":
        return {"Name": "Open", "Value": 1, "IsSystem": False, "Extra": "x"}, True
    return [1, "two", None], True


def _event(rng: random.Random, ns: int) -> dict:
    value, good = _value(rng)
    event: dict = {"Timestamp": _stamp(ns), "UnitsAbbreviation": "", "Good": good if rng.random() < 0.95 else not good}
    for flag in ("Questionable", "Substituted", "Annotated"):
        event[flag] = rng.random() < 0.01
    if rng.random() < 0.1:  # flags left out: their defaults apply
        for flag in ("Good", "Questionable", "Substituted", "Annotated"):
            event.pop(flag)
    event["Value"] = value
    if value is None and rng.random() < 0.5:  # the swagger form of a value PI could not read
        event["Errors"] = [{"FieldName": "Value", "Message": ["Error reading the value."]}]
        event["Good"] = False
    if rng.random() < 0.05:  # another key order
        event = dict(reversed(list(event.items())))
    return event


def random_response(seed: int, streams: int = 4, events: int = 60) -> bytes:
    rng = random.Random(seed)
    items = []
    for s in range(streams):
        t, stream_events = rng.randint(-10**9, 10**9) // 100 * 100, []
        for _ in range(rng.choice([0, events // 4, events])):
            stream_events.append(_event(rng, t))
            t += rng.choice([0, 0, 100, 1_000_000_000, 123_456_700])  # runs of equal timestamps, 7 digits
        stream = {"WebId": f"W{s}", "Name": f"P{s}", "Items": stream_events}
        if not stream_events and rng.random() < 0.5:
            stream["Items"] = None
        items.append(stream)
    option = orjson.OPT_INDENT_2 if rng.random() < 0.3 else 0
    return orjson.dumps({"Links": {}, "Items": items}, option=option)


def parsed_rows(body: bytes) -> list[dict]:
    page = parse_streamset(body)
    batch = page.batch([f"P{i}" for i in range(len(page.web_ids))])
    assert batch.schema == SAMPLE_SCHEMA
    rows = batch.to_pylist()
    ts = batch.column("ts").cast(pa.int64()).to_pylist()
    for row, t in zip(rows, ts, strict=True):
        row["ts"] = t
        del row["point"]
    return rows


@pytest.mark.parametrize("seed", range(60))
def test_random_responses_match_a_per_event_reading(seed):
    body = random_response(seed)
    assert parsed_rows(body) == reference_rows(body)


def test_a_big_page_of_mostly_plain_numbers_matches_too():
    body = random_response(1234, streams=30, events=2000)
    assert parsed_rows(body) == reference_rows(body)


def _page(*events: dict) -> bytes:
    return orjson.dumps({"Items": [{"WebId": "W", "Name": "P", "Items": list(events)}]})


def _one(value=None, **kw) -> dict:
    return {"Timestamp": "2024-01-01T00:00:00Z", "Value": value, **kw}


@pytest.mark.parametrize("event,expected", [
    (_one(None, Errors=[{"FieldName": "Value", "Message": ["gone"]}]), {"text": "gone", "good": False}),
    (_one(None), {"text": None, "value": None, "good": True}),
    (_one({"Errors": ["x", "y"]}, Good=True), {"text": "x; y", "good": False}),
    (_one({"Name": "Big", "Value": 2**31, "IsSystem": True}), {"text": "Big", "state_code": None, "is_system": True}),
    (_one({"Name": "Neg", "Value": -(2**31)}), {"text": "Neg", "state_code": -(2**31), "is_system": False}),
    (_one({"Name": None, "Value": 3}), {"text": "None", "state_code": 3}),
    (_one({"Name": "X", "Value": 1, "Other": 2}), {"text": "X", "state_code": 1}),
    (_one({"Value": 3}), {"text": '{"Value":3}', "state_code": None}),
    (_one([1, {"a": None}]), {"text": '[1,{"a":null}]'}),
    (_one(True), {"value": 1.0, "text": None}),
    (_one(12345678901234567890), {"value": float(12345678901234567890)}),
    (_one(1.5, Questionable=True, Annotated=True), {"value": 1.5, "questionable": True, "annotated": True,
                                                     "substituted": False}),
    (_one("Überlauf ✓"), {"text": "Überlauf ✓", "value": None}),
])
def test_edge_cases_one_by_one(event, expected):
    (row,) = parsed_rows(_page(event))
    assert {k: row[k] for k in expected} == expected


def test_equal_timestamps_keep_their_order_and_ticks_stay_exact():
    stamps = ["2024-01-01T00:00:00.1234567Z"] * 3 + ["2024-01-01T00:00:00.9999999Z", "2024-01-01T00:00:01Z"]
    rows = parsed_rows(_page(*[_one(float(i), Timestamp=s) for i, s in enumerate(stamps)]))
    assert [r["value"] for r in rows] == [0.0, 1.0, 2.0, 3.0, 4.0]
    base = 1_704_067_200 * 10**9
    assert [r["ts"] for r in rows] == [base + 123_456_700] * 3 + [base + 999_999_900, base + 10**9]


def test_events_going_back_in_time_within_a_stream_are_refused():
    with pytest.raises(SourceError, match="not in time order"):
        parse_streamset(_page(_one(1.0, Timestamp="2024-01-01T00:00:01Z"), _one(2.0)))


def test_unreadable_timestamp_is_a_source_error():
    with pytest.raises(SourceError, match="unreadable timestamp"):
        parse_streamset(_page(_one(1.0, Timestamp="yesterday")))


def test_parsing_never_imports_pandas():
    code = ("import sys\n"
            "from naia_backfill.dev.benchmarks.pi_parse import build_response\n"
            "from naia_backfill.connectors.pi_web_api_json import parse_streamset\n"
            "parse_streamset(build_response(30, 200)).batch([f'B{i}' for i in range(30)])\n"
            "assert 'pandas' not in sys.modules, 'pandas was imported'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
