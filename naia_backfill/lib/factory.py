"""The point-set factory: each point set becomes exactly one daily-partitioned asset, and one job over it
that its schedule, the new-points sensor and the CLI launch.

No ``from __future__ import annotations`` here: Dagster reads the run-config class from the annotation.
"""


import warnings
from collections.abc import Iterator
from typing import Any

import dagster as dg

from naia_backfill.lib.checks import check_specs
from naia_backfill.lib.copy_run import CopyRun, PointSetRunConfig, credentials_key, sink_resource_keys
from naia_backfill.lib.partitions import daily_partitions
from naia_backfill.settings import PointSet

# BackfillPolicy is marked beta, but it is what chunks a backfill into runs of chunk_days days.
warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*backfill_policy.*")

#: What ``dg.define_asset_job`` returns (its class is not public).
AssetJob = Any


def job_name(point_set: PointSet) -> str:
    """The point set's job: what its schedule, the new-points sensor and `naia-backfill run` launch."""
    return f"{point_set.name}_job"


def build_point_set_asset(point_set: PointSet) -> dg.AssetsDefinition:
    ps = point_set
    resource_keys = sink_resource_keys(ps) | ({key} if (key := credentials_key(ps)) else set())
    sink_kinds = [s.kind for s in ps.sinks]
    metadata = {"source": ps.source.kind, "sinks": ", ".join(sink_kinds), "chunk_days": dg.MetadataValue.int(ps.chunk_days)}
    if ps.path:
        metadata["point_set_file"] = dg.MetadataValue.path(str(ps.path))

    @dg.asset(
        name=ps.name,
        group_name=ps.name,
        description=ps.description or f"History of the {ps.name} point set, one partition per UTC day.",
        partitions_def=daily_partitions(ps),
        backfill_policy=dg.BackfillPolicy.multi_run(ps.chunk_days),
        pool=ps.source.pool_name,
        kinds={ps.source.kind, *sink_kinds},
        tags={"naia/source": ps.source.kind, **ps.tags},
        metadata=metadata,
        required_resource_keys=resource_keys,
        output_required=False,
        check_specs=check_specs(ps),
    )
    def _asset(context: dg.AssetExecutionContext, config: PointSetRunConfig) -> Iterator[dg.Output]:
        yield from CopyRun(context, ps, config).execute()

    return _asset


def build_point_set_job(point_set: PointSet) -> AssetJob:
    return dg.define_asset_job(
        job_name(point_set), selection=[dg.AssetKey(point_set.name)],
        description=f"Backfills days of the {point_set.name} point set.",
    )
