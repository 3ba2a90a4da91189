"""A reconstructable job over one point set, so a test can launch, kill and re-execute real Dagster runs."""

from __future__ import annotations

import dagster as dg

from naia_backfill.definitions import build_definitions
from naia_backfill.settings import load_point_sets


def job(locations: tuple[str, ...], name: str) -> dg.JobDefinition:
    defs = build_definitions(load_point_sets(list(locations)))
    return dg.Definitions(
        assets=list(defs.assets or []), resources=defs.resources, jobs=[dg.define_asset_job("resume_test", [name])]
    ).resolve_job_def("resume_test")


def reconstructable(locations: list[str], name: str):
    return dg.build_reconstructable_job(
        "naia_backfill_tests.integration.resume_job", "job", reconstructable_args=(tuple(locations), name)
    )


IN_PROCESS = {"execution": {"config": {"in_process": {}}}}
