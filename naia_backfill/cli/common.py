"""What every command shares: consoles, the two error kinds (bad input exits 2, a failure 1), the
Dagster home, UTC day options, and loading point sets with a preflight check of the source."""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import shutil
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from naia_backfill.errors import (
    CredentialsError,
    LakeError,
    NaiaError,
    NoMatchingPointsError,
    PointSetError,
    UnknownPointsError,
)
from naia_backfill.settings import PointSet, extra_locations, load_point_set, load_point_sets
from naia_backfill.settings.loading import expand_sites, share_rate_limits

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


#: The instance settings a new ./.dagster gets when the current folder has no dagster.yaml of its own.
DEFAULT_INSTANCE = Path(__file__).with_name("dagster_instance.yaml")


def ensure_dagster_home() -> Path:
    """``$DAGSTER_HOME``, or ./.dagster when unset (with ./dagster.yaml, else the default instance settings),
    its storage created and migrated once, under a lock, before any run can race on it."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        path = Path.cwd() / ".dagster"
        path.mkdir(exist_ok=True)
        settings = Path.cwd() / "dagster.yaml"
        if not (path / "dagster.yaml").exists():
            shutil.copyfile(settings if settings.is_file() else DEFAULT_INSTANCE, path / "dagster.yaml")
        os.environ["DAGSTER_HOME"] = str(path)
    else:
        path = Path(home).expanduser()
        if not path.is_dir():
            raise BadInput(f"DAGSTER_HOME={home} is not a folder; create it (mkdir -p {home}) or unset it")
    initialise_instance(path)
    return path


def initialise_instance(home: Path) -> None:
    """Create (or migrate) the instance's storage while holding an exclusive lock in ``home``: two commands
    started together on a fresh ``DAGSTER_HOME`` would otherwise both create the SQLite schema and leave it
    with two Alembic heads."""
    import dagster as dg

    with open(home / ".naia-instance.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with dg.DagsterInstance.get() as instance:
                instance.get_runs(limit=1)
                instance.get_asset_keys()
                if instance.schedule_storage is not None:
                    instance.all_instigator_state()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def parse_day_option(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise BadInput(f"{option} {value!r} is not a date: use YYYY-MM-DD (UTC)") from None


def day_range(ps: PointSet, start: str | None, end: str | None) -> tuple[dt.date, dt.date]:
    """Validated inclusive UTC day range inside the point set's history and before today."""
    from naia_backfill.lib.partitions import last_complete_day

    first = parse_day_option(start, "--start") or ps.start_date
    if first > last_complete_day():
        raise BadInput(f"--start {first} is not a complete UTC day yet; the last complete day is {last_complete_day()}")
    last_allowed = min(last_complete_day(), ps.end_date) if ps.end_date else last_complete_day()
    last = parse_day_option(end, "--end") or last_allowed
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
            if getattr(ps.source, "sites", None) is not None:  # one point set per site: say which
                names = ", ".join(p.name for p in expand_sites(ps))
                raise BadInput(f"{name_or_file} makes one point set per site ({names}): run them by name with "
                               f"--point-sets {name_or_file}")
            if ps.name in sets and sets[ps.name].path != ps.path:
                raise BadInput(f"{name_or_file}: point set name {ps.name!r} is already used by {sets[ps.name].path}")
            sets[ps.name] = ps
            sets = share_rate_limits(sets)
            return sets, sets[ps.name]
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


def preflight(ps: PointSet, lake_url: str | None = None, *, check_writable: bool = True) -> tuple[list[str], Any]:
    """Before anything runs: the lake is usable (when the point set writes one) and the points resolve at the
    source (unknown points, a filter matching nothing, refused credentials are bad input). Returns the points
    and the estimate of one day."""
    from naia_backfill.connectors import build_source, resolve_points

    from naia_backfill.sinks.preflight import check_sinks

    try:
        check_sinks(ps, lake_url)
        with build_source(ps, source_credentials(ps)) as source:
            points = resolve_points(ps, source)
            estimate = source.estimate(len(points), 1)
    except (UnknownPointsError, NoMatchingPointsError, PointSetError, CredentialsError) as e:
        raise BadInput(str(e)) from None
    except NaiaError as e:
        raise Failed(str(e)) from None
    if ps.sink("parquet") is not None:
        check_lake(lake_url, writable=check_writable)
    return points, estimate


def lake_option_url(value: str | None) -> str | None:
    """A ``--lake`` value, checked for its form."""
    if value and "://" in value and not value.startswith(("s3://", "file://")):
        raise BadInput(f"--lake {value!r}: use a folder, file:///path or s3://bucket/prefix")
    return value


def check_lake(url: str | None, *, writable: bool = True) -> Any:
    """The lake at ``url`` (default $NAIA_LAKE_URL or ./data/lake), proven usable before any run starts: a
    folder that can be created and written, or a bucket that answers with the configured credentials."""
    from naia_backfill.lib.resources import LakeResource

    try:
        lake = LakeResource(url=url).lake()
        lake.check(writable=writable)
    except (LakeError, ValueError) as e:
        raise BadInput(f"the lake cannot be used: {e}; nothing was written") from None
    return lake
