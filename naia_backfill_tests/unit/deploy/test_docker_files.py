"""docker/ holds files for users (no container engine here): check they agree with each other and with the
repository. scripts/validate-deploy.sh runs the real linters and schema checks; the integration test
naia_backfill_tests/integration/deploy/ runs the same instance file and commands against PostgreSQL."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
DOCKER = ROOT / "docker"
LONG_RUNNING = ("code", "webserver", "daemon")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$", re.I)


def compose() -> dict[str, Any]:
    return yaml.safe_load((DOCKER / "docker-compose.yaml").read_text())


def dockerfile() -> str:
    return (DOCKER / "Dockerfile").read_text()


def env_refs(node: Any) -> set[str]:
    """Every ``{env: NAME}`` in a Dagster YAML document."""
    if isinstance(node, dict):
        if set(node) == {"env"}:
            return {node["env"]}
        return set().union(*(env_refs(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(env_refs(v) for v in node)) if node else set()
    return set()


def test_only_the_web_ui_and_questdb_console_are_published_and_only_on_loopback():
    published = {name: svc["ports"] for name, svc in compose()["services"].items() if svc.get("ports")}
    assert set(published) == {"webserver", "questdb"}
    for name, ports in published.items():
        for port in ports:
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_secrets_come_from_the_env_file_never_from_literals():
    text = (DOCKER / "docker-compose.yaml").read_text()
    assert re.search(r"DAGSTER_PG_PASSWORD: \$\{DAGSTER_PG_PASSWORD:\?", text), "a missing password must be refused"
    for name, svc in compose()["services"].items():
        for key, value in (svc.get("environment") or {}).items():
            if SECRET_NAME.search(key):
                assert str(value).startswith("${"), f"{name}.{key} is a literal, not from docker/.env"
    example = [line for line in (DOCKER / ".env.example").read_text().splitlines()
               if line.strip() and not line.lstrip().startswith("#")]
    for line in example:
        key, _, value = line.partition("=")
        assert not (SECRET_NAME.search(key) and value.strip()), f".env.example gives {key} a value"


def test_every_compose_variable_is_documented_in_env_example():
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", (DOCKER / "docker-compose.yaml").read_text()))
    documented = set(re.findall(r"^#?\s*([A-Z0-9_]+)=", (DOCKER / ".env.example").read_text(), re.M))
    assert used <= documented, f"not in .env.example: {sorted(used - documented)}"


def test_the_env_file_is_ignored_by_git_and_kept_out_of_the_image():
    ignored = subprocess.run(["git", "check-ignore", "-q", "docker/.env"], cwd=ROOT, capture_output=True, text=True)
    assert ignored.returncode == 0, f".gitignore must cover docker/.env {ignored.stderr}"
    patterns = [line.strip() for line in (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert patterns[0] == "*", "the build context is an allowlist: everything is excluded first"
    allowed_from_docker = {"!docker/dagster.yaml", "!docker/workspace.yaml"}
    assert not [p for p in patterns if p.startswith("!docker") and p not in allowed_from_docker]


def test_instance_variables_are_set_for_every_service_that_loads_the_instance():
    needed = env_refs(yaml.safe_load((DOCKER / "dagster.yaml").read_text()))
    assert {"DAGSTER_PG_HOST", "DAGSTER_PG_PASSWORD", "DAGSTER_COMPUTE_LOGS_DIR"} <= needed
    services = compose()["services"]
    for name in ("migrate", *LONG_RUNNING):
        missing = needed - set(services[name]["environment"])
        assert not missing, f"{name} misses {missing}"


def test_deployment_instance_keeps_the_pools_and_limits_of_the_local_instance():
    deployed = yaml.safe_load((DOCKER / "dagster.yaml").read_text())
    local = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    assert deployed["concurrency"] == local["concurrency"]
    assert deployed["run_monitoring"]["free_slots_after_run_end_seconds"] == (
        local["run_monitoring"]["free_slots_after_run_end_seconds"])
    assert deployed["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert "postgres" in deployed["storage"]


def test_services_run_the_image_commands_against_the_copied_workspace():
    services = compose()["services"]
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile(), re.M)
    assert cmd and services["code"]["command"] == yaml.safe_load(cmd.group(1))
    workspace = yaml.safe_load((DOCKER / "workspace.yaml").read_text())["load_from"][0]["grpc_server"]
    code_cmd = services["code"]["command"]
    assert workspace["host"] == "code" and str(workspace["port"]) == code_cmd[code_cmd.index("-p") + 1]
    home = re.search(r"DAGSTER_HOME=(\S+)", dockerfile())
    assert home and f"COPY docker/dagster.yaml docker/workspace.yaml {home.group(1)}/" in dockerfile()
    for name in ("webserver", "daemon"):
        assert f"{home.group(1)}/workspace.yaml" in services[name]["command"]
    for name in ("migrate", *LONG_RUNNING, "consumer"):
        assert services[name]["image"] == services["code"]["image"] and services[name]["init"] is True


def test_long_running_services_wait_for_the_migration_and_have_health_checks():
    services = compose()["services"]
    assert "HEALTHCHECK" in dockerfile()  # the code server's, from the image
    for name in ("webserver", "daemon"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert services[name]["depends_on"]["code"]["condition"] == "service_healthy"
        assert services[name]["healthcheck"]["test"]
    assert services["code"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_optional_servers_are_behind_profiles():
    services = compose()["services"]
    assert {name for name, svc in services.items() if not svc.get("profiles")} == {"postgres", "migrate", *LONG_RUNNING}
    assert set(services["consumer"]["profiles"]) <= set(services["kafka"]["profiles"]) & set(
        services["questdb"]["profiles"]), "the consumer's profile must bring Kafka and QuestDB"
    assert services["consumer"]["command"] == ["naia-backfill", "consume"]


def test_image_is_slim_pinned_non_root_and_installs_the_deploy_extra():
    text = dockerfile()
    bases = re.findall(r"^FROM (\S+)", text, re.M)
    assert bases and all(re.fullmatch(r"python:3\.11\.\d+-slim-\w+", b) for b in bases), bases
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and user[-1].split(":")[0].isdigit() and user[-1].split(":")[0] != "0"
    extras = re.search(r'pip install --no-cache-dir "\.\[(\w+)\]"', text)
    assert extras, "the image installs the project with an extra"
    optional = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    declared = {re.split(r"[<>=\[ ;]", dep, maxsplit=1)[0].lower() for dep in optional.get(extras.group(1), [])}
    assert {"dagster-postgres", "dagster-k8s"} <= declared, f"pyproject.toml's [{extras.group(1)}] extra: {declared}"
    for copied in re.findall(r"^COPY (?!--)(.+?) \S+$", text, re.M):
        for path in copied.split():
            assert (ROOT / path).exists(), f"Dockerfile copies missing {path}"
            assert f"!{path}" in (DOCKER / "Dockerfile.dockerignore").read_text(), f"{path} not in the build context"
