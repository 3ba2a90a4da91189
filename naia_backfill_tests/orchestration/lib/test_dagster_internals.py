"""The Dagster internals the project relies on still exist and behave: this fails loudly on an upgrade
that moves or changes them (see naia_backfill/lib/dagster_internals.py)."""

from __future__ import annotations

import dagster as dg

from naia_backfill.lib.dagster_internals import check_target, free_pool_slots_of_finished_runs


def test_check_target_points_at_the_latest_materialization_of_a_partition():
    with dg.instance_for_test() as instance:
        assert check_target(instance, dg.AssetKey("plant"), "2024-01-01") is None
        instance.report_runless_asset_event(dg.AssetMaterialization("plant", partition="2024-01-01"))
        latest = instance.fetch_materializations(dg.AssetKey("plant"), limit=1).records[0]
        target = check_target(instance, dg.AssetKey("plant"), "2024-01-01")
    assert (target.storage_id, target.run_id) == (latest.storage_id, latest.run_id)


def test_pool_slots_of_finished_runs_are_freed():
    with dg.instance_for_test() as instance:
        storage = instance.event_log_storage
        storage.set_concurrency_slots("naia_test", 1)
        run = instance.create_run_for_job(dg.GraphDefinition("g").to_job())
        assert storage.claim_concurrency_slot("naia_test", run.run_id, "step").is_claimed
        assert free_pool_slots_of_finished_runs(instance) == []  # still running
        instance.report_run_failed(run)
        assert free_pool_slots_of_finished_runs(instance) == [run.run_id]
        assert storage.get_concurrency_info("naia_test").active_slot_count == 0
