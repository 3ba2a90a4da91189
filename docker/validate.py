"""Static checks of the deployment files that need Dagster, without any server (scripts/validate-deploy.sh).

    python docker/validate.py instance docker/dagster.yaml
        the instance file against Dagster's instance schema, then each configurable class it names
        (run coordinator, run launcher, compute logs) against that class's own config schema
    python docker/validate.py helm docker/helm/values.yaml
        the Kubernetes objects in the Helm values against the Kubernetes API models, read the way dagster-k8s
        reads them, and the instance config the chart renders from these values against Dagster's schemas

Prints one line per finding and exits 1 if there is any. Uses two functions of Dagster's private API
(``dagster_instance_config``, ``ConfigurableClassData``): the checks dagster itself runs when an instance
loads, without connecting to PostgreSQL. A tool of the repository, not part of the package.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

# Placeholders for the `{env: ...}` values of docker/dagster.yaml; nothing connects with them.
PLACEHOLDER_ENV = {
    "DAGSTER_PG_HOST": "postgres",
    "DAGSTER_PG_PORT": "5432",
    "DAGSTER_PG_USER": "dagster",
    "DAGSTER_PG_PASSWORD": "placeholder",
    "DAGSTER_PG_DB": "dagster",
}
CONFIGURABLE_SECTIONS = ("run_coordinator", "run_launcher", "compute_logs")


def check_instance_config(config: Mapping[str, Any], rehydrate: Callable[[str], bool]) -> list[str]:
    """Findings for one dagster.yaml document: the instance schema, then the sections for which ``rehydrate``
    says yes, each instantiated from its config (a class that would reach a server must be left out)."""
    from dagster._core.errors import DagsterInvalidConfigError
    from dagster._core.instance.config import dagster_instance_config
    from dagster._serdes.config_class import ConfigurableClassData

    findings: list[str] = []
    with tempfile.TemporaryDirectory() as home:
        Path(home, "dagster.yaml").write_text(yaml.safe_dump(dict(config)))
        try:
            validated, _ = dagster_instance_config(home)
        except DagsterInvalidConfigError as e:
            return [f"instance schema: {e}"]
        except Exception as e:  # dagster's own checks of the values raise CheckError and the like
            return [f"instance config: {type(e).__name__}: {e}"]
        for section in CONFIGURABLE_SECTIONS:
            if section not in validated or not rehydrate(section):
                continue
            entry = validated[section]
            data = ConfigurableClassData(entry["module"], entry["class"], yaml.safe_dump(entry.get("config") or {}))
            try:
                data.rehydrate()
            except Exception as e:  # any failure to build the class is a finding
                findings.append(f"{section} ({entry['module']}.{entry['class']}): {type(e).__name__}: {e}")
    return findings


def check_instance_file(path: Path) -> list[str]:
    """docker/dagster.yaml with placeholder connection settings and a scratch compute-log folder."""
    with tempfile.TemporaryDirectory() as logs:
        os.environ.update({**PLACEHOLDER_ENV, "DAGSTER_COMPUTE_LOGS_DIR": logs})
        return check_instance_config(yaml.safe_load(path.read_text()), lambda section: True)


def _k8s(model: str, value: Mapping[str, Any], where: str, fill: Mapping[str, Any] | None = None) -> list[str]:
    """``value`` as the Kubernetes API object ``model`` (camelCase or snake_case keys, as dagster-k8s accepts);
    ``fill`` supplies fields the API requires that Dagster fills in itself (a pod spec's containers)."""
    import kubernetes.client
    from dagster_k8s.models import k8s_model_from_dict, k8s_snake_case_dict

    cls = getattr(kubernetes.client, model)
    try:
        k8s_model_from_dict(cls, k8s_snake_case_dict(cls, {**(fill or {}), **value}))
    except Exception as e:  # the models raise plain Exception, ValueError or KeyError
        return [f"{where}: not a valid {model}: {e}"]
    return []


def _pod_objects(values: Mapping[str, Any], where: str) -> Iterator[str]:
    for i, volume in enumerate(values.get("volumes") or []):
        yield from _k8s("V1Volume", volume, f"{where}.volumes[{i}]")
    for i, mount in enumerate(values.get("volumeMounts") or []):
        yield from _k8s("V1VolumeMount", mount, f"{where}.volumeMounts[{i}]")
    for key, model in (("podSecurityContext", "V1PodSecurityContext"), ("securityContext", "V1SecurityContext"),
                       ("resources", "V1ResourceRequirements")):
        if values.get(key):
            yield from _k8s(model, values[key], f"{where}.{key}")


def check_k8s_objects(values: Mapping[str, Any]) -> list[str]:
    """The Kubernetes objects of the user deployments and of the K8sRunLauncher's run pods."""
    findings: list[str] = []
    for i, deployment in enumerate(values.get("dagster-user-deployments", {}).get("deployments") or []):
        findings += _pod_objects(deployment, f"dagster-user-deployments.deployments[{i}]")
    launcher = values.get("runLauncher", {}).get("config", {}).get("k8sRunLauncher") or {}
    where = "runLauncher.config.k8sRunLauncher"
    findings += _pod_objects(launcher, where)
    run_k8s = launcher.get("runK8sConfig") or {}
    container = {"containers": [{"name": "dagster"}]}
    for key, model, fill in (("containerConfig", "V1Container", {"name": "dagster"}),
                             ("podSpecConfig", "V1PodSpec", container),
                             ("podTemplateSpecMetadata", "V1ObjectMeta", None),
                             ("jobSpecConfig", "V1JobSpec", {"template": {"spec": container}}),
                             ("jobMetadata", "V1ObjectMeta", None)):
        if run_k8s.get(key):
            findings += _k8s(model, run_k8s[key], f"{where}.runK8sConfig.{key}", fill)
    return findings


def chart_instance_config(values: Mapping[str, Any]) -> dict[str, Any]:
    """The dagster.yaml sections the dagster/dagster chart (1.13) renders from these values, for the keys this
    project sets (templates configmap-instance.yaml and helpers/instance/_run-launcher.tpl, _concurrency.tpl).
    Keys the chart fills from the release (namespace, config map and secret names) get stand-ins."""
    pg = values.get("postgresql", {})
    storage = {"postgres_db": {
        "username": pg.get("postgresqlUsername", "dagster"), "password": {"env": "DAGSTER_PG_PASSWORD"},
        "hostname": pg.get("postgresqlHost") or "postgresql", "db_name": pg.get("postgresqlDatabase", "dagster"),
        "port": pg.get("service", {}).get("port", 5432), "params": pg.get("postgresqlParams") or {},
        **({"scheme": pg["postgresqlScheme"]} if pg.get("postgresqlScheme") else {})}}
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    run_k8s = launcher.get("runK8sConfig") or {}
    snake = {"containerConfig": "container_config", "podSpecConfig": "pod_spec_config",
             "podTemplateSpecMetadata": "pod_template_spec_metadata", "jobSpecConfig": "job_spec_config",
             "jobMetadata": "job_metadata"}
    launcher_config = {
        "load_incluster_config": launcher.get("loadInclusterConfig", True),
        "job_namespace": launcher.get("jobNamespace") or "naia",
        "image_pull_policy": launcher.get("imagePullPolicy", "Always"),
        "service_account_name": "naia-dagster",
        "dagster_home": "/opt/dagster/dagster_home",
        "instance_config_map": "naia-dagster-instance",
        "postgres_password_secret": values.get("global", {}).get("postgresqlSecretName", "naia-postgresql-secret"),
        **({"env_secrets": [s["name"] for s in launcher["envSecrets"]]} if launcher.get("envSecrets") else {}),
        **({"env_config_maps": [c["name"] for c in launcher["envConfigMaps"]]}
           if launcher.get("envConfigMaps") else {}),
        **({"env_vars": launcher["envVars"]} if launcher.get("envVars") else {}),
        **({"volumes": launcher["volumes"]} if launcher.get("volumes") else {}),
        **({"volume_mounts": launcher["volumeMounts"]} if launcher.get("volumeMounts") else {}),
        **({"resources": launcher["resources"]} if launcher.get("resources") else {}),
        **({"fail_pod_on_run_failure": True} if launcher.get("failPodOnRunFailure") else {}),
        **({"run_k8s_config": {snake[k]: v for k, v in run_k8s.items()}} if run_k8s else {}),
    }
    daemon = values.get("dagsterDaemon", {})
    monitoring = daemon.get("runMonitoring", {})
    monitoring_keys = {"enabled": "enabled", "startTimeoutSeconds": "start_timeout_seconds",
                       "cancelTimeoutSeconds": "cancel_timeout_seconds", "pollIntervalSeconds": "poll_interval_seconds",
                       "maxResumeRunAttempts": "max_resume_run_attempts", "maxRuntimeSeconds": "max_runtime_seconds",
                       "freeSlotsAfterRunEndSeconds": "free_slots_after_run_end_seconds"}
    concurrency = values.get("concurrency", {})
    pools, runs = concurrency.get("pools", {}), concurrency.get("runs", {})
    pool_keys = {"defaultLimit": "default_limit", "granularity": "granularity",
                 "opGranularityRunBuffer": "op_granularity_run_buffer"}
    run_keys = {"maxConcurrentRuns": "max_concurrent_runs", "tagConcurrencyLimits": "tag_concurrency_limits"}
    config: dict[str, Any] = {
        "run_storage": {"module": "dagster_postgres.run_storage", "class": "PostgresRunStorage", "config": storage},
        "event_log_storage": {"module": "dagster_postgres.event_log", "class": "PostgresEventLogStorage",
                              "config": storage},
        "schedule_storage": {"module": "dagster_postgres.schedule_storage", "class": "PostgresScheduleStorage",
                             "config": storage},
        "run_launcher": {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": launcher_config},
        "telemetry": {"enabled": values.get("telemetry", {}).get("enabled", True)},
    }
    if daemon.get("runCoordinator", {}).get("enabled"):
        config["run_coordinator"] = {"module": "dagster.core.run_coordinator", "class": "QueuedRunCoordinator"}
    if monitoring.get("enabled"):
        config["run_monitoring"] = {monitoring_keys[k]: v for k, v in monitoring.items() if k in monitoring_keys}
    if concurrency.get("enabled"):
        config["concurrency"] = {
            **({"pools": {pool_keys[k]: v for k, v in pools.items()}} if pools else {}),
            **({"runs": {run_keys[k]: v for k, v in runs.items()}} if runs else {}),
        }
    return config


def check_helm_values(path: Path) -> list[str]:
    values = yaml.safe_load(path.read_text())
    findings = check_k8s_objects(values)
    if values.get("runLauncher", {}).get("type") != "K8sRunLauncher":
        return [*findings, "runLauncher.type: expected K8sRunLauncher"]
    # The K8sRunLauncher and the storages would reach the cluster and the database: their config is checked
    # by the schemas (the launcher's below, the storages' by the instance schema), not instantiated.
    config = chart_instance_config(values)
    findings += check_instance_config(config, lambda section: section == "run_coordinator")
    findings += _check_launcher_config(config["run_launcher"]["config"])
    return findings


def _check_launcher_config(launcher_config: Mapping[str, Any]) -> list[str]:
    from dagster._config import process_config, resolve_to_config_type
    from dagster_k8s import K8sRunLauncher

    result = process_config(resolve_to_config_type(K8sRunLauncher.config_type()), dict(launcher_config))
    return [f"run_launcher (dagster_k8s.K8sRunLauncher): {e.message}" for e in result.errors or []]


def main(argv: list[str]) -> int:
    checks = {"instance": check_instance_file, "helm": check_helm_values}
    if len(argv) != 2 or argv[0] not in checks:
        print(__doc__, file=sys.stderr)
        return 2
    findings = checks[argv[0]](Path(argv[1]))
    for finding in findings:
        print(f"{argv[1]}: {finding}")
    if not findings:
        print(f"{argv[1]}: ok ({argv[0]})")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
