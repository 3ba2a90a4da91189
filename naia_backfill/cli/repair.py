"""`naia-backfill repair`: bring the lake and Dagster's record back into agreement for a range of days.

It removes what dead writers left (temporary files, unfinished uploads), then re-runs exactly the days that
are recorded but not in the lake as recorded (deleted, truncated, another lake) and the days that fail an
ERROR-level check (missing, unreadable, duplicated events). Everything else is left alone.
"""

from __future__ import annotations

import datetime as dt

import click

from naia_backfill.cli.common import (
    BadInput,
    Ctx,
    Failed,
    check_lake,
    console,
    day_range,
    days_between,
    ensure_dagster_home,
    lake_option_url,
    preflight,
)


def days_to_repair(instance: object, ps: object, days: list[dt.date], lake: object) -> dict[dt.date, str]:
    """Each day that needs a re-run, with the reason."""
    from naia_backfill.cli.validate import expected_points
    from naia_backfill.core.validation import iter_range
    from naia_backfill.lib import doneness

    _, stale = doneness.audit(instance, ps, days, lake)  # type: ignore[arg-type]
    reasons = dict(stale)
    for report in iter_range(lake, ps, days, expected_points(ps)):  # type: ignore[arg-type]
        if report.status == "fail" and report.day not in reasons:
            reasons[report.day] = "; ".join(f"{c.name}: {c.summary}" for c in report.errors)
    return dict(sorted(reasons.items()))


@click.command()
@click.argument("point_set", metavar="NAME|FILE")
@click.option("--start", help="First UTC day (YYYY-MM-DD); default the point set's start_date.")
@click.option("--end", help="Last UTC day, inclusive; default the last complete day.")
@click.option("--lake", help="Lake root (folder or s3://bucket/prefix); default $NAIA_LAKE_URL or ./data/lake.")
@click.option("--dry-run", is_flag=True, help="Only say which days would be re-run and why.")
@click.pass_obj
def repair(obj: Ctx, point_set: str, start: str | None, end: str | None, lake: str | None, dry_run: bool) -> None:
    """Re-run the days whose lake objects disagree with Dagster's record or fail an ERROR-level check;
    remove temporary files and uploads that dead writers left."""
    import dagster as dg

    from naia_backfill.cli.runner import run_days
    from naia_backfill.sinks import layout

    sets, ps = obj.one(point_set)
    if ps.sink("parquet") is None:
        raise BadInput(f"point set {ps.name!r} writes no Parquet lake (no parquet sink): nothing to repair")
    first, last = day_range(ps, start, end)
    lake_url = lake_option_url(lake)
    preflight(ps, lake_url)
    ensure_dagster_home()
    the_lake = check_lake(lake_url)
    removed = [] if dry_run else the_lake.remove_orphans(layout.point_set_prefix(ps.name))
    for item in removed:
        console.print(f"removed {item} (left by a writer that died)", highlight=False)
    reasons = days_to_repair(dg.DagsterInstance.get(), ps, days_between(first, last), the_lake)
    for day, why in reasons.items():
        console.print(f"{day}: {why}", highlight=False, soft_wrap=True)
    if not reasons:
        console.print(f"{ps.name} {first} .. {last}: the lake agrees with Dagster's record; nothing to repair", soft_wrap=True)
        return
    if dry_run:
        console.print(f"{len(reasons)} day(s) would be re-run")
        return
    failed = run_days(sets, ps, list(reasons), lake=lake_url, force=True, console=console)
    if failed:
        raise Failed(f"{len(failed)} day(s) failed again: {', '.join(failed)}")
    console.print(f"repaired {len(reasons)} day(s)")
