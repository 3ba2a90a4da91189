from __future__ import annotations

import fcntl
from pathlib import Path

import pytest

from naia_backfill.dev.services import manager
from naia_backfill.dev.services.base import Service
from naia_backfill.dev.services.core import Layout, ServiceError
from naia_backfill.dev.services.mongodb import PORT as MONGODB_PORT
from naia_backfill.dev.services.mongodb import MongoDB
from naia_backfill.dev.services.process import alive

# The contract with scripts, docs and every test that sources .services/env: names, order and default ports.
LEGACY_ENV = """export NAIA_KAFKA_BOOTSTRAP=127.0.0.1:19092
export NAIA_QUESTDB_HTTP=127.0.0.1:19000
export NAIA_QUESTDB_PG=127.0.0.1:18812
export NAIA_QUESTDB_ILP_TCP=127.0.0.1:19009
export AWS_ENDPOINT_URL=http://127.0.0.1:18333
export AWS_ACCESS_KEY_ID=naia-test-key
export AWS_SECRET_ACCESS_KEY=naia-test-secret
export AWS_REGION=us-east-1
export NAIA_S3_BUCKET=naia-test
export NAIA_PG_DSN=postgresql://postgres@127.0.0.1:15432/naia
"""


class Sleeper(Service):
    """A stand-in server: a shell that idles until SIGTERM, ready as soon as its process runs."""

    name = "sleeper"
    log_name = "sleeper.log"
    grace_s = 5.0
    script = 'trap "exit 0" TERM; while :; do sleep 0.1; done'

    def ports(self) -> list[int]:
        return []

    def env(self) -> dict[str, str]:
        return {"SLEEPER_HOME": str(self.folder)}

    def where(self) -> str:
        return "nowhere"

    def data(self) -> list[Path]:
        return [self.folder / "data"]

    def prepare(self) -> None:
        (self.folder / "data").mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        return ["/bin/sh", "-c", self.script, str(self.folder)]  # $0 names our folder: the process is ours

    def ready(self) -> bool:
        return self.pid() is not None


class Crasher(Sleeper):
    name = "crasher"
    script = "echo 'FATAL: no such table'; exit 2"

    def ready(self) -> bool:
        return False


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(manager.SERVICES, Sleeper.name, Sleeper)
    monkeypatch.setitem(manager.SERVICES, Crasher.name, Crasher)


def test_every_service_by_default_in_start_order_each_once(layout: Layout):
    assert [s.name for s in manager.select(None, layout)] == ["kafka", "questdb", "s3", "postgres", "mongodb"]
    assert [s.name for s in manager.select(["s3", "kafka", "s3"], layout)] == ["s3", "kafka"]
    with pytest.raises(ServiceError, match="unknown service redis"):
        manager.select(["redis"], layout)


def test_the_env_file_keeps_the_former_variables_and_adds_mongodb(layout: Layout):
    manager.write_env(layout)
    assert (layout.home / "env").read_text() == LEGACY_ENV + "export NAIA_MONGODB_URI=mongodb://127.0.0.1:27018/\n"


def test_a_second_start_or_stop_waits_for_the_lock(layout: Layout):
    layout.home.mkdir(parents=True)
    with (layout.home / ".lock").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(ServiceError, match="holds"), manager.locked(layout, wait_s=0.3):
            pass
    with manager.locked(layout, wait_s=0.3):
        pass


def test_a_taken_port_stops_up_before_anything_is_fetched_or_built(tmp_path: Path, listening: int):
    layout = Layout(root=tmp_path, home=tmp_path / ".services", port_offset=listening - MONGODB_PORT)
    with pytest.raises(ServiceError, match=f"127.0.0.1:{listening} is already in use"):
        manager.up(["mongodb"], layout)
    assert not MongoDB(layout).binary.exists()


def test_up_starts_once_down_stops_reset_deletes_data(layout: Layout, fakes: None):
    variables = manager.up(["sleeper"], layout)
    service = Sleeper(layout)
    assert variables == {"SLEEPER_HOME": str(service.folder)}
    pid = service.pid()
    assert pid is not None and (layout.home / "env").is_file()
    try:
        manager.up(["sleeper"], layout)
        assert service.pid() == pid  # idempotent: the running server is left alone
        assert [s.line() for s in manager.status(["sleeper"], layout)] == [f"sleeper: running (pid {pid}) nowhere"]
        manager.down(["sleeper"], layout)
        assert not alive(pid) and service.pid() is None
        assert manager.status(["sleeper"], layout)[0].line() == "sleeper: stopped"
        manager.up(["sleeper"], layout)
        assert service.pid() not in (None, pid)
        manager.reset(["sleeper"], layout)
        assert service.pid() is None and not (service.folder / "data").exists()
    finally:
        manager.down(["sleeper"], layout)


def test_a_server_that_dies_at_start_fails_up_with_its_log(layout: Layout, fakes: None):
    with pytest.raises(ServiceError) as failed:
        manager.up(["crasher"], layout)
    assert "crasher: the server process exited during startup" in str(failed.value)
    assert "FATAL: no such table" in str(failed.value)
    assert not (layout.home / "env").exists()
