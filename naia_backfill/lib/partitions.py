"""UTC daily partitions of a point set: from its start date to its end date, or to the last complete day."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from naia_backfill.settings import PointSet


def daily_partitions(point_set: PointSet) -> dg.DailyPartitionsDefinition:
    end = point_set.end_date + dt.timedelta(days=1) if point_set.end_date else None
    return dg.DailyPartitionsDefinition(
        start_date=point_set.start_date.isoformat(),
        end_date=end.isoformat() if end else None,
        timezone="UTC",
        fmt="%Y-%m-%d",
        end_offset=0,
    )


def last_complete_day(now: dt.datetime | None = None) -> dt.date:
    now = now or dt.datetime.now(dt.UTC)
    return now.astimezone(dt.UTC).date() - dt.timedelta(days=1)


def partition_range_tags(first: dt.date, last: dt.date) -> dict[str, str]:
    """Run tags that make one run cover the partitions ``first`` .. ``last``."""
    return {
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat(),
    }


def contiguous_chunks(days: list[dt.date], size: int) -> list[list[dt.date]]:
    """Contiguous runs of ``days``, each split into pieces of at most ``size`` days."""
    out: list[list[dt.date]] = []
    for day in days:
        last = out[-1] if out else None
        if last and len(last) < size and (day - last[-1]).days == 1:
            last.append(day)
        else:
            out.append([day])
    return out
