"""Documents the MongoDB sink writes, built from canonical batches (no server)."""

from __future__ import annotations

import datetime as dt
import types

import orjson
import pyarrow as pa
import pytest

from naia_backfill.errors import SinkError
from naia_backfill.schema import EventSeq, from_columns
from naia_backfill.sinks.mongodb import WaqiDocuments, local_time, safe_address, sample_documents

T0 = dt.datetime(2024, 1, 15, 3, tzinfo=dt.UTC)


def batch(points: list[str], seconds: list[float], values: list[float | None], **extra: list) -> pa.RecordBatch:
    ns = [int(T0.timestamp()) * 1_000_000_000 + round(s * 1e9) for s in seconds]
    return from_columns(point=points, ts=pa.array(ns, pa.int64()).cast(pa.timestamp("ns", tz="UTC")), value=values, **extra)


def test_sample_documents_have_deterministic_ids_exact_ns_and_no_null_fields():
    b = batch(["A", "A", "A", "B"], [0, 0, 0.0000001, 0], [1.0, 2.0, None, 4.0], text=[None, None, "Shutdown", None])
    docs = sample_documents(b, EventSeq()(b), "plant")
    ns0 = int(T0.timestamp() * 1e9)
    assert [d["_id"] for d in docs] == [f"A|{ns0}|0", f"A|{ns0}|1", f"A|{ns0 + 100}|0", f"B|{ns0}|0"]
    assert docs[2]["ts_ns"] == ns0 + 100 and "value" not in docs[2] and docs[2]["text"] == "Shutdown"
    assert docs[0]["ts"].as_datetime().replace(tzinfo=dt.UTC) == T0 and docs[0]["point_set"] == "plant" and docs[0]["good"] is True
    assert sample_documents(b, EventSeq()(b), "plant") == docs


def test_waqi_readings_group_a_stations_values_per_observation():
    offsets = {"1583": {"+07:00": 0}}
    b = batch(["1583/aqi", "1583/pm25", "1583/t", "1583/t", "2553/pm25"], [0, 0, 0, 3600, 0], [57.0, 57.0, 18.5, 19.0, 150.0])
    grouped = WaqiDocuments(offsets)
    grouped.add(b)
    docs = grouped.take()
    first = next(d for d in docs if d["_id"] == f"1583|{int(T0.timestamp())}")
    assert first["aqi"] == 57 and isinstance(first["aqi"], int)
    assert first["iaqi"] == {"pm25": {"v": 57}, "t": {"v": 18.5}} and first["meta"] == {"station_idx": 1583}
    assert first["time"] == {"s": "2024-01-15 10:00:00", "tz": "+07:00", "v": int(T0.timestamp()) + 7 * 3600,
                             "iso": "2024-01-15T10:00:00+07:00"}
    later = next(d for d in docs if d["_id"] == f"1583|{int(T0.timestamp()) + 3600}")
    assert "aqi" not in later and later["iaqi"] == {"t": {"v": 19}}
    assert next(d for d in docs if d["meta"]["station_idx"] == 2553)["time"]["tz"] == "+00:00"
    assert len(docs) == 3 and grouped.take() == []


def test_waqi_documents_need_station_points():
    with pytest.raises(SinkError, match="<station uid>/<key>"):
        WaqiDocuments({}).add(batch(["SINUSOID"], [0], [1.0]))


def test_the_offset_in_force_follows_daylight_saving():
    offsets = {"+01:00": 1_000, "+02:00": 5_000}
    assert local_time(4_000, offsets)["tz"] == "+01:00"
    assert local_time(6_000, offsets)["tz"] == "+02:00"
    assert local_time(6_000, {})["tz"] == "+00:00"


def test_the_address_never_shows_credentials():
    assert safe_address("mongodb://user:s3cret@db1:27018,db2/naia?authSource=admin") == "db1:27018,db2:27017"
    assert "s3cret" not in safe_address("mongodb://user:s3cret@[bad")


def test_the_day_metadata_offsets_reach_the_documents():
    target = types.SimpleNamespace(point_set="p", day=T0.date(), metadata={
        "waqi.utc_offsets": orjson.dumps({"1583": {"+07:00": 0}}).decode()})
    from naia_backfill.settings.sinks import MongoDBSink
    from naia_backfill.sinks.mongodb import MongoDBDaySink, MongoDBDayWriter

    class FakeClient(dict):
        def __init__(self, *a, **k):
            super().__init__()

        def __missing__(self, key):
            return {"c": None}

    sink = MongoDBDaySink(MongoDBSink(kind="mongodb", collection="c", document="waqi"), "mongodb://h/", client=FakeClient)
    writer = MongoDBDayWriter(sink, target)
    writer.write(batch(["1583/aqi"], [0], [57.0]))
    assert writer.waqi.take()[0]["time"]["tz"] == "+07:00"
