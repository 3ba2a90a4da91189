"""The bundled ``ace_demo`` point set end to end through the CLI against the ACE IoT simulator: every lake
row equals the simulator's truth through faults and offline days, each day's metadata counts what was
dropped; bad token, unknown site and unknown points exit 2 and write nothing; seed 002's layout for two
sites, one asset each."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from naia_backfill.cli import cli
from naia_backfill.dev.simulators.ace_iot.data import AcePoint, AceSite
from naia_backfill.dev.simulators.ace_iot.simulator import AceIotSimulator, serve
from naia_backfill.dev.simulators.ace_iot.sites import DEMO_SITE, demo_site
from naia_backfill.schema import SAMPLE_SCHEMA
from naia_backfill.settings import BUNDLED_DIR

pytestmark = pytest.mark.integration

TOKEN = "ace-demo-token"
FIRST = dt.date(2024, 1, 1)


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def sim_url(workdir: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("NAIA_ACE_TOKEN", TOKEN)
    annex = AceSite("annex", "acme", (AcePoint("acme/annex/Boiler/Temp", interval_s=120.0, phase_s=0.5),
                                      AcePoint("acme/annex/Boiler/kW", interval_s=30.0, odd_every=9),
                                      AcePoint("acme/annex/Spare", collect_enabled=False)))
    sim = AceIotSimulator(seed=9, token=TOKEN, sites=[demo_site(), annex])
    with serve(sim) as url:
        yield sim, url


def demo_copy(folder: Path, url: str, **changes) -> Path:
    """The bundled ace_demo, pointed at the simulator, renamed (the bundled name is taken) and changed."""
    doc = yaml.safe_load((BUNDLED_DIR / "ace_demo.yaml").read_text())
    doc["name"] = changes.pop("name", "ace_demo_sim")
    doc["source"].update(base_url=url, page_size=3_000, rate_limit={"requests": 6_000, "per_seconds": 60},
                         max_retries=12, **changes.pop("source", {}))
    doc.update(changes)
    path = folder / f"{doc['name']}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_ace_demo_end_to_end(workdir: Path, sim_url):
    sim, url = sim_url
    offline = sim.offline_days(DEMO_SITE, FIRST, FIRST + dt.timedelta(days=60))[0]
    days = [offline + dt.timedelta(days=i) for i in (-2, -1, 0, 1)]
    faults = {days[0]: (429, 500, 502), days[1]: (503, 504, 520), days[3]: (521, 522, 523)}
    for day, statuses in faults.items():  # a few per day: retries back off exponentially
        for status in statuses:
            sim.inject(status, retry_after=1 if status == 429 else None, path_contains=f"start_time={day}T")
    sim.inject("cut", fraction=0.3, times=2, path_contains="cursor=")
    sim.inject("drop", path_contains="configured_points")
    res = invoke("run", str(demo_copy(workdir, url, chunk_days=3)), "--start", str(days[0]), "--end", str(days[-1]))
    assert res.exit_code == 0, res.output
    assert not sim._faults, "every injected fault was served"

    instance = dg.DagsterInstance.get()
    for day in days:
        path = workdir / f"lake/point_set=ace_demo_sim/date={day}/all.parquet"
        got = pq.read_table(path).replace_schema_metadata(SAMPLE_SCHEMA.metadata)
        truth = sim.truth(DEMO_SITE, day)
        assert got.num_rows == truth.num_rows and got.equals(truth), day
        record = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("ace_demo_sim"), asset_partitions=[str(day)]), limit=1
        ).records[0]
        meta = {k: v.value for k, v in record.asset_materialization.metadata.items()}
        stats = sim.truth_stats(DEMO_SITE, day)
        assert (meta["samples"], meta["dropped_null"], meta["dropped_unconfigured"]) == (
            stats["samples"], stats["dropped_null"], stats["dropped_unconfigured"])
    total = sum(sim.truth_stats(DEMO_SITE, d)["samples"] for d in days)
    with duckdb.connect(str(workdir / "naia.duckdb"), read_only=True) as con:
        assert con.execute('SELECT count(*) FROM "ace_demo_sim"').fetchone()[0] == total


@pytest.mark.parametrize(("case", "message"), [
    ("token", "JWT Signature Invalid"),
    ("site", "site 'nowhere' not found; sites this token sees: demo_site, annex"),
    ("point", r"point\(s\) not found"),
])
def test_bad_input_exits_2_and_writes_nothing(workdir: Path, sim_url, monkeypatch, case, message):
    sim, url = sim_url
    changes: dict = {}
    if case == "token":
        monkeypatch.setenv("NAIA_ACE_TOKEN", "forged")
    elif case == "site":
        changes["source"] = {"site": "nowhere"}
    else:
        changes["points"] = {"names": ["acme/demo_site/AHU-1/Fan Status", "acme/demo_site/No Such Point"]}
    res = invoke("run", str(demo_copy(workdir, url, **changes)), "--start", "2024-01-01", "--end", "2024-01-02")
    assert res.exit_code == 2, res.output
    assert re.search(message, " ".join(res.output.split())), res.output
    assert not (workdir / "lake").exists() or not any((workdir / "lake").rglob("*.parquet"))
    assert not dg.DagsterInstance.get().get_run_records()
    assert not [e for e in sim.request_log if e["path"].endswith("/timeseries/paginated")]


def test_seed_002_layout_for_two_sites(workdir: Path, sim_url):
    sim, url = sim_url
    sink = {"kind": "parquet", "key_template": "timeseries/{yyyy}/{mm}/{dd}/{site}.parquet",
            "columns": {"ts": "timestamp", "point": "point_name", "value": "value"},
            "constant_columns": {"site_name": "{site}"}, "timestamp_unit": "ms", "timestamp_as": "int64",
            "compression": "snappy", "row_group_rows": 10_000}
    path = demo_copy(workdir, url, name="seed", source={"site": None, "sites": [DEMO_SITE, "annex"]}, sinks=[sink])
    day = FIRST + dt.timedelta(days=3)
    for name in ("seed_demo_site", "seed_annex"):
        res = invoke("--point-sets", str(path), "run", name, "--start", str(day), "--end", str(day))
        assert res.exit_code == 0, res.output
    folder = workdir / f"lake/timeseries/{day:%Y/%m/%d}"
    assert sorted(p.name for p in folder.iterdir()) == ["annex.parquet", "demo_site.parquet"]
    for site in (DEMO_SITE, "annex"):
        got = pq.read_table(folder / f"{site}.parquet")
        truth = sim.truth(site, day)
        ms = pa.array(truth.column("ts").cast(pa.int64()).to_numpy() // 1_000_000)
        assert got.column_names == ["timestamp", "point_name", "value", "site_name"]
        assert got.column("timestamp").combine_chunks().equals(ms)
        assert got.column("point_name").equals(truth.column("point"))
        assert got.column("value").equals(truth.column("value"))
        assert set(got.column("site_name").to_pylist()) == {site}
        meta = pq.read_metadata(folder / f"{site}.parquet")
        assert meta.row_group(0).column(0).compression == "SNAPPY"
        assert meta.row_group(0).num_rows == min(10_000, truth.num_rows)
    before = (folder / "annex.parquet").read_bytes()
    res = invoke("--point-sets", str(path), "run", "seed_annex", "--start", str(day), "--end", str(day), "--force")
    assert res.exit_code == 0, res.output
    assert (folder / "annex.parquet").read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["annex.parquet", "demo_site.parquet"]
