"""A reconstructable job over one point set, so a test can launch, kill and re-execute real Dagster runs."""

from __future__ import annotations

import dagster as dg

from naia_backfill.lib.definitions import build_definitions
from naia_backfill.settings import load_point_sets


def job(locations: tuple[str, ...], name: str) -> dg.JobDefinition:
    """The point set's own job, as the code location defines it."""
    return build_definitions(load_point_sets(list(locations))).resolve_job_def(f"{name}_job")


def reconstructable(locations: list[str], name: str):
    return dg.build_reconstructable_job(
        "naia_backfill_tests.integration.resume_job", "job", reconstructable_args=(tuple(locations), name)
    )


IN_PROCESS = {"execution": {"config": {"in_process": {}}}}
