"""Where the development servers live (folders, ports, timeout) and the small socket and log helpers they share."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import psutil

from naia_backfill.errors import NaiaError

log = logging.getLogger("naia_backfill.dev.services")

HOST = "127.0.0.1"
DEFAULT_TIMEOUT_S = 120.0
LOG_TAIL_LINES = 40

Num = TypeVar("Num", int, float)


class ServiceError(NaiaError):
    """A development server could not be fetched, started, reached or stopped."""


@dataclass(frozen=True)
class Layout:
    """Where one set of development servers keeps its state, and how it is reached.

    ``home`` holds every download, configuration, data folder, log and PID file (``<repo>/.services`` by
    default). ``port_offset`` shifts every port, so a second set (tests of the start/stop logic) can run beside
    the shared one. ``timeout`` is how long a server may take to answer after it starts.
    """

    root: Path
    home: Path
    port_offset: int = 0
    timeout: float = DEFAULT_TIMEOUT_S

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Layout:
        """The layout the environment asks for.

        ``NAIA_SERVICES_DIR`` (state folder), ``NAIA_SERVICES_PORT_OFFSET`` (added to every port) and
        ``NAIA_SERVICES_TIMEOUT`` (seconds) override the defaults.
        """
        env = os.environ if environ is None else environ
        root = repo_root()
        home = Path(env["NAIA_SERVICES_DIR"]).resolve() if env.get("NAIA_SERVICES_DIR") else root / ".services"
        return cls(
            root=root,
            home=home,
            port_offset=_number(env, "NAIA_SERVICES_PORT_OFFSET", int, 0),
            timeout=_number(env, "NAIA_SERVICES_TIMEOUT", float, DEFAULT_TIMEOUT_S),
        )

    def port(self, base: int) -> int:
        """The port a service listens on, given its default."""
        port = base + self.port_offset
        if not 0 < port < 65536:
            raise ServiceError(f"port {base} + NAIA_SERVICES_PORT_OFFSET {self.port_offset} is not a TCP port")
        return port

    def folder(self, service: str) -> Path:
        """The service's own folder under ``home``."""
        return self.home / service


def _number(env: Mapping[str, str], name: str, kind: type[Num], default: Num) -> Num:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError:
        raise ServiceError(f"{name}={raw!r} is not a number") from None


def repo_root() -> Path:
    """The checkout this package runs from (editable install), else the nearest project folder above the cwd."""
    here = Path(__file__).resolve()
    for candidate in [*here.parents, *Path.cwd().resolve().parents, Path.cwd().resolve()]:
        if (candidate / "pyproject.toml").is_file() and (candidate / "naia_backfill").is_dir():
            return candidate
    return Path.cwd().resolve()


def port_open(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def listener(port: int) -> str:
    """Who listens on ``port`` ("pid 12 (java)"), as far as this user may see."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return "unknown process"
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            try:
                return f"pid {conn.pid} ({psutil.Process(conn.pid).name()})"
            except psutil.Error:
                return f"pid {conn.pid}"
    return "unknown process"


def require_free_ports(service: str, ports: Iterable[int]) -> None:
    """Refuse to start when one of the ports is taken by something that is not ours."""
    for port in ports:
        if port_open(port):
            raise ServiceError(
                f"{service}: {HOST}:{port} is already in use by another process ({listener(port)}). Stop it, or "
                "point the project at that server with the NAIA_* / AWS_* variables (scripts/services.sh env)."
            )


def log_tail(paths: Iterable[Path], lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of each non-empty log file, each under a header naming it."""
    parts = []
    for path in paths:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        if text.strip():
            tail = "\n".join(text.splitlines()[-lines:])
            parts.append(f"---- last lines of {path} ----\n{tail}")
    return "\n".join(parts)
