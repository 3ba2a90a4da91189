from __future__ import annotations

import base64

import pytest

from naia_backfill.dev.services import kafka
from naia_backfill.dev.services.core import Layout


def properties(text: str) -> dict[str, str]:
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_server_properties_describe_one_loopback_node_that_is_broker_and_controller(layout: Layout):
    service = kafka.Kafka(layout)
    conf = properties(kafka.server_properties(service.folder / "data", 19092, 19093))
    assert conf["process.roles"] == "broker,controller"
    assert conf["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert conf["advertised.listeners"] == conf["listeners"]
    assert conf["controller.quorum.bootstrap.servers"] == "127.0.0.1:19093"
    assert conf["log.dirs"] == str(service.folder / "data")
    replication = {k: v for k, v in conf.items() if k.endswith(("replication.factor", "min.isr"))}
    assert set(replication.values()) == {"1"}
    assert conf["group.initial.rebalance.delay.ms"] == "0"


def test_cluster_ids_are_16_random_bytes_in_url_safe_base64():
    first, second = kafka.new_cluster_id(), kafka.new_cluster_id()
    assert first != second
    assert len(base64.urlsafe_b64decode(first + "==")) == 16
    assert "=" not in first and "+" not in first and "/" not in first


def test_ports_env_and_command_follow_the_layout(layout: Layout, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(kafka, "find_java", lambda: "/usr/bin/java")
    service = kafka.Kafka(Layout(root=layout.root, home=layout.home, port_offset=100))
    assert service.ports() == [19192, 19193]
    assert service.env() == {"NAIA_KAFKA_BOOTSTRAP": "127.0.0.1:19192"}
    argv = service.command()
    assert argv[0] == "/usr/bin/java"
    assert argv[argv.index("-cp") + 1] == f"{service.folder / 'lib'}/*"
    assert argv[-2:] == ["kafka.Kafka", str(service.folder / "config" / "server.properties")]
    assert any(str(service.folder) in arg for arg in argv[1:])  # how `status` recognises the process as ours
