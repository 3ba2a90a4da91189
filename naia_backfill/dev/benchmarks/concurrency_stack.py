"""The processes of the concurrency benchmark: a PI Web API simulator and the PostgreSQL-backed Dagster instance.

The instance is the docker-compose deployment's without containers: docker/dagster.yaml unchanged (run, event-log
and schedule storage and pool slots in PostgreSQL; queued run coordinator; pools with limit 1), in a fresh
database of the PostgreSQL at ``NAIA_PG_DSN`` that is dropped afterwards, and the compose services' commands
(``dagster instance migrate``, a code server, ``dagster-webserver``, ``dagster-daemon run``) from this Python's
environment, on 127.0.0.1 and free ports. Every server runs in its own process group and is stopped with SIGINT
to the group (then SIGTERM, then SIGKILL), waiting until the whole group is gone, so no run worker outlives it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import yaml
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from naia_backfill.dev.services.process import free_port, spawn_group, stop_group
from naia_backfill.errors import NaiaError

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
START_TIMEOUT_S = 300.0  # three Dagster processes loading at once on two shared cores
STOP_GRACE_S = 60.0
GRPC_TIMEOUT_S = 300
ASSETS = "query { assetNodes { assetKey { path } } }"


class StackError(NaiaError):
    """A process of the benchmark did not start, answer or stop."""


class NotReady(Exception):
    """Raised by a readiness probe that should be tried again."""


@dataclass
class Server:
    """One server process, leader of its own process group, logging to ``log``."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- {self.name} ({self.log}) ---\n" + "\n".join(text.splitlines()[-lines:])

    def check(self) -> None:
        if self.proc.poll() is not None:
            raise StackError(f"{self.name} exited with code {self.proc.returncode}\n{self.tail()}")

    def stop(self) -> None:
        stop_group(self.proc, STOP_GRACE_S)


def wait_until(probe: Callable[[], bool], timeout: float, what: str, *servers: Server) -> None:
    """Until ``probe()`` is true (a probe may raise :class:`NotReady` or an HTTP error to mean "not yet"); the
    servers must stay alive meanwhile."""

    def attempt() -> None:
        for server in servers:
            server.check()
        if not probe():
            raise NotReady(what)

    retrying = Retrying(stop=stop_after_delay(timeout), wait=wait_fixed(0.5), reraise=True,
                        retry=retry_if_exception_type((NotReady, httpx.HTTPError, OSError)))
    try:
        retrying(attempt)
    except (NotReady, httpx.HTTPError, OSError) as e:
        raise StackError(f"{what}: not ready after {timeout:g}s ({e})\n"
                         + "\n".join(s.tail() for s in servers)) from None


def start(name: str, argv: list[str], env: Mapping[str, str], folder: Path) -> Server:
    log = folder / f"{name}.log"
    return Server(name, spawn_group(argv, folder, env, log), log)


@contextmanager
def pi_simulator(folder: Path) -> Iterator[str]:
    """``naia-backfill simulate pi-web-api`` (the default catalogue) on a free port; yields its base URL."""
    port = free_port()
    server = start("pi-simulator", [sys.executable, "-m", "naia_backfill.cli", "simulate", "pi-web-api",
                                    "--port", str(port)], os.environ, folder)
    url = f"http://127.0.0.1:{port}/piwebapi"
    try:
        wait_until(lambda: httpx.get(url, timeout=5).status_code == 200, 120, "PI Web API simulator", server)
        yield url
    finally:
        server.stop()


def connect(dsn: str, database: str | None = None) -> Any:
    """A psycopg2 connection to ``database`` (default: the DSN's) on the server of ``dsn``."""
    import psycopg2  # comes with dagster-postgres (the deploy extra)

    parts = urlsplit(dsn)
    return psycopg2.connect(host=parts.hostname or "127.0.0.1", port=parts.port or 5432,
                            user=unquote(parts.username or "postgres"), password=unquote(parts.password or ""),
                            dbname=database or parts.path.lstrip("/") or "postgres")


@contextmanager
def fresh_database(dsn: str) -> Iterator[str]:
    """A new, empty database on the server of ``dsn``; yields its name and drops it afterwards."""
    from psycopg2 import sql

    name = f"naia_bench_{uuid.uuid4().hex[:12]}"
    con = connect(dsn)
    con.autocommit = True
    try:
        with con.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        yield name
    finally:
        with con.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        con.close()


@dataclass(frozen=True)
class Instance:
    """A running PostgreSQL-backed Dagster: its webserver URL, lake folder and database."""

    url: str
    lake: Path
    dsn: str
    database: str
    servers: tuple[Server, ...]


def _env(folder: Path, dsn: str, database: str, point_sets: Path) -> dict[str, str]:
    """What docker-compose.yaml gives the services, with this machine's addresses and folders."""
    parts = urlsplit(dsn)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "NAIA_"))}
    return {
        **env,
        "DAGSTER_HOME": str(folder / "dagster_home"),
        "DAGSTER_PG_HOST": parts.hostname or "127.0.0.1", "DAGSTER_PG_PORT": str(parts.port or 5432),
        "DAGSTER_PG_USER": unquote(parts.username or "postgres"), "DAGSTER_PG_PASSWORD": unquote(parts.password or ""),
        "DAGSTER_PG_DB": database, "DAGSTER_COMPUTE_LOGS_DIR": str(folder / "compute_logs"),
        "NAIA_LAKE_URL": str(folder / "lake"), "NAIA_DUCKDB_PATH": str(folder / "naia.duckdb"),
        "NAIA_POINT_SETS": str(point_sets), "NAIA_RATE_LIMIT_DIR": str(folder / "rate_limits"),
        # Launching a run is a call to the code server, which forks the run's process; on two cores shared with
        # other work it took over Dagster's default 60 s, and the daemon then failed the run
        # (DagsterUserCodeUnreachableError) and with it the backfill's days.
        "DAGSTER_GRPC_TIMEOUT_SECONDS": str(GRPC_TIMEOUT_S),
    }


def _loaded(url: str, assets: set[str]) -> bool:
    body = httpx.post(f"{url}/graphql", json={"query": ASSETS}, timeout=30).json()
    keys = {"/".join(n["assetKey"]["path"]) for n in (body.get("data") or {}).get("assetNodes") or []}
    return assets <= keys


@contextmanager
def postgres_instance(folder: Path, dsn: str, point_sets: Path, assets: set[str]) -> Iterator[Instance]:
    """Migrate a fresh database, then start the code server, the webserver and the daemon; ready once the
    webserver has loaded ``assets``."""
    try:
        import dagster_postgres  # noqa: F401
    except ImportError:
        raise StackError("the PostgreSQL-backed instance needs dagster-postgres: pip install '.[deploy]'") from None
    with ExitStack() as stack:
        database = stack.enter_context(fresh_database(dsn))
        home = folder / "dagster_home"
        home.mkdir(parents=True)
        shutil.copyfile(ROOT / "docker" / "dagster.yaml", home / "dagster.yaml")
        code_port, web_port = free_port(), free_port()
        workspace = {"load_from": [{"grpc_server": {"host": "127.0.0.1", "port": code_port,
                                                    "location_name": "naia_backfill"}}]}
        (folder / "workspace.yaml").write_text(yaml.safe_dump(workspace))
        env = _env(folder, dsn, database, point_sets)
        migrated = subprocess.run([str(BIN / "dagster"), "instance", "migrate"], env=env, cwd=folder,
                                  capture_output=True, text=True, timeout=600, check=False)
        if migrated.returncode != 0:
            raise StackError(f"dagster instance migrate failed:\n{migrated.stdout}\n{migrated.stderr}")
        servers: list[Server] = []
        stack.callback(lambda: [s.stop() for s in reversed(servers)])
        servers.append(start("code", [str(BIN / "dagster"), "code-server", "start", "-h", "127.0.0.1",
                                      "-p", str(code_port), "-m", "naia_backfill.definitions"], env, folder))
        health = [str(BIN / "dagster"), "api", "grpc-health-check", "-p", str(code_port)]
        wait_until(lambda: subprocess.run(health, env=env, capture_output=True, timeout=60).returncode == 0,
                   START_TIMEOUT_S, "code server", *servers)
        workspace_file = str(folder / "workspace.yaml")
        servers.append(start("webserver", [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(web_port),
                                           "-w", workspace_file], env, folder))
        servers.append(start("daemon", [str(BIN / "dagster-daemon"), "run", "-w", workspace_file], env, folder))
        url = f"http://127.0.0.1:{web_port}"
        wait_until(lambda: _loaded(url, assets), START_TIMEOUT_S, "webserver", *servers)
        yield Instance(url, folder / "lake", dsn, database, tuple(servers))
