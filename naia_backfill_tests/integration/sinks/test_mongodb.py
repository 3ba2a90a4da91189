"""The MongoDB sink against the real MongoDB-protocol server (FerretDB): a day written twice is the same
documents, the unique index exists, readings already stored under other ids are replaced in place, and a point
set of any source writes its samples there."""

from __future__ import annotations

import datetime as dt
import uuid

import pyarrow.parquet as pq
import pymongo
import pytest
from bson import ObjectId

from naia_backfill.connectors.synthetic import SyntheticConnector
from naia_backfill.schema import from_columns
from naia_backfill.settings import SyntheticSource
from naia_backfill.settings.sinks import MongoDBSink
from naia_backfill.sinks.base import DayTarget
from naia_backfill.sinks.mongodb import MongoDBDaySink
from naia_backfill_tests.conftest import run_job, write_point_set

pytestmark = pytest.mark.integration
DAY = dt.date(2024, 1, 1)
START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def database(service_env):
    client = pymongo.MongoClient(service_env.mongodb_uri, tz_aware=True)
    name = f"naia_test_{uuid.uuid4().hex[:8]}"
    yield client[name]
    client.drop_database(name)
    client.close()


def write_day(uri: str, settings: MongoDBSink, batches) -> dict:
    sink = MongoDBDaySink(settings, uri)
    try:
        writer = sink.open_day(DayTarget("plant", DAY, "run"))
        for b in batches:
            writer.write(b)
        return writer.commit().extra
    finally:
        sink.close()


def synthetic_day(points: int = 12, interval: float = 600.0):
    source = SyntheticConnector(SyntheticSource(kind="synthetic", points=points, interval_seconds=interval, seed=3))
    names = source.list_points("*")
    return list(source.fetch(names, START, START + dt.timedelta(days=1)))


def test_a_day_written_twice_is_the_same_documents(service_env, database):
    settings = MongoDBSink(kind="mongodb", database=database.name, collection="samples", batch_documents=500)
    batches = synthetic_day()
    rows = sum(b.num_rows for b in batches)
    first = write_day(service_env.mongodb_uri, settings, batches)
    before = list(database["samples"].find({}, sort=[("_id", 1)]))
    second = write_day(service_env.mongodb_uri, settings, batches)
    after = list(database["samples"].find({}, sort=[("_id", 1)]))
    assert (first["documents_inserted"], first["documents_replaced"]) == (rows, 0)
    assert (second["documents_inserted"], second["documents_replaced"]) == (0, rows)
    assert len(before) == rows and before == after
    index = database["samples"].index_information()["naia_event_key"]
    assert index["unique"] and [k for k, _ in index["key"]] == ["point", "ts", "ts_ns", "seq"]
    equal_ts = [d for d in after if d["seq"] > 0]
    assert equal_ts, "the synthetic day has runs of equal timestamps; each event must be its own document"


@pytest.mark.parametrize("rerun", ["delete_insert", "replace"])
def test_readings_stored_under_other_ids_are_replaced(service_env, database, rerun):
    settings = MongoDBSink(kind="mongodb", database=database.name, collection="readings", document="waqi", rerun=rerun)
    old = ObjectId()
    database["readings"].insert_one({"_id": old, "ts": START, "meta": {"station_idx": 1583}, "aqi": 1})
    ts = [int(START.timestamp()) * 10**9 + h * 3600 * 10**9 for h in range(3)]
    batch = from_columns(point=["1583/aqi"] * 3, ts=ts, value=[57.0, 58.0, 59.0])
    write_day(service_env.mongodb_uri, settings, [batch])
    write_day(service_env.mongodb_uri, settings, [batch])
    docs = list(database["readings"].find({}, sort=[("ts", 1)]))
    assert [d["aqi"] for d in docs] == [57, 58, 59]
    assert docs[0]["_id"] == (old if rerun == "replace" else f"1583|{ts[0] // 10**9}")  # replace keeps the _id
    assert docs[1]["_id"] == f"1583|{ts[1] // 10**9}"


def test_a_point_set_of_any_source_writes_its_samples(workdir, service_env, database, monkeypatch):
    monkeypatch.setenv("NAIA_TEST_MONGO", service_env.mongodb_uri)
    sink = {"kind": "mongodb", "uri_env": "NAIA_TEST_MONGO", "database": database.name, "collection": "plant"}
    path = write_point_set(workdir, "plant_m", sinks=["parquet", sink])
    for _ in range(2):
        result, _ = run_job(path, [DAY])
        assert result.success
    rows = pq.read_metadata(workdir / "lake" / "point_set=plant_m" / f"date={DAY}" / "all.parquet").num_rows
    assert database["plant"].count_documents({}) == rows
    assert database["plant"].count_documents({"point_set": "plant_m"}) == rows
