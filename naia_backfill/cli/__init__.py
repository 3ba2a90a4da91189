"""`naia-backfill`: the command-line front end. One click group; every command is a click command.

A thin front end: it validates input (bad input exits 2 before anything is written), then runs the same
Dagster definitions in-process against the ``$DAGSTER_HOME`` instance (``list``, ``plan``, ``run``,
``validate``), talks to a running webserver (``backfill``, ``status``, ``cancel``, ``retry``), runs the
Kafka -> QuestDB consumer (``consume``), or the development wing's tools (``simulate``, ``bench``,
``services``), which are imported only when used.
"""

from __future__ import annotations

import importlib

import click

from naia_backfill.cli.backfill import list_cmd, plan, run
from naia_backfill.cli.common import Ctx
from naia_backfill.cli.consume import consume
from naia_backfill.cli.remote import backfill_cmd, cancel_cmd, retry_cmd, status_cmd
from naia_backfill.cli.repair import repair
from naia_backfill.cli.validate import validate_cmd

#: Commands of the development wing, by import path: the product never imports ``naia_backfill.dev``.
DEV_COMMANDS = {
    "simulate": "naia_backfill.dev.simulators.cli:simulate",
    "bench": "naia_backfill.dev.benchmarks.cli:bench",
    "services": "naia_backfill.dev.services.cli:services",
}


class _Group(click.Group):
    """The main group; the development commands load on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *DEV_COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in DEV_COMMANDS:
            module, _, name = DEV_COMMANDS[cmd_name].partition(":")
            return getattr(importlib.import_module(module), name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--point-sets", "extra", multiple=True, type=click.Path(), metavar="PATH",
              help="Extra point-set file or folder (repeatable; also $NAIA_POINT_SETS).")
@click.pass_context
def cli(ctx: click.Context, extra: tuple[str, ...]) -> None:
    """Backfill industrial and IoT time series, day by day, through Dagster."""
    ctx.obj = Ctx(extra)


for command in (list_cmd, plan, run, repair, validate_cmd, backfill_cmd, status_cmd, cancel_cmd, retry_cmd, consume):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="naia-backfill")
