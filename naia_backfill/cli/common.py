"""What every command shares: consoles, the two error kinds (bad input exits 2, a failure 1), the
Dagster home, UTC day options, and loading point sets with a preflight check of the source."""

from __future__ import annotations

import datetime as dt
import os
import shutil
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
