"""Object-key layout of the lake. A key depends on the point set, the day and the point group only.

The default (hive) layout:

    <lake>/point_set=<name>/date=<YYYY-MM-DD>/all.parquet            every point of the day
    <lake>/point_set=<name>/date=<YYYY-MM-DD>/points-<group>.parquet  points added later (sensor)

A Parquet sink's ``key_template`` (see :mod:`naia_backfill.settings.key_template`) replaces it, e.g.
``timeseries/2024/01/15/ses_falls_city.parquet``; points added later then go beside it as
``ses_falls_city.points-<group>.parquet``.

``<group>`` is a hash of the sorted point names of that object, so re-fetching the same added points
replaces the same object. Writing a full day removes that day's point-group objects: a full re-run of a day
replaces the whole day. Temporary objects are hidden (``.``) and end in ``.tmp``: they never match a glob.
:class:`Layout` is what listings, the DuckDB view and validation need to find a point set's objects.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import posixpath
import re
from collections.abc import Iterable, Sequence
from typing import Any

from naia_backfill.settings import NAME_RE, key_template

FULL_DAY = "all.parquet"
GROUP_RE = re.compile(r"^(?:.+\.)?points-[0-9a-f]{12}\.parquet$")
HIVE_TEMPLATE = "point_set={point_set}/date={date}/all.parquet"


def group_id(points: Sequence[str]) -> str:
    """Stable 12-hex-digit name of a set of points."""
    return hashlib.sha256("\n".join(sorted(set(points))).encode("utf-8")).hexdigest()[:12]


def object_name(group: str | None) -> str:
    if group is None:
        return FULL_DAY
    check_group(group)
    return f"points-{group}.parquet"


def check_group(group: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{12}", group):
        raise ValueError(f"point group must be 12 hex digits, got {group!r}")
    return group


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
    """A name a point set's object may have in its day folder (full day or point group), hive or templated."""
    return name == FULL_DAY or bool(GROUP_RE.match(name))


def _day_of(match: re.Match[str]) -> dt.date | None:
    parts = match.groupdict()
    try:
        if parts.get("date"):
            return dt.date.fromisoformat(parts["date"])
        return dt.date(int(parts["yyyy"]), int(parts["mm"]), int(parts["dd"]))
    except ValueError:
        return None


class Layout:
    """Where the day objects of one point set go: its key template (hive by default) with ``{point_set}``
    (and ``{site}``, filled when the point set loads) substituted; only the date is left to vary."""

    def __init__(self, point_set: str, template: str | None = None) -> None:
        point_set_prefix(point_set)  # validates the name
        self.point_set = point_set
        self.hive = template is None
        self.template = key_template.substitute(template or HIVE_TEMPLATE, {"point_set": point_set})
        left = sorted(set(key_template.fields(self.template)) - set(key_template.DATE_PARTS))
        if left:
            raise ValueError(f"key template of {point_set!r}: {{{left[0]}}} was not filled in")
        self._stem = self.template.removesuffix(".parquet")
        regex = key_template.day_regex(self._stem)
        self._key_re = re.compile(rf"{regex}(?:\.points-(?P<group>[0-9a-f]{{12}}))?\.parquet")
        if self.hive:  # hive point groups are named points-<group>.parquet, not all.points-<group>.parquet
            folder = key_template.day_regex(posixpath.dirname(self.template))
            self._key_re = re.compile(rf"{folder}/(?:all|points-(?P<group>[0-9a-f]{{12}}))\.parquet")

    @classmethod
    def of(cls, point_set: Any) -> Layout:
        """The layout of a :class:`~naia_backfill.settings.PointSet` (its parquet sink's key template)."""
        sink = point_set.sink("parquet")
        return cls(point_set.name, sink.key_template if sink is not None else None)

    def key(self, day: dt.date, group: str | None = None) -> str:
        """The object key of ``day`` (of a point group of it when ``group`` is given)."""
        full = key_template.render(self.template, day, {})
        if group is None:
            return full
        check_group(group)
        if self.hive:
            return f"{posixpath.dirname(full)}/points-{group}.parquet"
        return f"{full.removesuffix('.parquet')}.points-{group}.parquet"

    def folder(self, day: dt.date) -> str:
        """The folder holding the objects of ``day`` ("" at the lake root)."""
        return posixpath.dirname(self.key(day))

    def day_of(self, key: str) -> dt.date | None:
        """The day of an object key (relative to the lake root) of this point set; None for any other key."""
        m = self._key_re.fullmatch(key)
        day = _day_of(m) if m else None
        if day is None or key not in (self.key(day), self.key(day, m.group("group")) if m["group"] else None):
            return None
        return day

    def day_names(self, day: dt.date, names: Iterable[str]) -> list[str]:
        """The names, among ``names`` listed in :meth:`folder`, of this point set's objects of ``day``."""
        folder = self.folder(day)
        return sorted(n for n in names if self.day_of(posixpath.join(folder, n)) == day)

    def group_names(self, day: dt.date, names: Iterable[str]) -> list[str]:
        """The names of ``day``'s point-group objects among ``names`` listed in :meth:`folder` (what a full
        re-run of the day replaces)."""
        full = posixpath.basename(self.key(day))
        return [n for n in self.day_names(day, names) if n != full]

    def days(self, keys: Iterable[str]) -> dict[dt.date, list[str]]:
        """Object keys (relative to the lake root) of this point set, by day, in day order."""
        out: dict[dt.date, list[str]] = {}
        for key in keys:
            day = self.day_of(key)
            if day is not None:
                out.setdefault(day, []).append(key)
        return {d: sorted(v) for d, v in sorted(out.items())}

    def listing_prefix(self) -> str:
        """The deepest folder above every object of this point set: what to list (recursively) to find them."""
        constant = self.template.split("{", 1)[0]
        return constant.rsplit("/", 1)[0] if "/" in constant else ""

    def globs(self) -> list[str]:
        """Glob patterns (relative to the lake root; ``*`` never crosses a ``/``) matching every object of this
        point set -- and no other point set's -- for DuckDB's ``read_parquet``; :meth:`day_of` tells a stray file
        a user put at a matching key apart."""
        if self.hive:
            return [key_template.day_glob(posixpath.dirname(self.template)) + "/*.parquet"]
        stem = key_template.day_glob(self._stem)
        return [f"{stem}.parquet", f"{stem}.points-*.parquet"]
