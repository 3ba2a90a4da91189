from __future__ import annotations

from pathlib import Path

import pytest

from naia_backfill.dev.services import questdb
from naia_backfill.dev.services.core import Layout, ServiceError


def test_server_conf_binds_every_listener_to_loopback_and_disables_telemetry():
    conf = dict(line.split("=", 1) for line in questdb.server_conf(1, 2, 3, 4).splitlines() if not line.startswith("#"))
    binds = {k: v for k, v in conf.items() if k.endswith("bind.to")}
    assert binds == {
        "http.bind.to": "127.0.0.1:1",
        "http.min.net.bind.to": "127.0.0.1:2",
        "pg.net.bind.to": "127.0.0.1:3",
        "line.tcp.net.bind.to": "127.0.0.1:4",
    }
    assert conf["telemetry.enabled"] == "false"
    assert conf["line.udp.enabled"] == "false"


def test_the_server_jar_is_found_or_reported(tmp_path: Path):
    with pytest.raises(ServiceError, match="no questdb-"):
        questdb.server_jar(tmp_path)
    (tmp_path / "questdb-9.3.4.jar").touch()
    assert questdb.server_jar(tmp_path) == tmp_path / "questdb-9.3.4.jar"


def test_command_runs_the_jar_as_a_module_with_its_root(layout: Layout, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(questdb, "find_java", lambda: "/usr/bin/java")
    service = questdb.QuestDB(layout)
    (service.folder / "lib").mkdir(parents=True)
    (service.folder / "lib" / "questdb-9.3.4.jar").touch()
    argv = service.command()
    assert argv[argv.index("-p") + 1] == str(service.folder / "lib" / "questdb-9.3.4.jar")
    assert argv[argv.index("-m") + 1] == "io.questdb/io.questdb.ServerMain"
    assert argv[argv.index("-d") + 1] == str(service.folder / "root")
    assert f"-Djava.io.tmpdir={service.folder / 'tmp'}" in argv


def test_env_names_the_three_endpoints(layout: Layout):
    service = questdb.QuestDB(layout)
    assert service.env() == {
        "NAIA_QUESTDB_HTTP": f"127.0.0.1:{service.http_port}",
        "NAIA_QUESTDB_PG": f"127.0.0.1:{service.pg_port}",
        "NAIA_QUESTDB_ILP_TCP": f"127.0.0.1:{service.ilp_tcp_port}",
    }
    assert len(set(service.ports())) == 4
