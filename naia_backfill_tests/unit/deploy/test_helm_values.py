"""docker/helm/values.yaml for Dagster's Helm chart: the chart keys it uses exist (docker/helm/chart-keys.schema.yaml,
written from the chart's schema models; the chart itself cannot be fetched here) and the values agree with the
image and with docker/dagster.yaml."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
HELM = ROOT / "docker" / "helm"


@pytest.fixture
def values() -> dict[str, Any]:
    return yaml.safe_load((HELM / "values.yaml").read_text())


def key_errors(values: dict[str, Any]) -> list[str]:
    schema = yaml.safe_load((HELM / "chart-keys.schema.yaml").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in jsonschema.Draft7Validator(schema).iter_errors(values)]


def test_values_use_only_keys_the_chart_knows(values: dict[str, Any]):
    assert key_errors(values) == []


@pytest.mark.parametrize("path, key", [
    (("dagsterDaemon", "runMonitoring"), "freeSlotsAfterRunEnd"),
    (("concurrency", "pools"), "default_limit"),
    (("runLauncher", "config", "k8sRunLauncher"), "env"),
    ((), "k8sRunLauncher"),
])
def test_a_misspelt_or_misplaced_key_is_refused(values: dict[str, Any], path: tuple[str, ...], key: str):
    changed = copy.deepcopy(values)
    node = changed
    for part in path:
        node = node[part]
    node[key] = 1
    assert any(key in error for error in key_errors(changed))


def test_runs_are_kubernetes_jobs_of_the_code_location_image(values: dict[str, Any]):
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    [deployment] = values["dagster-user-deployments"]["deployments"]
    assert deployment["codeServerArgs"] == ["-m", "naia_backfill.definitions"]
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True, "run pods need the env, secrets, volumes"
    assert str(deployment["image"]["tag"]) not in {"", "latest"}
    uid = re.findall(r"^USER (\d+)", (ROOT / "docker" / "Dockerfile").read_text(), re.M)[-1]
    pod_users = {deployment["podSecurityContext"]["runAsUser"],
                 values["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]["podSpecConfig"][
                     "securityContext"]["runAsUser"]}
    assert pod_users == {int(uid)}


def test_state_lives_outside_the_pods(values: dict[str, Any]):
    [deployment] = values["dagster-user-deployments"]["deployments"]
    env = deployment["env"]
    assert env["NAIA_LAKE_URL"].startswith("s3://"), "pods are short-lived: the lake must be shared storage"
    # The chart mounts DAGSTER_HOME read-only, so the rate limiter needs a folder of its own, on a volume.
    mounts = {m["mountPath"] for m in deployment["volumeMounts"] if not m.get("readOnly")}
    assert env["NAIA_RATE_LIMIT_DIR"] in mounts
    assert env["NAIA_POINT_SETS"] in {m["mountPath"] for m in deployment["volumeMounts"]}


def test_secrets_are_referenced_never_written(values: dict[str, Any]):
    assert values["postgresql"]["postgresqlPassword"] == ""
    assert values["generatePostgresqlPasswordSecret"] is False and values["global"]["postgresqlSecretName"]
    [deployment] = values["dagster-user-deployments"]["deployments"]
    assert deployment["envSecrets"] == values["runLauncher"]["config"]["k8sRunLauncher"]["envSecrets"]
    assert not [k for k in deployment["env"] if re.search(r"PASSWORD|SECRET|TOKEN|_KEY", k)]


def test_instance_settings_match_the_compose_deployment(values: dict[str, Any]):
    instance = yaml.safe_load((ROOT / "docker" / "dagster.yaml").read_text())
    assert values["concurrency"]["enabled"] is True
    assert values["concurrency"]["pools"]["defaultLimit"] == instance["concurrency"]["pools"]["default_limit"]
    monitoring = values["dagsterDaemon"]["runMonitoring"]
    assert monitoring["enabled"] is True
    assert monitoring["freeSlotsAfterRunEndSeconds"] == instance["run_monitoring"]["free_slots_after_run_end_seconds"]
    assert values["postgresql"]["postgresqlScheme"] == instance["storage"]["postgres"]["postgres_db"]["scheme"]
    # The chart refuses a run limit set both here and on the run coordinator.
    queued = values["dagsterDaemon"]["runCoordinator"].get("config", {}).get("queuedRunCoordinator", {})
    assert values["concurrency"]["runs"]["maxConcurrentRuns"] > 0 and "maxConcurrentRuns" not in queued
