"""The production instance (docker/dagster.yaml) against the real PostgreSQL: a partition backfill launched over
GraphQL on the deployment's own processes, then read back from PostgreSQL and the lake.

The processes are those of docker-compose.yaml (migrate, code server, webserver, daemon), from a venv installed
as the image installs (see deployment.py). The point set's three days in chunks of two make two runs of one
source, so the source's pool (limit 1 from docker/dagster.yaml) must keep their steps apart.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
import yaml

from naia_backfill_tests.integration.conftest import ServiceEnv
from naia_backfill_tests.integration.deploy.deployment import Deployment, deployment

pytestmark = pytest.mark.integration
log = logging.getLogger(__name__)

POINT_SET = "deploy_plant"
DAYS = ["2024-01-01", "2024-01-02", "2024-01-03"]
READY_TIMEOUT = 300.0  # three Dagster processes starting at once on the shared 2-core machines
BACKFILL_TIMEOUT = 300.0
ENDED = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"

LOCATIONS = """
query { workspaceOrError { __typename ... on Workspace { locationEntries {
  name loadStatus locationOrLoadError { __typename ... on PythonError { message } }
} } } }
"""
ASSETS = "query { assetNodes { assetKey { path } } }"
LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename ... on LaunchBackfillSuccess { backfillId } ... on Error { message } ... on PythonError { message }
  }
}
"""
BACKFILL = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename ... on PartitionBackfill { status } ... on Error { message } ... on PythonError { message }
  }
}
"""


def graphql(url: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    response = httpx.post(f"{url}/graphql", json={"query": query, "variables": variables or {}}, timeout=30)
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def wait_ready(deploy: Deployment) -> None:
    """Until the webserver answers and has loaded the code server's location with the point set's asset."""
    deadline = time.monotonic() + READY_TIMEOUT
    problem = "no answer yet"
    while time.monotonic() < deadline:
        for server in deploy.servers:
            if server.proc.poll() is not None:
                pytest.fail(f"{server.name} exited with {server.proc.returncode}\n{deploy.logs()}")
        try:
            entries = graphql(deploy.url, LOCATIONS)["workspaceOrError"]["locationEntries"]
            loaded = [e for e in entries if e["loadStatus"] == "LOADED"]
            errors = [e["locationOrLoadError"]["message"] for e in loaded
                      if e["locationOrLoadError"]["__typename"] == "PythonError"]
            if errors:
                problem = f"code location error: {errors[0]}"  # the code server may still be starting
            elif entries and len(loaded) == len(entries):
                keys = {"/".join(n["assetKey"]["path"]) for n in graphql(deploy.url, ASSETS)["assetNodes"]}
                if POINT_SET in keys:
                    return
                problem = f"asset {POINT_SET} not loaded"
            else:
                problem = "code location loading"
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as e:
            problem = f"{type(e).__name__}: {e}"
        time.sleep(1)
    pytest.fail(f"not ready after {READY_TIMEOUT:g}s ({problem})\n{deploy.logs()}")


@pytest.fixture(scope="module")
def deploy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    dsn = ServiceEnv(dict(os.environ)).pg_dsn
    folder = tmp_path_factory.mktemp("deploy")
    point_sets = folder / "point_sets"
    point_sets.mkdir()
    (point_sets / f"{POINT_SET}.yaml").write_text(yaml.safe_dump({
        "name": POINT_SET,
        "source": {"kind": "synthetic", "points": 6, "interval_seconds": 600, "seed": 7},
        "points": {"name_filter": "SYN*"},
        "start_date": DAYS[0],
        "sinks": ["parquet"],
        "chunk_days": 2,
    }, sort_keys=False))
    started = time.monotonic()
    with deployment(folder, dsn, point_sets) as running:
        log.info("deploy venv installed in %.1fs", running.install_seconds)
        wait_ready(running)
        log.info("installed, migrated and serving after %.1fs", time.monotonic() - started)
        yield running


def launch_and_wait(deploy: Deployment) -> str:
    params = {"partitionsByAssets": [{"assetKey": {"path": [POINT_SET]},
                                      "partitions": {"range": {"start": DAYS[0], "end": DAYS[-1]}}}],
              "title": "deploy test"}
    result = graphql(deploy.url, LAUNCH, {"params": params})["launchPartitionBackfill"]
    assert result["__typename"] == "LaunchBackfillSuccess", result
    backfill_id = result["backfillId"]
    deadline = time.monotonic() + BACKFILL_TIMEOUT
    status = None
    while time.monotonic() < deadline:
        status = graphql(deploy.url, BACKFILL, {"id": backfill_id})["partitionBackfillOrError"].get("status")
        if status in ENDED:
            assert status == "COMPLETED_SUCCESS", deploy.logs()
            log.info("backfill %s ended after %.1fs", backfill_id, BACKFILL_TIMEOUT - (deadline - time.monotonic()))
            return backfill_id
        time.sleep(2)
    pytest.fail(f"backfill {backfill_id} still {status} after {BACKFILL_TIMEOUT:g}s\n{deploy.logs()}")


def metadata_value(node: Any, label: str) -> Any:
    """The value of metadata entry ``label`` anywhere in a serialized event: Dagster stores an event as JSON,
    each metadata entry as ``{"label": ..., "entry_data": {"value": ...}}``."""
    if isinstance(node, dict):
        if node.get("label") == label and isinstance(node.get("entry_data"), dict):
            return node["entry_data"].get("value")
        children = node.values()
    elif isinstance(node, list):
        children = node
    else:
        return None
    for child in children:
        found = metadata_value(child, label)
        if found is not None:
            return found
    return None


def test_backfill_on_the_postgres_instance_lands_in_postgres_and_the_lake(deploy: Deployment):
    backfill_id = launch_and_wait(deploy)
    db = deploy.db

    runs = db.query("SELECT r.run_id, r.status FROM runs r JOIN run_tags t ON t.run_id = r.run_id "
                    "WHERE t.key = %s AND t.value = %s", ["dagster/backfill", backfill_id])
    run_ids = [run_id for run_id, _ in runs]
    log.info("runs (create, start, end): %s", db.query(
        "SELECT run_id, create_timestamp, start_time, end_time FROM runs WHERE run_id = ANY(%s) ORDER BY start_time",
        [run_ids]))
    assert len(runs) == 2 and {status for _, status in runs} == {"SUCCESS"}, runs
    tags = db.query("SELECT run_id, key, value FROM run_tags WHERE run_id = ANY(%s) AND key = ANY(%s)",
                    [run_ids, [RANGE_START, RANGE_END]])
    ranges = sorted((t[RANGE_START], t[RANGE_END]) for t in (
        {key: value for rid, key, value in tags if rid == run_id} for run_id in run_ids))
    assert ranges == [(DAYS[0], DAYS[1]), (DAYS[2], DAYS[2])]  # chunk_days 2

    events = db.query("SELECT run_id, partition, event FROM event_logs WHERE dagster_event_type = %s "
                      "AND asset_key = %s ORDER BY id", ["ASSET_MATERIALIZATION", json.dumps([POINT_SET])])
    assert sorted(partition for _, partition, _ in events) == DAYS
    assert {run_id for run_id, _, _ in events} == set(run_ids)
    samples = {partition: metadata_value(json.loads(event), "samples") for _, partition, event in events}

    objects = {p.parent.name.removeprefix("date="): p for p in deploy.lake.glob(f"point_set={POINT_SET}/*/*.parquet")}
    assert sorted(objects) == DAYS
    rows = {day: pq.read_metadata(path).num_rows for day, path in objects.items()}
    assert all(n > 0 for n in rows.values()) and rows == samples

    # One pool per source with limit 1: the two runs' steps never ran at the same time.
    steps = db.query("SELECT run_id, dagster_event_type, timestamp FROM event_logs WHERE run_id = ANY(%s) "
                     "AND dagster_event_type = ANY(%s) ORDER BY id",
                     [run_ids, ["STEP_START", "STEP_SUCCESS", "STEP_FAILURE"]])
    windows = sorted((min(ts for rid, _, ts in steps if rid == run_id),
                      max(ts for rid, _, ts in steps if rid == run_id)) for run_id in run_ids)
    assert len(steps) == 4 and windows[0][1] <= windows[1][0], steps
    limits = db.query('SELECT concurrency_key, "limit" FROM concurrency_limits')
    assert [limit for _, limit in limits] == [1], limits
