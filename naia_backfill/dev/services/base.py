"""What every development server provides: its ports, variables, preparation, command, probe and state."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from naia_backfill.dev.services.core import Layout, log
from naia_backfill.dev.services.process import owned_pid, spawn, stop_pid

State = Literal["running", "unhealthy", "stopped"]


@dataclass(frozen=True)
class Status:
    """One server's state as ``status`` reports it: whether its process is ours and alive, and whether it answers."""

    service: str
    state: State
    pid: int | None = None
    where: str = ""
    note: str = ""

    def line(self) -> str:
        """The one-line report, e.g. ``kafka: running (pid 12) 127.0.0.1:19092 (controller :19093)``."""
        if self.state == "running":
            return f"{self.service}: running (pid {self.pid}) {self.where}"
        if self.state == "unhealthy":
            return f"{self.service}: process {self.pid} alive but not answering ({self.where})"
        return f"{self.service}: stopped" + (f" ({self.note})" if self.note else "")


class Service(ABC):
    """One development server kept under ``<home>/<name>/`` and bound to 127.0.0.1."""

    name: ClassVar[str]
    log_name: ClassVar[str]
    grace_s: ClassVar[float] = 30.0

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.folder = layout.folder(self.name)

    @property
    def pid_file(self) -> Path:
        return self.folder / "pid"

    @property
    def log_file(self) -> Path:
        """Where the server's own output goes."""
        return self.folder / self.log_name

    def logs(self) -> list[Path]:
        """The logs worth showing when the server does not come up."""
        return [self.log_file]

    @abstractmethod
    def ports(self) -> list[int]:
        """Every port the server listens on (all must be free before it starts)."""

    @abstractmethod
    def env(self) -> dict[str, str]:
        """The variables clients read to reach the server (written to ``.services/env``)."""

    @abstractmethod
    def where(self) -> str:
        """Where it answers, for ``status``."""

    @abstractmethod
    def data(self) -> list[Path]:
        """Folders ``reset`` deletes (downloads are kept)."""

    @abstractmethod
    def ready(self) -> bool:
        """Whether the server answers a real request."""

    @abstractmethod
    def command(self) -> list[str]:
        """The server's command line (after ``prepare``)."""

    def prepare(self) -> None:
        """Fetch or build what is missing and write the configuration, before each start."""

    def after_ready(self) -> None:
        """Set-up that needs the running server (databases, buckets)."""

    def healthy(self) -> bool:
        """The check ``status`` uses (the readiness probe unless a cheaper one is enough)."""
        return self.ready()

    def pid(self) -> int | None:
        """The server's PID when it is running and ours."""
        return owned_pid(self.pid_file, str(self.folder))

    def running(self, elapsed: float) -> bool:
        """Whether the process is still there ``elapsed`` seconds after it was started."""
        return self.pid() is not None

    def start(self) -> None:
        """Start the server detached; readiness is awaited separately so servers boot in parallel."""
        self.folder.mkdir(parents=True, exist_ok=True)
        spawn(self.command(), self.pid_file, self.log_file)

    def stop(self) -> None:
        """Stop the server if it runs: SIGTERM, then SIGKILL after ``grace_s``."""
        pid = self.pid()
        if pid is None:
            log.info("%s: not running", self.name)
        else:
            log.info("%s: stopping (pid %d)", self.name, pid)
            stop_pid(self.name, pid, self.grace_s)
            log.info("%s: stopped", self.name)
        self.pid_file.unlink(missing_ok=True)

    def status(self) -> Status:
        pid = self.pid()
        if pid is None:
            return Status(self.name, "stopped")
        return Status(self.name, "running" if self.healthy() else "unhealthy", pid, self.where())
