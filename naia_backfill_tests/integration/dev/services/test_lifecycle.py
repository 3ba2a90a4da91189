"""The services module against the live servers: status, idempotent ``up``, a MongoDB round trip, and a full
start/stop/restart/reset cycle of FerretDB in a private folder on shifted ports (the shared servers are never
stopped here)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import uuid
from pathlib import Path

import pytest
from pymongo import MongoClient

from naia_backfill.dev.services import Layout, ensure, manager, status
from naia_backfill.dev.services.core import port_open
from naia_backfill.dev.services.mongodb import PORT as MONGODB_PORT
from naia_backfill.dev.services.mongodb import MongoDB

pytestmark = pytest.mark.integration


def pids() -> dict[str, int | None]:
    return {state.service: state.pid for state in status()}


def free_offset() -> int:
    """A port offset that puts FerretDB's two ports on free ports."""
    for _ in range(20):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port < 65000 and not port_open(port + 1):
            return port - MONGODB_PORT
    raise AssertionError("no two free ports in a row")


def client(uri: str) -> MongoClient:
    return MongoClient(uri, directConnection=True, serverSelectionTimeoutMS=10_000)


def test_status_reports_every_service_running(services_env: dict[str, str]):
    states = status()
    assert [s.service for s in states] == list(manager.NAMES)
    assert all(s.state == "running" and s.pid for s in states), [s.line() for s in states]
    shell = subprocess.run(
        [str(Layout.from_env().root / "scripts" / "services.sh"), "status"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert shell.returncode == 0, shell.stdout + shell.stderr
    assert [line.split(":")[0] for line in shell.stdout.splitlines()] == list(manager.NAMES)


def test_up_again_leaves_running_servers_alone_and_rewrites_the_env_file(services_env: dict[str, str]):
    before = pids()
    assert ensure() == services_env
    assert pids() == before
    layout = Layout.from_env()
    assert (layout.home / "env").read_text() == manager.render_env(manager.environment(None, layout))


def test_mongodb_round_trip(services_env: dict[str, str]):
    database = f"naia_services_check_{uuid.uuid4().hex[:12]}"
    with client(services_env["NAIA_MONGODB_URI"]) as mongo:
        try:
            readings = mongo[database]["readings"]
            docs = [{"_id": f"p1|{i}", "point": "p1", "seq": i, "value": i * 1.5} for i in range(100)]
            assert readings.insert_many(docs).inserted_ids == [d["_id"] for d in docs]
            found = list(readings.find({"seq": {"$gte": 98}}, sort=[("seq", 1)]))
            assert found == docs[98:]
            assert readings.count_documents({}) == 100
        finally:
            mongo.drop_database(database)


def test_mongodb_stops_restarts_with_its_data_and_resets_in_a_private_folder(tmp_path: Path):
    ensure(["mongodb"])  # builds FerretDB once if this machine has not yet
    layout = Layout(root=Layout.from_env().root, home=tmp_path / ".services", port_offset=free_offset(), timeout=60)
    private = MongoDB(layout)
    private.binary.parent.mkdir(parents=True)
    shutil.copy2(MongoDB(Layout.from_env()).binary, private.binary)
    uri = manager.up(["mongodb"], layout)["NAIA_MONGODB_URI"]
    try:
        first = private.pid()
        manager.up(["mongodb"], layout)
        assert private.pid() == first
        with client(uri) as mongo:
            mongo.naia.kept.insert_one({"_id": "survives", "value": 1})

        manager.down(["mongodb"], layout)
        assert private.pid() is None and not port_open(private.port)
        assert manager.status(["mongodb"], layout)[0].state == "stopped"

        manager.up(["mongodb"], layout)
        assert private.pid() not in (None, first)
        with client(uri) as mongo:
            assert mongo.naia.kept.find_one({"_id": "survives"}) == {"_id": "survives", "value": 1}

        manager.reset(["mongodb"], layout)
        manager.up(["mongodb"], layout)
        with client(uri) as mongo:
            assert mongo.naia.kept.count_documents({}) == 0
    finally:
        manager.down(["mongodb"], layout)
