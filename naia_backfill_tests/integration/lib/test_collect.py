"""The bundled waqi_demo point set, pointed at the WAQI simulator: a simulated day of polls (the simulator's clock
moves 15 minutes a poll) is staged, then materialized into Parquet and the real MongoDB-protocol server with
counts equal to the simulator's truth; a re-run changes nothing; an uncollected day fails with the explanation;
a bad token and an unknown station fail clearly and write nothing."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import dagster as dg
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pymongo
import pytest
import yaml
from click.testing import CliRunner

from naia_backfill.cli import cli
from naia_backfill.connectors import build_source
from naia_backfill.connectors.base import Credentials
from naia_backfill.dev.simulators.waqi.clock import SimClock
from naia_backfill.dev.simulators.waqi.simulator import WaqiSimulator, samples, serve
from naia_backfill.lib.definitions import build_definitions
from naia_backfill.settings import BUNDLED_DIR, load_point_set
from naia_backfill_tests.conftest import run_job

pytestmark = pytest.mark.integration
DAY = dt.date(2024, 1, 15)
START = dt.datetime(2024, 1, 15, tzinfo=dt.UTC)
TOKEN = "sim-token-7d1e"


def point_set_file(folder: Path, url: str, database: str, name: str = "waqi_demo", **source: object) -> Path:
    """waqi_demo as bundled, with the simulator's URL and a database of this test (``name``: a copy the CLI
    can load beside the bundled file)."""
    doc = yaml.safe_load((BUNDLED_DIR / "waqi_demo.yaml").read_text())
    doc["name"] = name
    doc["source"] = {**doc["source"], "base_url": url, "rate_limit_key": f"waqi_{uuid.uuid4().hex[:8]}", **source}
    doc["sinks"] = [s if s == "parquet" else {**s, "database": database} for s in doc["sinks"]]
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def collect_job(path: Path) -> dg.ExecuteInProcessResult:
    ps = load_point_set(path)
    job = build_definitions({ps.name: ps}).resolve_job_def(f"{ps.name}_collect")
    return job.execute_in_process(instance=dg.DagsterInstance.get(), raise_on_error=False)


def failure(result: dg.ExecuteInProcessResult) -> str:
    errors = [e.event_specific_data.error for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    text = ""
    for err in errors:
        while err is not None:
            text += err.message
            err = err.cause
    return text


def staged_files(workdir: Path) -> list[Path]:
    return sorted((workdir / "lake" / "_staging").rglob("*_*.json"))


@pytest.fixture
def mongo(service_env):
    client = pymongo.MongoClient(service_env.mongodb_uri, tz_aware=True)
    name = f"naia_test_waqi_{uuid.uuid4().hex[:8]}"
    yield client[name]
    client.drop_database(name)
    client.close()


@pytest.fixture
def sim():
    simulator = WaqiSimulator(clock=SimClock(START - dt.timedelta(minutes=20)), token=TOKEN)
    with serve(simulator) as url:
        simulator.url = url
        yield simulator


def collect_day(sim: WaqiSimulator, path: Path) -> list[dt.datetime]:
    """Polls every 15 minutes from 23:40 the day before to 00:25 the day after: the first and last through the
    Dagster collect job, the others through the connector the job calls."""
    ps = load_point_set(path)
    polls = []
    with build_source(ps, Credentials(token=TOKEN)) as source:
        while sim.clock.now() < START + dt.timedelta(days=1, minutes=30):
            polls.append(sim.clock.now())
            if len(polls) == 1:
                assert collect_job(path).success
            else:
                source.collect()
            sim.clock.advance(15 * 60)
    assert collect_job(path).success  # a repeated poll of the same readings changes nothing
    return polls


def mongo_snapshot(db) -> list[dict]:
    return list(db["waqi_station_readings"].find({}, sort=[("_id", 1)]))


def test_a_collected_day_lands_in_parquet_and_mongodb_equal_to_the_truth(workdir, sim, mongo, monkeypatch, service_env):
    monkeypatch.setenv("NAIA_WAQI_TOKEN", TOKEN)
    monkeypatch.setenv("NAIA_MONGODB_URI", service_env.mongodb_uri)
    path = point_set_file(workdir, sim.url, mongo.name)
    polls = collect_day(sim, path)
    staged = staged_files(workdir)
    truth_readings = [r for r in sim.polled(polls) if START <= r.time < START + dt.timedelta(days=1)]
    truth = samples(truth_readings).sort_by([("point", "ascending"), ("ts", "ascending")])

    snapshots = []
    for attempt in range(2):  # the second run replaces the day: nothing may change
        result, _ = run_job(path, [DAY])
        assert result.success, failure(result)
        table = pq.read_table(workdir / "lake" / "point_set=waqi_demo" / f"date={DAY}" / "all.parquet")
        got = table.select(["point", "ts", "value"]).sort_by([("point", "ascending"), ("ts", "ascending")])
        assert got.equals(truth.select(["point", "ts", "value"]))
        docs = mongo_snapshot(mongo)
        assert len(docs) == len({(r.uid, r.time) for r in truth_readings if isinstance(r.aqi, int) or r.iaqi})
        assert sum(("aqi" in d) + len(d.get("iaqi", {})) for d in docs) == truth.num_rows
        snapshots.append(docs)
    assert snapshots[0] == snapshots[1]
    assert staged_files(workdir) == staged

    kv = pq.read_metadata(workdir / "lake" / "point_set=waqi_demo" / f"date={DAY}" / "all.parquet").metadata
    assert "Air Now - US EPA" in kv[b"waqi.attributions"].decode() and kv[b"waqi.missing_hours"] == b""
    assert {d["time"]["tz"] for d in snapshots[0] if d["meta"]["station_idx"] == 2553} == {"+05:30"}
    one = next(d for d in snapshots[0] if d["meta"]["station_idx"] == 1583)
    assert one["time"]["tz"] == "+07:00" and one["time"]["iso"].endswith("+07:00")
    copy = point_set_file(workdir, sim.url, mongo.name, name="waqi_sim")  # the same staging area: same API
    planned = CliRunner().invoke(cli, ["plan", str(copy), "--start", "2024-01-13", "--end", "2024-01-15"])
    assert planned.exit_code == 0, planned.output
    assert "will fail (no history)" in planned.output and "2024-01-13" in planned.output and "2 of 3" in planned.output
    reading = sim.reading(1583, one["ts"])
    assert one["aqi"] == reading.aqi and {k: v["v"] for k, v in one["iaqi"].items()} == reading.iaqi
    index = mongo["waqi_station_readings"].index_information()["naia_reading_key"]
    assert index["unique"] and index["key"] == [("meta.station_idx", 1), ("ts", 1)]
    observations = dg.DagsterInstance.get().fetch_observations(dg.AssetKey("waqi_demo"), limit=100).records
    attributions = [o.asset_observation.metadata["attributions"].value for o in observations
                    if "attributions" in o.asset_observation.metadata]
    assert any("Air Now - US EPA" in str(a.get("1583")) for a in attributions)


def test_an_uncollected_day_fails_and_says_the_api_has_no_history(workdir, sim, mongo, monkeypatch, service_env):
    monkeypatch.setenv("NAIA_WAQI_TOKEN", TOKEN)
    monkeypatch.setenv("NAIA_MONGODB_URI", service_env.mongodb_uri)
    path = point_set_file(workdir, sim.url, mongo.name)
    assert collect_job(path).success  # today's reading is staged; 2024-01-10 never was
    result, _ = run_job(path, [dt.date(2024, 1, 10)])
    assert not result.success
    assert "keeps no history" in failure(result) and "2024-01-10" in failure(result)
    assert not (workdir / "lake" / "point_set=waqi_demo").exists()  # the day fails before any sink opens
    assert mongo["waqi_station_readings"].count_documents({}) == 0


def test_a_partly_collected_day_materializes_and_names_the_missing_hours(workdir, sim, mongo, monkeypatch, service_env):
    monkeypatch.setenv("NAIA_WAQI_TOKEN", TOKEN)
    monkeypatch.setenv("NAIA_MONGODB_URI", service_env.mongodb_uri)
    path = point_set_file(workdir, sim.url, mongo.name)
    ps = load_point_set(path)
    sim.clock.set(START + dt.timedelta(hours=12))
    polls = []
    with build_source(ps, Credentials(token=TOKEN)) as source:
        while sim.clock.now() < START + dt.timedelta(days=1):
            polls.append(sim.clock.now())
            source.collect()
            sim.clock.advance(30 * 60)
    result, _ = run_job(path, [DAY])
    assert result.success, failure(result)
    table = pq.read_table(workdir / "lake" / "point_set=waqi_demo" / f"date={DAY}" / "all.parquet")
    truth = samples([r for r in sim.polled(polls) if START <= r.time < START + dt.timedelta(days=1)])
    assert table.num_rows == truth.num_rows and pc.min(table["ts"]).as_py() >= START + dt.timedelta(hours=6)
    with build_source(ps, Credentials(token=TOKEN)) as source:
        meta = source.day_metadata(source.list_points(), START, START + dt.timedelta(days=1))
    assert meta["waqi.missing_hours"].startswith("00:00, 01:00") and "10:00" in meta["waqi.missing_hours"]


@pytest.mark.parametrize("case", ["bad token", "unknown station"])
def test_bad_token_and_unknown_station_fail_clearly_and_write_nothing(workdir, sim, mongo, monkeypatch, service_env, case):
    monkeypatch.setenv("NAIA_WAQI_TOKEN", "wrong-token" if case == "bad token" else TOKEN)
    monkeypatch.setenv("NAIA_MONGODB_URI", service_env.mongodb_uri)
    extra = {"uids": [1583, 999_999]} if case == "unknown station" else {}
    path = point_set_file(workdir, sim.url, mongo.name, **extra)
    collected = collect_job(path)
    materialized, _ = run_job(path, [DAY])
    expected = "WAQI refused the token (Invalid key)" if case == "bad token" else "unknown to WAQI"
    for result in (collected, materialized):
        assert not result.success
        assert expected in failure(result) and "wrong-token" not in failure(result)
    if case == "unknown station":
        assert "999999" in failure(collected)
    copy = point_set_file(workdir, sim.url, mongo.name, name="waqi_sim", **extra)
    planned = CliRunner().invoke(cli, ["plan", str(copy), "--start", "2024-01-14", "--end", "2024-01-15"])
    assert planned.exit_code == 2 and expected in planned.output and "wrong-token" not in planned.output
    assert staged_files(workdir) == []
    assert list((workdir / "lake").glob("point_set=*/**/*.parquet")) == []
    assert mongo["waqi_station_readings"].count_documents({}) == 0
