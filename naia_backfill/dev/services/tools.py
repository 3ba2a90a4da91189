"""The programs the servers are fetched and run with: Debian packages, a Java >= 17, Maven."""

from __future__ import annotations

import functools
import glob
import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from naia_backfill.dev.services.core import ServiceError, log, log_tail

MIN_JAVA = 17
_SPEC_VERSION = re.compile(r"^\s*java\.specification\.version = (\S+)", re.MULTILINE)


def run_logged(service: str, what: str, argv: Sequence[str], log_file: Path, cwd: Path | str | None = None) -> None:
    """Run a preparation step with its output in ``log_file``; a failure raises with the log's tail."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("wb") as out:
        try:
            done = subprocess.run(
                list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, check=False, cwd=cwd
            )
        except OSError as exc:
            raise ServiceError(f"{service}: {what} could not run {argv[0]}: {exc}") from exc
    if done.returncode != 0:
        raise ServiceError(f"{service}: {what} failed (log: {log_file})\n{log_tail([log_file])}")


def is_root() -> bool:
    return os.geteuid() == 0


def apt_install(*packages: str) -> None:
    """Install Debian packages (root only: anyone else is told what to install)."""
    if not is_root():
        raise ServiceError(f"missing {' '.join(packages)}; install it (apt-get install -y {' '.join(packages)})")
    log.info("installing %s from Debian (apt-get)", " ".join(packages))
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
    ):
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ServiceError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-4000:]}")


def java_major(settings_output: str) -> int | None:
    """The major Java version in ``java -XshowSettings:properties -version`` output ("1.8" counts as 8)."""
    found = _SPEC_VERSION.search(settings_output)
    if found is None:
        return None
    parts = found.group(1).split(".")
    number = parts[1] if parts[0] == "1" and len(parts) > 1 else parts[0]
    return int(number) if number.isdigit() else None


def java_candidates(environ: Mapping[str, str]) -> list[str]:
    """Where to look for java, in order: NAIA_JAVA, JAVA_HOME, PATH, /usr/lib/jvm/*."""
    found = [environ.get("NAIA_JAVA", "")]
    if environ.get("JAVA_HOME"):
        found.append(str(Path(environ["JAVA_HOME"]) / "bin" / "java"))
    found.append(shutil.which("java") or "")
    found.extend(sorted(glob.glob("/usr/lib/jvm/*/bin/java")))
    return [c for c in found if c]


@functools.cache
def find_java() -> str:
    """The first java of version 17 or newer (Kafka 4 and QuestDB 9 need it)."""
    for candidate in java_candidates(os.environ):
        if not os.access(candidate, os.X_OK):
            continue
        try:
            shown = subprocess.run(
                [candidate, "-XshowSettings:properties", "-version"],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        major = java_major(shown.stderr + shown.stdout)
        if major is not None and major >= MIN_JAVA:
            return candidate
    raise ServiceError(
        "Kafka 4 and QuestDB 9 need Java 17 or newer; none found "
        "(set NAIA_JAVA, or apt-get install openjdk-17-jre-headless)"
    )


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def maven_fetch(service: str, pom: Path, target: Path) -> None:
    """Resolve the pom's runtime dependencies into ``target`` once; again whenever the pom changes."""
    if not pom.is_file():
        raise ServiceError(f"{service}: {pom} is missing (the poms live in the repository's scripts/services/)")
    digest = file_sha256(pom)
    stamp = target / ".pom.sha256"
    if stamp.is_file() and stamp.read_text().strip() == digest:
        return
    if shutil.which("mvn") is None:
        apt_install("maven")
    log.info("%s: resolving %s from Maven Central into %s", service, pom.name, target)
    staging = target.with_name(target.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    argv = [
        "mvn", "-q", "-B", "-f", str(pom), "dependency:copy-dependencies", "-DincludeScope=runtime",
        f"-DoutputDirectory={staging}",
    ]  # fmt: skip
    run_logged(service, f"resolving {pom} with Maven", argv, target.parent / "mvn.log")
    (staging / ".pom.sha256").write_text(digest + "\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
