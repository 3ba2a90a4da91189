"""`naia-backfill`: list, plan and run point-set backfills; benchmarks and simulators.

A thin front end: it validates input (bad input exits 2 before anything is written), then runs the same
Dagster definitions in-process against the ``$DAGSTER_HOME`` instance, so `dagster dev` shows every run.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from naia_backfill.errors import NaiaError, PointSetError, UnknownPointsError
from naia_backfill.settings import PointSet, extra_locations, load_point_set, load_point_sets

console = Console(stderr=True)
out = Console()


class BadInput(click.ClickException):
    """Input the user must fix; exit code 2, nothing written."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        console.print(f"[bold red]error:[/] {escape(self.message)}", highlight=False, soft_wrap=True)


class Failed(click.ClickException):
    exit_code = 1

    def show(self, file: Any = None) -> None:
        console.print(f"[bold red]failed:[/] {escape(self.message)}", highlight=False, soft_wrap=True)


def ensure_dagster_home() -> Path:
    """``$DAGSTER_HOME``, or ./.dagster (with the project's dagster.yaml copied in) when unset."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        path = Path.cwd() / ".dagster"
        path.mkdir(exist_ok=True)
        if (Path.cwd() / "dagster.yaml").is_file() and not (path / "dagster.yaml").exists():
            shutil.copyfile(Path.cwd() / "dagster.yaml", path / "dagster.yaml")
        os.environ["DAGSTER_HOME"] = str(path)
        return path
    path = Path(home).expanduser()
    if not path.is_dir():
        raise BadInput(f"DAGSTER_HOME={home} is not a folder; create it (mkdir -p {home}) or unset it")
    return path


def parse_day(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise BadInput(f"{option} {value!r} is not a date: use YYYY-MM-DD (UTC)") from None


def day_range(ps: PointSet, start: str | None, end: str | None) -> tuple[dt.date, dt.date]:
    """Validated inclusive UTC day range inside the point set's history and before today."""
    from naia_backfill.lib.partitions import last_complete_day

    first = parse_day(start, "--start") or ps.start_date
    if first > last_complete_day():
        raise BadInput(f"--start {first} is not a complete UTC day yet; the last complete day is {last_complete_day()}")
    last_allowed = min(last_complete_day(), ps.end_date) if ps.end_date else last_complete_day()
    last = parse_day(end, "--end") or last_allowed
    if first > last:
        raise BadInput(f"--start {first} is after --end {last}")
    if first < ps.start_date:
        raise BadInput(f"--start {first} is before the start_date {ps.start_date} of point set {ps.name!r}")
    if ps.end_date and last > ps.end_date:
        raise BadInput(f"--end {last} is after the end_date {ps.end_date} of point set {ps.name!r}")
    if last > last_complete_day():
        raise BadInput(f"--end {last} is not a complete UTC day yet; the last complete day is {last_complete_day()}")
    return first, last


def days_between(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


class Ctx:
    def __init__(self, extra: tuple[str, ...]) -> None:
        self.extra = [*extra_locations(), *extra]

    def point_sets(self) -> dict[str, PointSet]:
        try:
            return load_point_sets(self.extra)
        except PointSetError as e:
            raise BadInput(str(e)) from None

    def one(self, name_or_file: str) -> tuple[dict[str, PointSet], PointSet]:
        sets = self.point_sets()
        if Path(name_or_file).is_file():
            try:
                ps = load_point_set(name_or_file)
            except PointSetError as e:
                raise BadInput(str(e)) from None
            if ps.name in sets and sets[ps.name].path != ps.path:
                raise BadInput(f"{name_or_file}: point set name {ps.name!r} is already used by {sets[ps.name].path}")
            sets[ps.name] = ps
            return sets, ps
        if name_or_file not in sets:
            known = ", ".join(sorted(sets)) or "none"
            raise BadInput(f"no point set named {name_or_file!r} (known: {known}) and no such file")
        return sets, sets[name_or_file]


def source_credentials(ps: PointSet) -> Any:
    """Credentials for a preflight check, from the environment variables the point set names."""
    from naia_backfill.connectors import Credentials

    names = ps.secret_env()
    missing = [env for env in names.values() if not os.environ.get(env)]
    if missing:
        raise BadInput(f"point set {ps.name!r} needs the environment variable(s) {', '.join(missing)}")
    return Credentials(**{field: os.environ[env] for field, env in names.items()})


def preflight(ps: PointSet) -> tuple[list[str], Any]:
    """Resolve the points at the source (unknown points are bad input) and estimate a day."""
    from naia_backfill.connectors import build_source, resolve_points

    try:
        with build_source(ps, source_credentials(ps)) as source:
            points = resolve_points(ps, source)
            return points, source.estimate(len(points), 1)
    except (UnknownPointsError, PointSetError) as e:
        raise BadInput(str(e)) from None
    except NaiaError as e:
        raise Failed(str(e)) from None


class _Group(click.Group):
    """Adds the commands defined in other modules on first use (those modules import this one)."""

    extra_modules = ("naia_backfill.control_cli", "naia_backfill.validation_cli")
    _loaded = False

    def _load(self) -> None:
        if not self._loaded:
            import importlib

            self._loaded = True
            for module in self.extra_modules:
                for command in importlib.import_module(module).COMMANDS:
                    self.add_command(command)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self._load()
        return super().get_command(ctx, cmd_name)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--point-sets", "extra", multiple=True, type=click.Path(), metavar="PATH",
              help="Extra point-set file or folder (repeatable; also $NAIA_POINT_SETS).")
@click.pass_context
def cli(ctx: click.Context, extra: tuple[str, ...]) -> None:
    """Backfill industrial and IoT time series, day by day, through Dagster."""
    ctx.obj = Ctx(extra)


@cli.command("list")
@click.pass_obj
def list_cmd(obj: Ctx) -> None:
    """Point sets with their source, sinks and partitions done/total."""
    import dagster as dg

    from naia_backfill.lib.partitions import daily_partitions

    sets = obj.point_sets()
    ensure_dagster_home()
    instance = dg.DagsterInstance.get()
    table = Table("point set", "source", "points", "sinks", "start", "done/total", title="naia_backfill point sets")
    for ps in sets.values():
        keys = set(daily_partitions(ps).get_partition_keys())
        done = len(instance.get_materialized_partitions(dg.AssetKey(ps.name)) & keys)
        spec = ps.points
        points = ", ".join(spec.names[:3]) + ("…" if len(spec.names) > 3 else "") if spec.names else (
            f"file {spec.file}" if spec.file else f"filter {spec.name_filter}")
        table.add_row(ps.name, ps.source.kind, points, ", ".join(s.kind for s in ps.sinks),
                      ps.start_date.isoformat(), f"{done}/{len(keys)}")
    out.print(table)


@cli.command()
@click.argument("point_set", metavar="NAME|FILE")
@click.option("--start", help="First UTC day (YYYY-MM-DD); default the point set's start_date.")
@click.option("--end", help="Last UTC day, inclusive; default the last complete day.")
@click.pass_obj
def plan(obj: Ctx, point_set: str, start: str | None, end: str | None) -> None:
    """Dry run: what a backfill of these days would do. Changes nothing."""
    import dagster as dg

    from naia_backfill.lib.partitions import contiguous_chunks as chunks

    _, ps = obj.one(point_set)
    first, last = day_range(ps, start, end)
    days = days_between(first, last)
    points, per_day = preflight(ps)
    ensure_dagster_home()
    done = dg.DagsterInstance.get().get_materialized_partitions(dg.AssetKey(ps.name))
    todo = [d for d in days if d.isoformat() not in done]
    table = Table(show_header=False, title=f"plan for {ps.name} ({first} .. {last})")
    table.add_row("days", f"{len(days)} ({len(days) - len(todo)} already materialized, {len(todo)} to run)")
    table.add_row("runs", f"{len(chunks(todo, ps.chunk_days))} of up to {ps.chunk_days} days")
    table.add_row("points", str(len(points)))
    samples = per_day.samples * len(todo) if per_day.samples is not None else None
    requests = per_day.requests * len(todo) if per_day.requests is not None else None
    table.add_row("expected samples", f"{samples:,}" if samples is not None else "unknown for this source")
    table.add_row("expected requests", f"{requests:,}" if requests is not None else "unknown for this source")
    limit = ps.source.rate_limit
    if limit and requests:
        eta = dt.timedelta(seconds=round(requests / limit.per_second))
        table.add_row("ETA at rate limit", f"{eta} ({limit.requests} requests per {limit.per_seconds:g}s)")
    else:
        table.add_row("ETA at rate limit", "no rate limit set" if not limit else "no requests")
    table.add_row("sinks", ", ".join(s.kind for s in ps.sinks))
    out.print(table)


@cli.command()
@click.argument("point_set", metavar="NAME|FILE")
@click.option("--start", help="First UTC day (YYYY-MM-DD); default the point set's start_date.")
@click.option("--end", help="Last UTC day, inclusive; default the last complete day.")
@click.option("--lake", help="Lake root (folder or s3://bucket/prefix); default $NAIA_LAKE_URL or ./data/lake.")
@click.option("--force", is_flag=True, help="Re-run days that are already materialized.")
@click.pass_obj
def run(obj: Ctx, point_set: str, start: str | None, end: str | None, lake: str | None, force: bool) -> None:
    """Materialize days through Dagster in-process, in chunks of the point set's chunk_days."""
    from naia_backfill.runner import run_days

    sets, ps = obj.one(point_set)
    first, last = day_range(ps, start, end)
    if lake and "://" in lake and not lake.startswith(("s3://", "file://")):
        raise BadInput(f"--lake {lake!r}: use a folder, file:///path or s3://bucket/prefix")
    preflight(ps)
    ensure_dagster_home()
    failed = run_days(sets, ps, days_between(first, last), lake=lake, force=force, console=console)
    if failed:
        raise Failed(f"{len(failed)} day(s) failed: {', '.join(failed)}")


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True}, add_help_option=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def consume(args: tuple[str, ...]) -> None:
    """Move the realtime and backfill Kafka topics into QuestDB (offsets committed after QuestDB accepts).
    `consume --help` for options; SIGTERM drains and exits."""
    _passthrough("naia_backfill.consumer")(args)


def _passthrough(module: str) -> Any:
    def call(args: tuple[str, ...]) -> None:
        import importlib

        sys.exit(importlib.import_module(module).main(list(args)))

    return call


BENCHMARKS = {
    "synthetic": "naia_backfill.dev.benchmarks.synthetic_parquet",
    "pi-parse": "naia_backfill.dev.benchmarks.pi_parse",
    "pi-end-to-end": "naia_backfill.dev.benchmarks.pi_end_to_end",
    "streaming": "naia_backfill.dev.benchmarks.streaming",
}


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True}, add_help_option=False)
@click.argument("name", type=click.Choice(sorted(BENCHMARKS)))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def bench(name: str, args: tuple[str, ...]) -> None:
    """Run a benchmark; prints throughput, peak memory and the command. `bench NAME --help` for options."""
    _passthrough(BENCHMARKS[name])(args)


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True}, add_help_option=False)
@click.argument("name", type=click.Choice(["pi-web-api"]))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def simulate(name: str, args: tuple[str, ...]) -> None:
    """Serve a source simulator on 127.0.0.1 (for tests and demos). `simulate pi-web-api --help`."""
    _passthrough("naia_backfill.dev.simulators.pi_web_api.simulator")(args)


def main() -> None:
    cli(prog_name="naia-backfill")


if __name__ == "__main__":
    main()
