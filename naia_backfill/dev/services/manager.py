"""Start, stop, inspect and reset a set of development servers, one start/stop at a time per state folder."""

from __future__ import annotations

import fcntl
import shutil
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from naia_backfill.dev.services.base import Service, Status
from naia_backfill.dev.services.core import Layout, ServiceError, log, require_free_ports
from naia_backfill.dev.services.kafka import Kafka
from naia_backfill.dev.services.mongodb import MongoDB
from naia_backfill.dev.services.postgres import Postgres
from naia_backfill.dev.services.process import wait_ready
from naia_backfill.dev.services.questdb import QuestDB
from naia_backfill.dev.services.s3 import S3

# Order matters for `up`: the JVMs boot while the later services are fetched or built.
SERVICES: dict[str, type[Service]] = {cls.name: cls for cls in (Kafka, QuestDB, S3, Postgres, MongoDB)}
NAMES: tuple[str, ...] = tuple(SERVICES)
LOCK_WAIT_S = 900.0


def select(names: Iterable[str] | None, layout: Layout) -> list[Service]:
    """The named services (every one when ``names`` is empty), in the order given, each once."""
    wanted = list(dict.fromkeys(names or ())) or list(NAMES)
    unknown = [name for name in wanted if name not in SERVICES]
    if unknown:
        raise ServiceError(f"unknown service {', '.join(unknown)} (expected: {' '.join(NAMES)})")
    return [SERVICES[name](layout) for name in wanted]


def render_env(variables: Mapping[str, str]) -> str:
    """Sourceable ``export NAME=value`` lines (the values are addresses and test credentials: no quoting needed)."""
    return "".join(f"export {key}={value}\n" for key, value in variables.items())


def env_file(layout: Layout) -> Path:
    return layout.home / "env"


def write_env(layout: Layout) -> None:
    """Write every service's variables to ``<home>/env`` (replaced atomically: other shells source it)."""
    target = env_file(layout)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(".env.tmp")
    staging.write_text(render_env(environment(None, layout)))
    staging.replace(target)


@contextmanager
def locked(layout: Layout, wait_s: float = LOCK_WAIT_S) -> Iterator[None]:
    """Hold ``<home>/.lock`` (flock, as the former shell script did): parallel sessions may call ``up`` together."""
    layout.home.mkdir(parents=True, exist_ok=True)
    path = layout.home / ".lock"
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another start/stop to finish (%s)", path)
            retrying = Retrying(
                stop=stop_after_delay(wait_s),
                wait=wait_fixed(0.2),
                retry=retry_if_exception_type(BlockingIOError),
            )
            try:
                retrying(fcntl.flock, handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except RetryError:
                raise ServiceError(f"another start/stop holds {path} after {wait_s:.0f}s") from None
        yield


def launch(service: Service) -> float | None:
    """Start the service unless ours already runs; returns when it was started (``time.monotonic``) or None."""
    pid = service.pid()
    if pid is not None:
        log.info("%s: already running (pid %d)", service.name, pid)
        return None
    require_free_ports(service.name, service.ports())
    service.prepare()
    log.info("%s: starting", service.name)
    service.start()
    return time.monotonic()


def await_ready(service: Service, spawned: float | None, timeout: float) -> None:
    """Wait until the service answers; one this call started and that never answers is stopped again."""
    try:
        elapsed = wait_ready(
            service.name, service.ready, service.running, spawned or time.monotonic(), timeout, service.logs()
        )
    except ServiceError:
        if spawned is not None:
            log.info("%s: stopping the server that did not become ready", service.name)
            with suppress(ServiceError):
                service.stop()
        raise
    if spawned is None:
        log.info("%s: answers", service.name)
    else:
        log.info("%s: ready (confirmed %.0fs after start)", service.name, elapsed)
    service.after_ready()


def up(names: Sequence[str] | None = None, layout: Layout | None = None) -> dict[str, str]:
    """Start the services that are not running, wait until all answer, write ``<home>/env``.

    Returns the variables of the named services. Idempotent: running servers are left alone and only probed.
    """
    layout = layout or Layout.from_env()
    services = select(names, layout)
    began = time.monotonic()
    with locked(layout):
        # Start everything first, then wait: the servers boot in parallel.
        spawned = [(service, launch(service)) for service in services]
        for service, started in spawned:
            await_ready(service, started, layout.timeout)
        write_env(layout)
    log.info("services up in %.1fs; environment: source %s", time.monotonic() - began, env_file(layout))
    return {key: value for service in services for key, value in service.env().items()}


def down(names: Sequence[str] | None = None, layout: Layout | None = None) -> None:
    """Stop the services by their PIDs (gracefully first)."""
    layout = layout or Layout.from_env()
    with locked(layout):
        for service in select(names, layout):
            service.stop()


def reset(names: Sequence[str] | None = None, layout: Layout | None = None) -> None:
    """Stop the services and delete their data; downloads and builds are kept."""
    layout = layout or Layout.from_env()
    with locked(layout):
        for service in select(names, layout):
            service.stop()
            for folder in service.data():
                shutil.rmtree(folder, ignore_errors=True)
            log.info("%s: data removed", service.name)


def status(names: Sequence[str] | None = None, layout: Layout | None = None) -> list[Status]:
    """Each service's state: stopped, running and answering, or running but not answering."""
    layout = layout or Layout.from_env()
    return [service.status() for service in select(names, layout)]


def environment(names: Sequence[str] | None = None, layout: Layout | None = None) -> dict[str, str]:
    """The services' variables, without starting anything."""
    layout = layout or Layout.from_env()
    return {key: value for service in select(names, layout) for key, value in service.env().items()}
