"""docker/ is for users (no Docker engine here): check it is consistent, not that it builds."""

from __future__ import annotations

import re

import yaml

from naia_backfill_tests.conftest import ROOT

DOCKER = ROOT / "docker"


def test_compose_publishes_ports_on_loopback_only_and_takes_secrets_from_env():
    compose = yaml.safe_load((DOCKER / "docker-compose.yaml").read_text())
    assert set(compose["services"]) == {"postgres", "code", "webserver", "daemon"}
    for name, svc in compose["services"].items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    text = (DOCKER / "docker-compose.yaml").read_text()
    assert re.search(r"PASSWORD: \$\{DAGSTER_PG_PASSWORD:\?", text)
    assert not re.search(r"PASSWORD: [A-Za-z0-9]", text), "no literal passwords"


def test_instance_and_workspace_files_match_the_image():
    instance = yaml.safe_load((DOCKER / "dagster.yaml").read_text())
    assert instance["storage"]["postgres"]["postgres_db"]["password"] == {"env": "DAGSTER_PG_PASSWORD"}
    assert instance["concurrency"]["pools"]["default_limit"] == 1
    workspace = yaml.safe_load((DOCKER / "workspace.yaml").read_text())
    assert workspace["load_from"][0]["grpc_server"]["port"] == 4000
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert "naia_backfill.definitions" in dockerfile and "-p\", \"4000\"" in dockerfile
    for copied in re.findall(r"^COPY (?!--)(.+?) \S+$", dockerfile, re.M):
        for path in copied.split():
            assert (ROOT / path).exists(), f"Dockerfile copies missing {path}"
