"""A MongoDB-protocol server: FerretDB v1 on SQLite, built once from the Go module proxy.

No registry here carries MongoDB's own server; FerretDB (Apache-2.0) speaks its wire protocol. A plain
``go install`` of it builds a binary that panics at start ("Invalid build/version/version.txt"), so the module
is copied out of the module cache, given its ``version.txt`` and built from there.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import stat
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from naia_backfill.dev.services.base import Service
from naia_backfill.dev.services.core import HOST, ServiceError, log
from naia_backfill.dev.services.tools import run_logged

MODULE = "github.com/FerretDB/FerretDB"
VERSION = "v1.24.2"
PORT = 27018
DEBUG_PORT = 27019
# Go 1.21 and newer download the toolchain a go.mod names (GOTOOLCHAIN=auto, from the Go module proxy).
MIN_GO = (1, 21)


def ferretdb_args(data: Path, state: Path, port: int, debug_port: int) -> list[str]:
    """FerretDB's flags: SQLite files under ``data``, wire protocol and debug handler on 127.0.0.1, no telemetry."""
    return [
        "--handler=sqlite",
        f"--sqlite-url=file:{data}/",
        f"--listen-addr={HOST}:{port}",
        f"--debug-addr={HOST}:{debug_port}",
        f"--state-dir={state}",
        "--telemetry=disable",
    ]


def go_version(text: str) -> tuple[int, int] | None:
    """``(major, minor)`` of ``go env GOVERSION`` output such as ``go1.26.8``."""
    found = re.match(r"go(\d+)\.(\d+)", text.strip())
    return (int(found.group(1)), int(found.group(2))) if found else None


def go_candidates(environ: Mapping[str, str]) -> list[str]:
    """Where Go may be: NAIA_GO, PATH, the go.dev tarball's place, Debian's versioned folders (newest first)."""
    found = [environ.get("NAIA_GO", ""), shutil.which("go") or "", "/usr/local/go/bin/go"]
    found += sorted(glob.glob("/usr/lib/go-*/bin/go"), reverse=True)
    return [c for c in found if c]


def find_go() -> str:
    """A Go of at least 1.21, which fetches the toolchain FerretDB's go.mod asks for (1.24) by itself."""
    for candidate in go_candidates(os.environ):
        if not os.access(candidate, os.X_OK):
            continue
        shown = subprocess.run([candidate, "env", "GOVERSION"], capture_output=True, text=True, check=False)
        version = go_version(shown.stdout)
        if version is not None and version >= MIN_GO:
            return candidate
    raise ServiceError(
        f"mongodb: building FerretDB needs Go >= {MIN_GO[0]}.{MIN_GO[1]} (Debian 12's golang-go is too old): "
        "install it from https://go.dev/dl/ or set NAIA_GO"
    )


def uri(port: int) -> str:
    """The connection string clients use."""
    return f"mongodb://{HOST}:{port}/"


def make_writable(root: Path) -> None:
    """``chmod -R u+w``: the Go module cache is read-only, and so is a copy of it."""
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


def remove_tree(root: Path) -> None:
    if root.exists():
        make_writable(root)
        shutil.rmtree(root)


class MongoDB(Service):
    name = "mongodb"
    log_name = "ferretdb.log"
    grace_s = 15.0

    @property
    def port(self) -> int:
        return self.layout.port(PORT)

    @property
    def debug_port(self) -> int:
        return self.layout.port(DEBUG_PORT)

    @property
    def binary(self) -> Path:
        """The built server, named by version so that a new pin builds again."""
        return self.folder / "bin" / f"ferretdb-{VERSION}"

    def ports(self) -> list[int]:
        return [self.port, self.debug_port]

    def env(self) -> dict[str, str]:
        return {"NAIA_MONGODB_URI": uri(self.port)}

    def where(self) -> str:
        return f"{uri(self.port)} (FerretDB {VERSION}, SQLite, debug :{self.debug_port})"

    def data(self) -> list[Path]:
        return [self.folder / "data", self.folder / "state"]

    def prepare(self) -> None:
        if not self.binary.is_file():
            self.build()
        for folder in self.data():
            folder.mkdir(parents=True, exist_ok=True)

    def build(self) -> None:
        """Download the module through the Go proxy and build ``self.binary`` (minutes the first time)."""
        go = find_go()
        started = time.monotonic()
        log.info("mongodb: building FerretDB %s from the Go module proxy (once; takes minutes)", VERSION)
        self.folder.mkdir(parents=True, exist_ok=True)
        source = self.folder / "build"
        remove_tree(source)
        shutil.copytree(self.module_dir(go), source, symlinks=True)
        make_writable(source)
        (source / "build" / "version" / "version.txt").write_text(VERSION + "\n")
        staging = self.binary.with_name(self.binary.name + ".tmp")
        staging.parent.mkdir(parents=True, exist_ok=True)
        # -buildvcs=false: the copy sits inside this git checkout, whose history is not FerretDB's.
        argv = [go, "build", "-buildvcs=false", "-o", str(staging), "./cmd/ferretdb"]
        run_logged(self.name, "go build of FerretDB", argv, self.folder / "build.log", cwd=source)
        staging.rename(self.binary)
        remove_tree(source)
        log.info("mongodb: built %s in %.0fs", self.binary, time.monotonic() - started)

    def module_dir(self, go: str) -> Path:
        """The FerretDB module's folder in the Go module cache (downloaded if missing)."""
        done = subprocess.run(
            [go, "mod", "download", "-json", f"{MODULE}@{VERSION}"],
            cwd=self.folder, capture_output=True, text=True, check=False,
        )  # fmt: skip
        try:
            found = json.loads(done.stdout)
        except json.JSONDecodeError:
            found = {}
        if done.returncode != 0 or not found.get("Dir"):
            reason = found.get("Error") or done.stderr.strip() or f"exit status {done.returncode}"
            raise ServiceError(f"mongodb: go mod download {MODULE}@{VERSION} failed: {reason}")
        return Path(found["Dir"])

    def command(self) -> list[str]:
        data, state = self.data()
        return [str(self.binary), *ferretdb_args(data, state, self.port, self.debug_port)]

    def ready(self) -> bool:
        """The server answers a MongoDB ``ping``."""
        # Imported here: only this service needs the driver, and loading it costs every other command time.
        from pymongo import MongoClient
        from pymongo.errors import PyMongoError

        client: MongoClient = MongoClient(
            uri(self.port), directConnection=True, serverSelectionTimeoutMS=2000, connectTimeoutMS=2000
        )
        try:
            return client.admin.command("ping").get("ok") == 1
        except PyMongoError:
            return False
        finally:
            client.close()
