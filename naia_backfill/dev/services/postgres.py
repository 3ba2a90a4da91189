"""PostgreSQL: Debian's server (installed with apt-get when missing), run as the postgres user."""

from __future__ import annotations

import glob
import hashlib
import pwd
import shutil
import subprocess
from pathlib import Path

from naia_backfill.dev.services.base import Service, Status
from naia_backfill.dev.services.core import HOST, ServiceError, log, log_tail
from naia_backfill.dev.services.process import owned_pid, rotate, stop_pid
from naia_backfill.dev.services.tools import apt_install, is_root, run_logged

PORT = 15432
DATABASE = "naia"
USER = "postgres"
# postgres writes its PID file a moment after pg_ctl returns: a missing one is not a death before this.
PID_FILE_GRACE_S = 5.0
# Unix socket paths are limited to ~107 bytes.
MAX_SOCKET_DIR = 80


def newest_bin() -> Path | None:
    """Debian's newest ``/usr/lib/postgresql/<major>/bin``, else the folder of ``pg_ctl`` on PATH."""
    majors = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: _version_key(Path(p).parent.name))
    for candidate in reversed(majors):
        if Path(candidate, "initdb").is_file():
            return Path(candidate)
    on_path = shutil.which("pg_ctl")
    return Path(on_path).resolve().parent if on_path and shutil.which("initdb") else None


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else -1 for part in name.split("."))


def as_postgres(argv: list[str]) -> list[str]:
    """Run as the postgres user when we are root (initdb and postgres refuse root)."""
    return ["runuser", "-u", USER, "--", *argv] if is_root() else argv


def server_options(port: int, socket_dir: Path) -> str:
    """``pg_ctl -o``: loopback only, our port and socket folder, no fsync (test data)."""
    return f"-c listen_addresses={HOST} -p {port} -k {socket_dir} -c fsync=off -c full_page_writes=off"


def socket_dir(base: Path, checkout_hash: str) -> Path:
    """``<base>/run``, or a short folder under /tmp when that path is too long for a Unix socket."""
    preferred = base / "run"
    return preferred if len(str(preferred)) <= MAX_SOCKET_DIR else Path(f"/tmp/naia-pg-{checkout_hash}")


class Postgres(Service):
    name = "postgres"
    log_name = "postgres.log"

    @property
    def port(self) -> int:
        return self.layout.port(PORT)

    @property
    def checkout_hash(self) -> str:
        return hashlib.sha256(str(self.layout.home.parent).encode()).hexdigest()[:12]

    def base(self) -> Path:
        """Where the cluster lives: ``.services/postgres``, or where ``location`` says (see ``prepare``)."""
        location = self.folder / "location"
        return Path(location.read_text().strip()) if location.is_file() else self.folder

    @property
    def data_dir(self) -> Path:
        return self.base() / "data"

    @property
    def log_file(self) -> Path:
        return self.base() / "log" / self.log_name

    @property
    def socket_dir(self) -> Path:
        return socket_dir(self.base(), self.checkout_hash)

    def ports(self) -> list[int]:
        return [self.port]

    def env(self) -> dict[str, str]:
        return {"NAIA_PG_DSN": f"postgresql://{USER}@{HOST}:{self.port}/{DATABASE}"}

    def where(self) -> str:
        return f"postgresql://{USER}@{HOST}:{self.port}/{DATABASE} data={self.data_dir}"

    def data(self) -> list[Path]:
        return [self.data_dir]

    def bin(self) -> Path:
        found = newest_bin()
        if found is None:
            raise ServiceError("postgres: PostgreSQL is not installed ('up' installs it from Debian)")
        return found

    def pid(self) -> int | None:
        return owned_pid(self.data_dir / "postmaster.pid", str(self.data_dir))

    def running(self, elapsed: float) -> bool:
        return elapsed < PID_FILE_GRACE_S or self.pid() is not None

    def prepare(self) -> None:
        if newest_bin() is None:
            apt_install("postgresql")
        if is_root():
            self._prepare_user_and_location()
        base = self.base()
        for folder in (self.data_dir, base / "log", self.socket_dir):
            folder.mkdir(parents=True, exist_ok=True)
            if is_root():
                shutil.chown(folder, USER, USER)
        self.data_dir.chmod(0o700)
        if not (self.data_dir / "PG_VERSION").is_file():
            log.info("postgres: initdb into %s", self.data_dir)
            argv = [
                str(self.bin() / "initdb"), "-D", str(self.data_dir), "-U", USER, "--auth=trust", "-E", "UTF8",
                "--no-locale", "--no-sync",
            ]  # fmt: skip
            run_logged(self.name, "initdb", as_postgres(argv), base / "log" / "initdb.log", cwd="/")

    def _prepare_user_and_location(self) -> None:
        try:
            pwd.getpwnam(USER)
        except KeyError:
            argv = ["useradd", "--system", "--home-dir", "/var/lib/postgresql", "--shell", "/bin/bash", USER]
            subprocess.run(argv, check=True, capture_output=True)
        self.folder.mkdir(parents=True, exist_ok=True)
        location = self.folder / "location"
        if location.is_file():
            return
        reachable = subprocess.run(["runuser", "-u", USER, "--", "test", "-x", str(self.folder)], check=False)
        if reachable.returncode != 0:
            # The postgres user cannot reach the checkout: keep the cluster in a per-checkout folder it can use.
            location.write_text(f"/var/tmp/naia-services-{self.checkout_hash}/postgres\n")

    def command(self) -> list[str]:
        # -W: do not wait here; readiness is awaited (with the log's tail on a timeout) like every other server.
        pg_ctl = str(self.bin() / "pg_ctl")
        options = server_options(self.port, self.socket_dir)
        return as_postgres([pg_ctl, "-D", str(self.data_dir), "-l", str(self.log_file), "-W", "-o", options, "start"])

    def start(self) -> None:
        rotate(self.log_file)
        done = subprocess.run(self.command(), cwd="/", stdin=subprocess.DEVNULL, capture_output=True, check=False)
        if done.returncode != 0:
            raise ServiceError(f"postgres: pg_ctl start failed (log: {self.log_file})\n{log_tail([self.log_file])}")

    def ready(self) -> bool:
        argv = [str(self.bin() / "pg_isready"), "-q", "-h", HOST, "-p", str(self.port), "-t", "2"]
        return subprocess.run(argv, check=False).returncode == 0

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` (psql variable ``db`` = our database name) and return its unaligned output."""
        argv = [
            str(self.bin() / "psql"), "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-v", f"db={DATABASE}",
            "-h", HOST, "-p", str(self.port), "-U", USER, "-d", database,
        ]  # fmt: skip
        done = subprocess.run(argv, input=sql, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ServiceError(f"postgres: psql failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def after_ready(self) -> None:
        if self.psql("select 1 from pg_database where datname = :'db'") != "1":
            log.info("postgres: creating database %s", DATABASE)
            self.psql('create database :"db"')

    def stop(self) -> None:
        pid = self.pid()
        if pid is None:
            log.info("postgres: not running")
            return
        log.info("postgres: stopping (pid %d)", pid)
        for mode in ("fast", "immediate"):
            argv = as_postgres([str(self.bin() / "pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "-t", "30"])
            if subprocess.run([*argv, "stop"], cwd="/", capture_output=True, check=False).returncode == 0:
                break
            log.info("postgres: %s shutdown did not finish", mode)
        else:
            stop_pid(self.name, pid, 5)
        log.info("postgres: stopped")

    def status(self) -> Status:
        if newest_bin() is None:
            return Status(self.name, "stopped", note="PostgreSQL is not installed yet; 'up' installs it")
        return super().status()
