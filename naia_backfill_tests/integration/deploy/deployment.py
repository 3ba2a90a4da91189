"""The docker-compose deployment's processes without containers, on 127.0.0.1.

A virtual environment installed the way docker/Dockerfile installs the image (``.[deploy]``, not editable, no
dev extras), Dagster's storage in a fresh database of the test PostgreSQL, docker/dagster.yaml as the instance
file unchanged (its ``DAGSTER_PG_*`` variables point at that database), and the ``migrate``, ``code``,
``webserver`` and ``daemon`` services' own commands from docker/docker-compose.yaml, with the container addresses
replaced by 127.0.0.1 and free ports. Each server runs in its own process group and is stopped with SIGINT to the
group (SIGTERM, then SIGKILL, if it does not exit), waiting until every process of the group is gone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import yaml

from naia_backfill.dev.services.process import free_port, spawn_group, stop_group

ROOT = Path(__file__).resolve().parents[3]
DOCKER = ROOT / "docker"
STOP_TIMEOUT = 60.0

# Runs in the deployment's venv (psycopg2 comes with dagster-postgres): {"dsn", "autocommit", "sql", "params"} on
# stdin, the rows as JSON on stdout. SQL text is fixed by the caller; values travel as parameters.
_SQL_RUNNER = """
import json, sys
import psycopg2
req = json.load(sys.stdin)
con = psycopg2.connect(req["dsn"])
con.autocommit = req["autocommit"]
with con.cursor() as cur:
    cur.execute(req["sql"], req["params"])
    rows = cur.fetchall() if cur.description else []
con.commit()
con.close()
json.dump(rows, sys.stdout, default=str)
"""


@dataclass(frozen=True)
class Postgres:
    """The test server of ``NAIA_PG_DSN`` and a database on it; SQL goes through ``python`` (the deploy venv)."""

    host: str
    port: int
    user: str
    password: str
    database: str
    python: Path

    @classmethod
    def from_dsn(cls, dsn: str, python: Path) -> Postgres:
        parts = urlsplit(dsn)
        return cls(parts.hostname or "127.0.0.1", parts.port or 5432, unquote(parts.username or "postgres"),
                   unquote(parts.password or ""), parts.path.lstrip("/") or "postgres", python)

    def on(self, database: str) -> Postgres:
        return Postgres(self.host, self.port, self.user, self.password, database, self.python)

    def query(self, sql: str, params: Sequence[Any] = (), *, autocommit: bool = False) -> list[list[Any]]:
        dsn = (f"host={self.host} port={self.port} user={self.user} dbname={self.database}"
               + (f" password={self.password}" if self.password else ""))
        request = json.dumps({"dsn": dsn, "autocommit": autocommit, "sql": sql, "params": list(params)})
        done = subprocess.run([str(self.python), "-c", _SQL_RUNNER], input=request, capture_output=True, text=True,
                              timeout=60)
        if done.returncode != 0:
            pytest.fail(f"SQL failed on {self.database}: {sql}\n{done.stderr[-2000:]}")
        return json.loads(done.stdout)


@contextmanager
def fresh_database(server: Postgres) -> Iterator[Postgres]:
    """A new, empty database on ``server``, dropped afterwards (connections and all)."""
    name = f"naia_deploy_{uuid.uuid4().hex[:12]}"
    # Identifiers cannot be parameters; the name is made here from hex digits only.
    server.query(f'CREATE DATABASE "{name}"', autocommit=True)
    try:
        yield server.on(name)
    finally:
        server.query(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', autocommit=True)


def install_deploy_venv(folder: Path) -> tuple[Path, float]:
    """``pip install ".[deploy]"`` of this repository into a new venv, as the image's build stage does (uv's
    pip interface, for speed: the same resolution, non-editable, no dev extras). Returns its python and the
    seconds the install took."""
    uv = ROOT / ".venv" / "bin" / "uv"
    uv_cmd = str(uv) if uv.exists() else shutil.which("uv")
    if not uv_cmd:
        pytest.fail("uv not found (scripts/install.sh installs it into .venv)")
    started = time.monotonic()
    subprocess.run([uv_cmd, "venv", "-q", "--python", sys.executable, str(folder)], check=True, timeout=120)
    python = folder / "bin" / "python"
    done = subprocess.run([uv_cmd, "pip", "install", "-q", "--python", str(python), f"{ROOT}[deploy]"],
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        pytest.fail(f"installing {ROOT}[deploy] failed:\n{done.stderr[-3000:]}")
    # pip and uv only warn about an unknown extra; the image's build makes the same check.
    check = subprocess.run([str(python), "-c", "import dagster_postgres, dagster_k8s"], capture_output=True, text=True)
    if check.returncode != 0:
        pytest.fail(f"{ROOT}[deploy] did not install dagster-postgres and dagster-k8s:\n{check.stderr[-1000:]}")
    return python, time.monotonic() - started


def compose_command(service: str, bin_dir: Path, replace: Mapping[str, str]) -> list[str]:
    """The ``command`` of a docker-compose service, run from ``bin_dir``, with arguments swapped per ``replace``
    (container addresses, ports and paths -> this machine's)."""
    compose = yaml.safe_load((DOCKER / "docker-compose.yaml").read_text())
    command = list(compose["services"][service]["command"])
    return [str(bin_dir / command[0]), *(replace.get(arg, arg) for arg in command[1:])]


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- {self.name} ({self.log}) ---\n" + "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGINT to the group, then wait for the leader and the rest of the group (run workers too)."""
        stop_group(self.proc, STOP_TIMEOUT)


@dataclass
class Deployment:
    """The running processes and where their state is."""

    folder: Path
    python: Path
    db: Postgres
    env: dict[str, str]
    url: str
    lake: Path
    install_seconds: float
    servers: list[Server] = field(default_factory=list)

    def logs(self) -> str:
        return "\n".join(s.log_tail() for s in self.servers)

    def start(self, name: str, command: list[str]) -> Server:
        log = self.folder / f"{name}.log"
        server = Server(name, spawn_group(command, self.folder, self.env, log), log)
        self.servers.append(server)
        return server

    def run(self, name: str, command: list[str], timeout: float = 300) -> None:
        done = subprocess.run(command, cwd=self.folder, env=self.env, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            pytest.fail(f"{name} ({' '.join(command)}) exited {done.returncode}:\n{done.stdout}\n{done.stderr}")


def instance_env(folder: Path, db: Postgres, bin_dir: Path, point_sets: Path) -> dict[str, str]:
    """What docker-compose.yaml gives the services, with this machine's addresses and folders."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "NAIA_"))}
    return {
        **env,
        "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        "DAGSTER_HOME": str(folder / "dagster_home"),
        "DAGSTER_PG_HOST": db.host, "DAGSTER_PG_PORT": str(db.port), "DAGSTER_PG_USER": db.user,
        "DAGSTER_PG_PASSWORD": db.password, "DAGSTER_PG_DB": db.database,
        "DAGSTER_COMPUTE_LOGS_DIR": str(folder / "compute_logs"),
        "NAIA_LAKE_URL": str(folder / "lake"), "NAIA_DUCKDB_PATH": str(folder / "naia.duckdb"),
        "NAIA_POINT_SETS": str(point_sets),
    }


@contextmanager
def deployment(folder: Path, dsn: str, point_sets: Path) -> Iterator[Deployment]:
    """Install, create the database, migrate, then start the code server, the webserver and the daemon."""
    python, install_seconds = install_deploy_venv(folder / "venv")
    bin_dir = python.parent
    with ExitStack() as stack:
        db = stack.enter_context(fresh_database(Postgres.from_dsn(dsn, python)))
        home = folder / "dagster_home"
        home.mkdir()
        shutil.copyfile(DOCKER / "dagster.yaml", home / "dagster.yaml")
        code_port, web_port = free_port(), free_port()
        workspace = yaml.safe_load((DOCKER / "workspace.yaml").read_text())
        workspace["load_from"][0]["grpc_server"].update(host="127.0.0.1", port=code_port)
        (folder / "workspace.yaml").write_text(yaml.safe_dump(workspace))
        deploy = Deployment(folder, python, db, instance_env(folder, db, bin_dir, point_sets),
                            f"http://127.0.0.1:{web_port}", folder / "lake", install_seconds)
        stack.callback(lambda: [s.stop() for s in reversed(deploy.servers)])
        replace = {"0.0.0.0": "127.0.0.1", "4000": str(code_port), "3000": str(web_port),
                   "/opt/dagster/home/workspace.yaml": str(folder / "workspace.yaml")}
        deploy.run("migrate", compose_command("migrate", bin_dir, replace))
        code = deploy.start("code", compose_command("code", bin_dir, replace))
        wait_healthy(deploy, code, [str(bin_dir / "dagster"), "api", "grpc-health-check", "-p", str(code_port)])
        for service in ("webserver", "daemon"):
            deploy.start(service, compose_command(service, bin_dir, replace))
        yield deploy


def wait_healthy(deploy: Deployment, server: Server, health_check: list[str], timeout: float = 240) -> None:
    """Until ``health_check`` (the image's HEALTHCHECK command) passes, as compose's ``service_healthy`` waits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            pytest.fail(f"{server.name} exited with {server.proc.returncode}\n{deploy.logs()}")
        if subprocess.run(health_check, env=deploy.env, capture_output=True, timeout=60).returncode == 0:
            return
        time.sleep(1)
    pytest.fail(f"{server.name} not healthy after {timeout:g}s\n{deploy.logs()}")
