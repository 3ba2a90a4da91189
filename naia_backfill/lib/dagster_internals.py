"""The only place that touches Dagster internals; a test (``test_dagster_internals``) fails loudly when an
upgrade moves or removes any of them.

- A check result points at the materialization it checked through ``AssetCheckEvaluationTargetMaterializationData``,
  which has no public constructor; without it the UI shows results as not tied to a materialization.
- Pool slots of runs whose process died are freed through the event-log storage; the daemon's run monitoring
  does this for runs it launched, the CLI does it for its in-process runs.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)


def check_target(instance: dg.DagsterInstance, asset_key: dg.AssetKey, partition: str) -> Any:
    """The pointer from a check result to the latest materialization of ``partition``; None if there is none."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[partition]), limit=1
    ).records
    if not records:
        return None
    rec = records[0]
    return AssetCheckEvaluationTargetMaterializationData(storage_id=rec.storage_id, run_id=rec.run_id, timestamp=rec.timestamp)


def free_pool_slots_of_finished_runs(instance: dg.DagsterInstance) -> list[str]:
    """Free the pool slots still held by runs that are finished or gone; returns their run ids."""
    storage = instance.event_log_storage
    freed = []
    for run_id in storage.get_concurrency_run_ids():
        run = instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            storage.free_concurrency_slots_for_run(run_id)
            freed.append(run_id)
    return freed
