"""``naia-backfill services up|down|status|env|reset [SERVICE...]``: the development servers on 127.0.0.1."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

import click

from naia_backfill.dev.pgdemo import pg_demo
from naia_backfill.dev.services import manager
from naia_backfill.dev.services.core import ServiceError, log

T = TypeVar("T")
SERVICE_ARGS = click.argument("names", nargs=-1, metavar="[SERVICE...]", type=click.Choice(manager.NAMES))

HELP = f"""Real Kafka, QuestDB, S3 (SeaweedFS), PostgreSQL and MongoDB-protocol (FerretDB) servers on 127.0.0.1.

SERVICE is one of: {" ".join(manager.NAMES)} (default: all of them). Everything is fetched, built and kept
under .services/ in the repository (git-ignored); Maven also uses ~/.m2 and Go its module cache.

\b
Environment:
  NAIA_SERVICES_TIMEOUT      seconds each server may take to answer after it starts (default 120)
  NAIA_SERVICES_DIR          state folder instead of <repo>/.services
  NAIA_SERVICES_PORT_OFFSET  added to every port (a second set beside the shared one)
  NAIA_JAVA, NAIA_WEED       the java (>= 17) and weed executables to use
"""


class _ToStderr(logging.Handler):
    """Progress lines on stderr (``env`` output stays sourceable), looked up per line as click's runner swaps it."""

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(f"[services] {record.getMessage()}", err=True)


def _show_progress() -> None:
    if not any(isinstance(handler, _ToStderr) for handler in log.handlers):
        log.addHandler(_ToStderr())
        log.setLevel(logging.INFO)
        log.propagate = False


def _run(action: Callable[[list[str] | None], T], names: Sequence[str]) -> T:
    try:
        return action(list(names) or None)
    except ServiceError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group("services", help=HELP, context_settings={"help_option_names": ["-h", "--help"]})
def services() -> None:
    _show_progress()


@services.command()
@SERVICE_ARGS
def up(names: tuple[str, ...]) -> None:
    """Fetch or build (first time), start, wait until ready, write .services/env."""
    _run(manager.up, names)


@services.command()
@SERVICE_ARGS
def down(names: tuple[str, ...]) -> None:
    """Stop by PID: graceful first, SIGKILL after a timeout."""
    _run(manager.down, names)


@services.command()
@SERVICE_ARGS
def status(names: tuple[str, ...]) -> None:
    """Print each service's state (exit status 1 if any is not running)."""
    states = _run(manager.status, names)
    for state in states:
        click.echo(state.line())
    if any(state.state != "running" for state in states):
        sys.exit(1)


@services.command()
@SERVICE_ARGS
def env(names: tuple[str, ...]) -> None:
    """Print sourceable `export` lines."""
    click.echo(manager.render_env(_run(manager.environment, names)), nl=False)


@services.command()
@SERVICE_ARGS
def reset(names: tuple[str, ...]) -> None:
    """Stop and delete the services' data (downloads and builds are kept)."""
    _run(manager.reset, names)


services.add_command(pg_demo)
