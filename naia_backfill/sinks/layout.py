"""Object-key layout of the lake. A key depends on the point set, the day and the point group only.

    <lake>/point_set=<name>/date=<YYYY-MM-DD>/all.parquet            every point of the day
    <lake>/point_set=<name>/date=<YYYY-MM-DD>/points-<group>.parquet  points added later (sensor)

``<group>`` is a hash of the sorted point names of that object, so re-fetching the same added points
replaces the same object. Writing ``all.parquet`` removes the day's ``points-*`` objects: a full re-run
of a day replaces the whole day. Temporary objects end in ``.tmp`` and never match ``*.parquet``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Sequence

from naia_backfill.settings import NAME_RE

FULL_DAY = "all.parquet"
GROUP_RE = re.compile(r"^points-[0-9a-f]{12}\.parquet$")


def group_id(points: Sequence[str]) -> str:
    """Stable 12-hex-digit name of a set of points."""
    return hashlib.sha256("\n".join(sorted(set(points))).encode("utf-8")).hexdigest()[:12]


def object_name(group: str | None) -> str:
    if group is None:
        return FULL_DAY
    if not re.fullmatch(r"[0-9a-f]{12}", group):
        raise ValueError(f"point group must be 12 hex digits, got {group!r}")
    return f"points-{group}.parquet"


def point_set_prefix(point_set: str) -> str:
    if not re.fullmatch(NAME_RE, point_set):
        raise ValueError(f"invalid point set name {point_set!r}")
    return f"point_set={point_set}"


def day_prefix(point_set: str, day: dt.date) -> str:
    return f"{point_set_prefix(point_set)}/date={day.isoformat()}"


def object_key(point_set: str, day: dt.date, group: str | None = None) -> str:
    return f"{day_prefix(point_set, day)}/{object_name(group)}"


def parse_day(dirname: str) -> dt.date | None:
    """The day of a ``date=YYYY-MM-DD`` folder name, else None."""
    m = re.fullmatch(r"date=(\d{4}-\d{2}-\d{2})", dirname)
    if not m:
        return None
    try:
        return dt.date.fromisoformat(m.group(1))
    except ValueError:
        return None


def is_data_object(name: str) -> bool:
    return name == FULL_DAY or bool(GROUP_RE.match(name))
