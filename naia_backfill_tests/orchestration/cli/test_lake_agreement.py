"""`run` trusts a day only when the lake still holds what Dagster recorded; `repair` mends what disagrees;
bad input and unusable lakes exit 2 before anything is written."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from naia_backfill.cli import cli
from naia_backfill.sinks.lake_local import HOST
from naia_backfill_tests.conftest import write_point_set

DAYS = ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def obj(workdir: Path, day: str, lake: str = "lake") -> Path:
    return workdir / lake / f"point_set=plant/date={day}/all.parquet"


@pytest.fixture
def plant(workdir: Path) -> Path:
    path = write_point_set(workdir, "plant", sinks=["parquet"])
    assert invoke("run", str(path), "--start", DAYS[0], "--end", DAYS[-1]).exit_code == 0
    return path


def test_run_refetches_days_whose_object_was_deleted_or_truncated(workdir: Path, plant: Path):
    truth = {d: pq.read_table(obj(workdir, d)) for d in DAYS}
    stamps = {d: obj(workdir, d).stat().st_mtime_ns for d in DAYS}
    obj(workdir, DAYS[1]).unlink()
    data = obj(workdir, DAYS[3]).read_bytes()
    obj(workdir, DAYS[3]).write_bytes(data[: len(data) // 2])

    res = invoke("run", str(plant), "--start", DAYS[0], "--end", DAYS[-1])
    assert res.exit_code == 0, res.output
    assert f"{DAYS[1]}: materialized, but its object" in res.output and "is missing" in res.output
    assert f"{DAYS[3]}: materialized, but its object" in res.output and "bytes were written" not in res.output
    assert "2 of 4 day(s) already done in this lake" in res.output
    for d in DAYS:
        assert pq.read_table(obj(workdir, d)).equals(truth[d])
    assert [obj(workdir, d).stat().st_mtime_ns == stamps[d] for d in DAYS] == [True, False, True, False]


def test_a_new_lake_gets_every_day(workdir: Path, plant: Path):
    res = invoke("run", str(plant), "--start", DAYS[0], "--end", DAYS[-1], "--lake", str(workdir / "lake2"))
    assert res.exit_code == 0, res.output
    assert "recorded in another lake" in res.output
    assert all(obj(workdir, d, "lake2").is_file() for d in DAYS)


def test_repair_rewrites_unreadable_days_and_removes_orphans(workdir: Path, plant: Path):
    bad = obj(workdir, DAYS[2])
    size = bad.stat().st_size
    bad.write_bytes(b"\0" * size)  # same size: `run` cannot tell, validation can
    orphan = bad.with_name(f".all.parquet.999999999-{HOST}-abc123.tmp")  # this host, its writer is gone
    orphan.write_bytes(b"partial")
    mine = bad.with_name(f".all.parquet.{os.getpid()}-another_host-abc123.tmp")  # another host's writer: kept
    res = invoke("run", str(plant), "--start", DAYS[0], "--end", DAYS[-1])
    assert "4 of 4 day(s) already done" in res.output

    dry = invoke("repair", str(plant), "--start", DAYS[0], "--end", DAYS[-1], "--dry-run")
    assert dry.exit_code == 0 and f"{DAYS[2]}: samples_present" in dry.output and "1 day(s) would be re-run" in dry.output
    mine.write_bytes(b"x")
    res = invoke("repair", str(plant), "--start", DAYS[0], "--end", DAYS[-1])
    assert res.exit_code == 0, res.output
    assert "repaired 1 day(s)" in res.output and not orphan.exists() and mine.exists()
    assert pq.read_table(bad).num_rows > 0
    again = invoke("repair", str(plant), "--start", DAYS[0], "--end", DAYS[-1])
    assert "nothing to repair" in again.output


def test_a_filter_matching_nothing_is_bad_input(workdir: Path):
    path = write_point_set(workdir, "empty", points={"name_filter": "NOPE*"})
    res = invoke("run", str(path), "--start", DAYS[0], "--end", DAYS[0])
    assert res.exit_code == 2 and "matches the filter" in res.output
    assert not (workdir / "lake").exists()


def test_an_unusable_lake_is_bad_input_before_any_run(workdir: Path, monkeypatch: pytest.MonkeyPatch):
    import dagster as dg

    path = write_point_set(workdir, "plant", sinks=["parquet"])
    blocker = workdir / "not_a_folder"
    blocker.write_text("")
    res = invoke("run", str(path), "--start", DAYS[0], "--end", DAYS[0], "--lake", str(blocker / "lake"))
    assert res.exit_code == 2 and "the lake cannot be used" in res.output and "nothing was written" in res.output
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(workdir / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(workdir / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    res = invoke("run", str(path), "--start", DAYS[0], "--end", DAYS[0], "--lake", "s3://bucket/prefix")
    assert res.exit_code == 2 and "no S3 credentials" in res.output
    assert dg.DagsterInstance.get().get_run_records() == []  # no run was started
