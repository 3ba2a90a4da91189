"""The CLI in-process against a temporary Dagster instance: behaviour, exit codes, nothing written on bad input."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from naia_backfill.cli import cli
from naia_backfill_tests.conftest import write_point_set


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def lake_days(workdir: Path, name: str = "plant") -> list[str]:
    base = workdir / "lake" / f"point_set={name}"
    return sorted(p.name.removeprefix("date=") for p in base.iterdir()) if base.exists() else []


@pytest.fixture
def plant(workdir: Path) -> Path:
    return write_point_set(workdir, "plant")


def test_run_plan_list_and_skip(workdir: Path, plant: Path):
    res = invoke("run", str(plant), "--start", "2024-01-01", "--end", "2024-01-04")
    assert res.exit_code == 0, res.output
    assert lake_days(workdir) == ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]
    runs = dg.DagsterInstance.get().get_run_records()
    assert len(runs) == 2  # chunk_days=3: 3 days + 1 day
    assert {r.dagster_run.tags["dagster/asset_partition_range_start"] for r in runs} == {"2024-01-01", "2024-01-04"}

    before = (workdir / "lake/point_set=plant/date=2024-01-02/all.parquet").stat().st_mtime_ns
    res = invoke("run", str(plant), "--start", "2024-01-01", "--end", "2024-01-05")
    assert res.exit_code == 0 and "4 of 5 day(s) already done in this lake" in res.output
    assert (workdir / "lake/point_set=plant/date=2024-01-02/all.parquet").stat().st_mtime_ns == before
    assert len(dg.DagsterInstance.get().get_run_records()) == 3

    res = invoke("--point-sets", str(plant), "plan", "plant", "--start", "2024-01-01", "--end", "2024-01-10")
    assert res.exit_code == 0, res.output
    assert "10 (5 already done in this lake, 5 to run)" in res.output
    assert "2 of up to 3 days" in res.output
    assert "points" in res.output and " 6 " in res.output
    assert len(dg.DagsterInstance.get().get_run_records()) == 3  # plan changed nothing

    res = invoke("--point-sets", str(plant), "list")
    assert res.exit_code == 0
    assert "plant" in res.output and "demo" in res.output
    assert "5/" in res.output


def test_force_rewrites_the_same_rows(workdir: Path, plant: Path):
    assert invoke("run", str(plant), "--start", "2024-01-02", "--end", "2024-01-02").exit_code == 0
    path = workdir / "lake/point_set=plant/date=2024-01-02/all.parquet"
    first = pq.read_table(path)
    res = invoke("run", str(plant), "--start", "2024-01-02", "--end", "2024-01-02", "--force")
    assert res.exit_code == 0
    assert pq.read_table(path).equals(first)
    assert len(dg.DagsterInstance.get().get_run_records()) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "2024-1-40"], "is not a date"),
        (["--start", "2024-01-05", "--end", "2024-01-01"], "is after --end"),
        (["--start", "2023-12-31", "--end", "2024-01-01"], "before the start_date 2024-01-01"),
        (["--start", "2024-01-01", "--end", (dt.date.today() + dt.timedelta(days=3)).isoformat()], "not a complete UTC day"),
        (["--start", dt.datetime.now(dt.UTC).date().isoformat()], "not a complete UTC day"),
        (["--start", "2024-01-01", "--end", "2024-01-01", "--lake", "ftp://x/y"], "--lake"),
    ],
)
def test_bad_dates_exit_2_and_write_nothing(workdir: Path, plant: Path, args, message):
    res = invoke("run", str(plant), *args)
    assert res.exit_code == 2
    assert message in res.output
    assert not (workdir / "lake").exists()
    assert not dg.DagsterInstance.get().get_run_records()


def test_bad_point_sets_exit_2(workdir: Path):
    res = invoke("run", "no_such_set", "--start", "2024-01-01", "--end", "2024-01-01")
    assert res.exit_code == 2 and "no point set named 'no_such_set'" in res.output
    broken = workdir / "broken.yaml"
    broken.write_text("name: broken\nsource: {kind: synthetic\n")
    res = invoke("run", str(broken))
    assert res.exit_code == 2 and "broken.yaml: invalid YAML" in res.output
    unknown = write_point_set(workdir, "unknown", points={"names": ["SYN00001", "GHOST"]})
    res = invoke("run", str(unknown), "--start", "2024-01-01", "--end", "2024-01-01")
    assert res.exit_code == 2 and "GHOST" in res.output
    assert not (workdir / "lake").exists()
    assert not dg.DagsterInstance.get().get_run_records()


def test_failed_days_exit_1_and_are_listed(workdir: Path, plant: Path):
    blocked = workdir / "lake/point_set=plant/date=2024-01-02"
    blocked.parent.mkdir(parents=True)
    blocked.write_text("not a folder")
    res = invoke("run", str(plant), "--start", "2024-01-01", "--end", "2024-01-04")
    assert res.exit_code == 1
    assert "2 day(s) failed: 2024-01-02, 2024-01-03" in res.output
    assert "day 2024-01-02 failed" in res.output
    done = dg.DagsterInstance.get().get_materialized_partitions(dg.AssetKey("plant"))
    assert done == {"2024-01-01", "2024-01-04"}


def test_lake_option_overrides_the_environment(workdir: Path, plant: Path):
    res = invoke("run", str(plant), "--start", "2024-01-01", "--end", "2024-01-01", "--lake", str(workdir / "other"))
    assert res.exit_code == 0
    assert (workdir / "other/point_set=plant/date=2024-01-01/all.parquet").is_file()
    assert not (workdir / "lake").exists()


def test_missing_credential_variables_exit_2_without_their_values(workdir: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("NAIA_TEST_PI_USER", "operator")
    monkeypatch.delenv("NAIA_TEST_PI_PASS", raising=False)
    path = write_point_set(workdir, "plant_pi", points={"names": ["SINUSOID"]}, source={
        "kind": "pi_web_api", "base_url": "http://127.0.0.1:9/piwebapi", "data_server": "PISRV1",
        "auth": {"kind": "basic", "username_env": "NAIA_TEST_PI_USER", "password_env": "NAIA_TEST_PI_PASS"}})
    res = invoke("run", str(path), "--start", "2024-01-01", "--end", "2024-01-01")
    assert res.exit_code == 2
    assert "needs the environment variable(s) NAIA_TEST_PI_PASS" in res.output
    assert "operator" not in res.output
    assert not (workdir / "lake").exists()
    assert not dg.DagsterInstance.get().get_run_records()
