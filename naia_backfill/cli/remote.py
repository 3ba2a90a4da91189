"""`naia-backfill backfill|status|cancel|retry`: backfills on a running Dagster webserver (`dagster dev` or a
deployment), through :mod:`naia_backfill.cli.graphql`."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich import box
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from naia_backfill.cli import common as base
from naia_backfill.cli.graphql import (
    DEFAULT_URL,
    BackfillStatus,
    ControlError,
    DagsterControl,
    backfill_status,
    cancel_backfill,
    launch_backfill,
    list_backfills,
    retry_backfill,
)

T = TypeVar("T")
POLL_ERRORS_TOLERATED = 5  # consecutive failed polls while following before giving up

url_option = click.option(
    "--url", envvar="NAIA_DAGSTER_URL", default=DEFAULT_URL, show_default=True, metavar="URL",
    help="Dagster webserver (also $NAIA_DAGSTER_URL).",
)
interval_option = click.option("--interval", type=click.FloatRange(min=0.1), default=2.0, show_default=True,
                               help="Seconds between status polls with --follow.")


def _call(fn: Callable[..., T], *args: Any) -> T:
    try:
        return fn(*args)
    except ControlError as e:
        raise (base.BadInput if e.bad_input else base.Failed)(str(e)) from None


def _eta(seconds: float | None) -> str:
    return str(dt.timedelta(seconds=round(seconds))) if seconds is not None else "-"


def _rate(st: BackfillStatus) -> str:
    return f"{st.samples_per_s:,.0f}" if st.samples_per_s is not None else "-"


def _when(t: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S UTC") -> str:
    return t.strftime(fmt) if t else "-"


def _failed(st: BackfillStatus, shown: int = 10) -> str:
    days = ", ".join(st.failed_days[:shown]) + (f" and {st.days_failed - shown} more" if st.days_failed > shown else "")
    return f"{st.days_failed}: {days}" if st.failed_days else "0"


def _detail(st: BackfillStatus) -> Table:
    table = Table(show_header=False, title=f"backfill {st.id}")
    table.add_row("point set", st.point_set)
    table.add_row("status", st.status)
    table.add_row("days done", f"{st.days_done}/{st.days_total} ({st.percent_done:.0f}%)")
    table.add_row("in progress", str(st.days_in_progress))
    table.add_row("failed days", _failed(st))
    table.add_row("samples", f"{st.samples:,}")
    table.add_row("samples/s", _rate(st))
    table.add_row("ETA", _eta(st.eta_seconds))
    table.add_row("created", _when(st.created))
    table.add_row("ended", _when(st.ended))
    table.add_row("runs", str(len(st.runs)))
    if st.error:
        table.add_row("error", escape(st.error))
    return table


def _listing(backfills: list[BackfillStatus], url: str) -> Table:
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), pad_edge=False, title=f"backfills at {url}, newest first")
    for name in ("id", "point set", "status", "days done", "failed", "samples/s", "ETA", "created UTC"):
        table.add_column(name, no_wrap=name in ("id", "status", "created UTC"))
    for st in backfills:
        table.add_row(st.id, st.point_set, st.status, f"{st.days_done}/{st.days_total} {st.percent_done:.0f}%",
                      str(st.days_failed), _rate(st), _eta(st.eta_seconds), _when(st.created, "%m-%d %H:%M"))
    return table


def follow(url: str, backfill_id: str, interval: float) -> BackfillStatus:
    """Show a live progress bar until the backfill ends; return its final status."""
    columns = (TextColumn("[bold]{task.description}"), BarColumn(bar_width=24), MofNCompleteColumn(),
               TextColumn("days, {task.fields[failed]} failed"), TextColumn("{task.fields[rate]} samples/s"),
               TextColumn("ETA {task.fields[eta]}"), TimeElapsedColumn(), TextColumn("{task.fields[state]}"))
    with DagsterControl(url) as control:
        st = _call(control.status, backfill_id)
        with Progress(*columns, console=base.console, transient=False) as progress:
            task = progress.add_task(st.point_set, total=st.days_total or None, failed=0, rate="-",
                                     eta="-", state=st.status)
            errors = 0
            while True:
                progress.update(task, total=st.days_total or None, completed=st.days_done, failed=st.days_failed,
                                rate=_rate(st), eta=_eta(st.eta_seconds), state=st.status)
                if st.finished:
                    break
                time.sleep(interval)
                try:
                    st = control.status(backfill_id)
                    errors = 0
                except ControlError as e:
                    errors += 1
                    if e.bad_input or errors >= POLL_ERRORS_TOLERATED:
                        raise (base.BadInput if e.bad_input else base.Failed)(str(e)) from None
                    progress.console.print(f"[yellow]status poll failed, retrying:[/] {escape(str(e))}")
    return st


def _finish(st: BackfillStatus) -> None:
    """Exit 0 when every day is done, else 1 naming the failed days."""
    if st.succeeded:
        base.console.print(f"backfill {st.id}: all {st.days_total} day(s) of {st.point_set} done, "
                           f"{st.samples:,} samples ({_rate(st)} samples/s)")
        return
    reason = f"backfill {st.id} ended {st.status} with {st.days_done} of {st.days_total} day(s) done"
    if st.failed_days:
        reason += f"; {st.days_failed} day(s) failed: {', '.join(st.failed_days)} (`retry {st.id}` re-runs them)"
    if st.error:
        reason += f"; {st.error}"
    raise base.Failed(reason)


@click.command("backfill")
@click.argument("point_set", metavar="NAME|FILE")
@click.option("--start", help="First UTC day (YYYY-MM-DD); default the point set's start_date.")
@click.option("--end", help="Last UTC day, inclusive; default the last complete day.")
@click.option("--follow", "follow_", is_flag=True, help="Then show its progress until it ends.")
@url_option
@interval_option
@click.pass_context
def backfill_cmd(ctx: click.Context, point_set: str, start: str | None, end: str | None, follow_: bool, url: str,
                 interval: float) -> None:
    """Launch a backfill of days on the Dagster webserver and print its id; the daemon runs it in chunks."""
    obj = ctx.find_object(base.Ctx) or base.Ctx(())
    _, ps = obj.one(point_set)
    first, last = base.day_range(ps, start, end)
    backfill_id = _call(launch_backfill, url, ps.name, first, last)
    click.echo(backfill_id)
    base.console.print(f"launched backfill {backfill_id} of {ps.name} ({first} .. {last}, "
                       f"runs of up to {ps.chunk_days} days) at {url}")
    if follow_:
        _finish(follow(url, backfill_id, interval))


@click.command("status")
@click.argument("backfill_id", metavar="[ID]", required=False)
@click.option("--follow", "follow_", is_flag=True, help="Live progress until the backfill ends (exit 1 on failures).")
@click.option("--limit", type=click.IntRange(min=1), default=10, show_default=True, help="Backfills listed without ID.")
@url_option
@interval_option
def status_cmd(backfill_id: str | None, follow_: bool, limit: int, url: str, interval: float) -> None:
    """A backfill's days done, failed days, samples/s and ETA; without ID, the recent backfills."""
    if backfill_id is None:
        if follow_:
            raise base.BadInput("--follow needs a backfill ID (`status` lists them)")
        base.out.print(_listing(_call(list_backfills, url, limit), url))
        return
    if follow_:
        _finish(follow(url, backfill_id, interval))
        return
    base.out.print(_detail(_call(backfill_status, url, backfill_id)))


@click.command("cancel")
@click.argument("backfill_id", metavar="ID")
@url_option
def cancel_cmd(backfill_id: str, url: str) -> None:
    """Cancel an unfinished backfill: no new runs, its queued and running runs are canceled."""
    st = _call(cancel_backfill, url, backfill_id)
    base.console.print(f"backfill {backfill_id} canceling ({st.days_done} of {st.days_total} day(s) done so far)")


@click.command("retry")
@click.argument("backfill_id", metavar="ID")
@click.option("--follow", "follow_", is_flag=True, help="Then show the new backfill's progress until it ends.")
@url_option
@interval_option
def retry_cmd(backfill_id: str, follow_: bool, url: str, interval: float) -> None:
    """Launch a new backfill of the days an ended backfill did not materialize; print its id."""
    new_id = _call(retry_backfill, url, backfill_id)
    click.echo(new_id)
    base.console.print(f"retrying the failed days of backfill {backfill_id} as backfill {new_id}")
    if follow_:
        _finish(follow(url, new_id, interval))
