"""Partitioned asset checks of the point-set asset, in-process: one result per check and materialized day,
tied to that day's materialization."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
from click.testing import CliRunner

from naia_backfill.cli import Ctx
from naia_backfill.lib.checks import check_specs
from naia_backfill.lib.partitions import daily_partitions
from naia_backfill.settings import load_point_set
from naia_backfill.cli.validate import validate_cmd
from naia_backfill_tests.conftest import run_job, write_point_set

DAYS = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(3)]
CHECKS = ["gaps", "no_duplicates", "samples_present"]  # value_ranges only when checks.ranges is set


def materialize(workdir: Path, days=DAYS, **overrides):
    return run_job(write_point_set(workdir, "plant", sinks=["parquet"], **overrides), days)


def evaluations(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    out = {}
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            ev = event.event_specific_data
            assert (ev.check_name, ev.partition) not in out
            out[(ev.check_name, ev.partition)] = ev
    return out


def partition_status(instance: dg.DagsterInstance, name: str) -> dict[str, tuple[str, bool]]:
    """What the UI shows per partition: the latest result, and whether it checked the latest materialization."""
    key = dg.AssetCheckKey(dg.AssetKey("plant"), name)
    infos = instance.event_log_storage.get_asset_check_partition_info([key])
    return {i.partition_key: (i.latest_execution_status.value, i.is_current) for i in infos}


def test_check_specs_are_partitioned_like_the_asset_and_need_a_lake(workdir: Path):
    ps = load_point_set(write_point_set(workdir, "plant"))
    specs = check_specs(ps)
    assert sorted(s.name for s in specs) == CHECKS
    assert all(s.partitions_def == daily_partitions(ps) and s.asset_key == dg.AssetKey("plant") for s in specs)
    assert {s.name: s.metadata["severity"] for s in specs} == {
        "samples_present": "ERROR", "no_duplicates": "ERROR", "gaps": "WARN"}
    assert check_specs(load_point_set(write_point_set(workdir, "streams", sinks=["kafka"]))) == []


def test_checks_that_do_not_apply_are_not_declared(workdir: Path):
    ranged = load_point_set(write_point_set(workdir, "ranged", checks={"ranges": [{"points": "SYN*", "max": 1e9}]}))
    assert "value_ranges" in {s.name for s in check_specs(ranged)}
    pi = load_point_set(write_point_set(workdir, "pi", source={
        "kind": "pi_web_api", "base_url": "http://127.0.0.1:9/piwebapi", "data_server": "S"}))
    assert {s.name for s in check_specs(pi)} == {"samples_present", "no_duplicates"}  # no interval known: no gaps


def test_a_ranged_run_records_each_check_for_each_day_against_its_materialization(workdir: Path):
    result, instance = materialize(workdir)
    assert result.success
    evs = evaluations(result)
    assert sorted(evs) == sorted((c, d.isoformat()) for c in CHECKS for d in DAYS)
    for (name, day), ev in evs.items():
        assert ev.passed, (name, day, ev.description)
        mat = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("plant"), asset_partitions=[day]), limit=1).records[0]
        assert ev.target_materialization_data.storage_id == mat.storage_id
        assert ev.metadata["samples"].value == mat.asset_materialization.metadata["samples"].value
    assert evs[("samples_present", "2024-01-02")].severity == dg.AssetCheckSeverity.ERROR
    assert evs[("gaps", "2024-01-02")].severity == dg.AssetCheckSeverity.WARN
    assert evs[("gaps", "2024-01-02")].metadata["threshold_seconds"].value == 1800.0
    for name in CHECKS:
        assert partition_status(instance, name) == {d.isoformat(): ("SUCCEEDED", True) for d in DAYS}


def test_failing_warn_checks_are_recorded_without_failing_the_run(workdir: Path):
    result, instance = materialize(
        workdir, days=DAYS[:1], checks={"max_gap_seconds": 300, "ranges": [{"points": "SYN*", "max": -1000}]},
    )
    assert result.success
    evs = evaluations(result)
    gaps, ranges = evs[("gaps", "2024-01-01")], evs[("value_ranges", "2024-01-01")]
    assert not gaps.passed and gaps.severity == dg.AssetCheckSeverity.WARN
    assert gaps.metadata["points"].value == 6 and gaps.metadata["threshold_seconds"].value == 300
    assert not ranges.passed and ranges.severity == dg.AssetCheckSeverity.WARN and ranges.metadata["violations"].value > 0
    assert evs[("samples_present", "2024-01-01")].passed and evs[("no_duplicates", "2024-01-01")].passed
    assert partition_status(instance, "gaps") == {"2024-01-01": ("FAILED", True)}


def test_a_failed_day_keeps_the_check_results_of_the_days_before_it(workdir: Path):
    blocked = workdir / "lake/point_set=plant/date=2024-01-02"
    blocked.parent.mkdir(parents=True)
    blocked.write_text("not a folder")
    result, instance = materialize(workdir)
    assert not result.success
    # Day 1 was checked before day 2 failed; days 2 and 3 stay planned (the UI shows them as not executed).
    for name in CHECKS:
        assert partition_status(instance, name) == {
            "2024-01-01": ("SUCCEEDED", True), "2024-01-02": ("PLANNED", True), "2024-01-03": ("PLANNED", True)}


def test_validate_cli_records_results_and_the_coverage_picture(workdir: Path):
    result, instance = materialize(workdir, days=DAYS[:2])
    assert result.success
    plant = workdir / "plant.yaml"
    res = CliRunner().invoke(validate_cmd, [str(plant), "--start", "2024-01-01", "--end", "2024-01-03"],
                             obj=Ctx(()), catch_exceptions=False)
    assert res.exit_code == 1, res.output  # 2024-01-03 was never materialized
    assert "recorded 9 check result(s)" in res.output
    assert partition_status(instance, "samples_present") == {
        "2024-01-01": ("SUCCEEDED", True), "2024-01-02": ("SUCCEEDED", True), "2024-01-03": ("FAILED", True)}
    obs = instance.fetch_observations(dg.AssetKey("plant"), limit=1).records[0].asset_observation
    picture = workdir / "data/coverage-plant-2024-01-01-2024-01-03.png"
    assert obs.metadata["coverage_png"].value == str(picture) and picture.is_file()
    assert obs.metadata["failed_days"].value == ["2024-01-03"] and obs.metadata["validated_days"].value == 3


def test_validate_can_run_twice_over_the_same_days(workdir: Path):
    result, instance = materialize(workdir, days=DAYS[:2])
    assert result.success
    plant = workdir / "plant.yaml"
    args = [str(plant), "--start", "2024-01-01", "--end", "2024-01-02"]
    first = CliRunner().invoke(validate_cmd, args, obj=Ctx(()), catch_exceptions=False)
    second = CliRunner().invoke(validate_cmd, args, obj=Ctx(()), catch_exceptions=False)
    assert (first.exit_code, second.exit_code) == (0, 0), second.output
    assert "recorded 6 check result(s)" in second.output


def test_a_table_copied_as_rows_is_checked_for_rows_and_keys_only(workdir: Path):
    source = {"kind": "postgres", "dsn_env": "NAIA_PG_DSN", "table": "public.users", "timestamp_column": "created_at",
              "shape": "rows"}
    plain = load_point_set(write_point_set(workdir, "users", source=source, points={"name_filter": "*"}))
    keyed = load_point_set(write_point_set(workdir, "keyed", source={**source, "key_columns": ["id"]}, points={"name_filter": "*"}))
    assert [s.name for s in check_specs(plain)] == ["samples_present"]
    specs = {s.name: s for s in check_specs(keyed)}
    assert sorted(specs) == ["no_duplicates", "samples_present"]
    assert "key_columns" in specs["no_duplicates"].description and "point" not in specs["no_duplicates"].description
