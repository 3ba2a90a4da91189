"""`naia-backfill list|plan|run`: point sets, dry runs, and backfills run in-process against ``$DAGSTER_HOME``."""

from __future__ import annotations

import datetime as dt

import click
from rich.table import Table

from naia_backfill.cli.common import (
    Ctx,
    Failed,
    check_lake,
    console,
    day_range,
    days_between,
    ensure_dagster_home,
    lake_option_url,
    out,
    preflight,
)


@click.command("list")
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


@click.command()
@click.argument("point_set", metavar="NAME|FILE")
@click.option("--start", help="First UTC day (YYYY-MM-DD); default the point set's start_date.")
@click.option("--end", help="Last UTC day, inclusive; default the last complete day.")
@click.option("--lake", help="Lake root (folder or s3://bucket/prefix); default $NAIA_LAKE_URL or ./data/lake.")
@click.pass_obj
def plan(obj: Ctx, point_set: str, start: str | None, end: str | None, lake: str | None) -> None:
    """Dry run: what a backfill of these days would do. Changes nothing."""
    import dagster as dg

    from naia_backfill.cli.common import source_credentials
    from naia_backfill.connectors import build_source
    from naia_backfill.lib import doneness
    from naia_backfill.lib.partitions import contiguous_chunks as chunks

    _, ps = obj.one(point_set)
    first, last = day_range(ps, start, end)
    days = days_between(first, last)
    lake_url = lake_option_url(lake)
    points, per_day = preflight(ps, lake_url, check_writable=False)
    ensure_dagster_home()
    the_lake = check_lake(lake_url, writable=False) if ps.sink("parquet") else None
    done, stale = doneness.audit(dg.DagsterInstance.get(), ps, days, the_lake)
    todo = [d for d in days if d not in done]
    table = Table(show_header=False, title=f"plan for {ps.name} ({first} .. {last})")
    table.add_row("days", f"{len(days)} ({len(done)} already done in this lake, {len(todo)} to run"
                  + (f", {len(stale)} of them recorded but not in the lake as recorded)" if stale else ")"))
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
    with build_source(ps, source_credentials(ps)) as source:  # a source collected forward: what is staged
        for label, text in getattr(source, "describe_days", lambda _days: [])(todo):
            table.add_row(label, text)
    out.print(table)


@click.command()
@click.argument("point_set", metavar="NAME|FILE")
@click.option("--start", help="First UTC day (YYYY-MM-DD); default the point set's start_date.")
@click.option("--end", help="Last UTC day, inclusive; default the last complete day.")
@click.option("--lake", help="Lake root (folder or s3://bucket/prefix); default $NAIA_LAKE_URL or ./data/lake.")
@click.option("--force", is_flag=True, help="Re-run days that are already done.")
@click.pass_obj
def run(obj: Ctx, point_set: str, start: str | None, end: str | None, lake: str | None, force: bool) -> None:
    """Materialize days through Dagster in-process, in chunks of the point set's chunk_days."""
    from naia_backfill.cli.runner import run_days

    sets, ps = obj.one(point_set)
    first, last = day_range(ps, start, end)
    lake_url = lake_option_url(lake)
    preflight(ps, lake_url)
    ensure_dagster_home()
    failed = run_days(sets, ps, days_between(first, last), lake=lake_url, force=force, console=console)
    if failed:
        raise Failed(f"{len(failed)} day(s) failed: {', '.join(failed)}")
