"""ACE IoT API: raw samples of one site's points, as canonical Arrow batches.

A window is read through ``/sites/{site}/timeseries/paginated`` (``raw_data=true``), page after page while
``has_more`` and a ``next_cursor`` come back (an empty page may still carry one). Every point of the site comes
interleaved; samples of points not asked for are dropped, as are samples whose value is null, empty, ``nan``
or infinite, and both are counted (:meth:`AceIotConnector.stats`). The server's window edges are its own (it may
serve samples before ``start_time`` and at ``end_time``): rows are cut to ``[start, end)`` here. A 404 on the
first page means the site has no data for the window (an empty window, not an error); the site itself is
checked once beforehand so that an unknown site is never mistaken for an empty day.

Points are the site's configured points (``/configured_points``) by default, matched by ``points.name_filter``;
named points are checked against every point the site lists (``/points``). Each point keeps the served order,
which must not go back in time (checked). Bodies are parsed by :mod:`naia_backfill.connectors.ace_iot_json`.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx
import numpy as np
import pyarrow as pa

from naia_backfill.connectors.ace_iot_json import TS_TYPE, ListItem, SeriesPage, parse_list, parse_series
from naia_backfill.connectors.base import Credentials, Estimate, Source
from naia_backfill.connectors.http import HttpStatusError, Retrier, build_client, get_body, retrier_for
from naia_backfill.errors import NoMatchingPointsError, PointSetError, SourceError, UnknownPointsError
from naia_backfill.schema import from_columns
from naia_backfill.settings import AceIotSource

log = logging.getLogger(__name__)

#: Counters of one fetch (one day when the engine copies a day), see :meth:`AceIotConnector.stats`.
STATS = ("samples", "served", "dropped_null", "dropped_unconfigured", "pages")
_SOURCE_NAME = "ACE IoT"


class UnknownSiteError(NoMatchingPointsError):
    """The point set's site is not at the source (or not visible with its token): no point can match."""


def iso(ns: int, *, ceil: bool = False) -> str:
    """ISO 8601 UTC with microseconds when not whole seconds (floored, or ceiled for window ends)."""
    us = -(-ns // 1000) if ceil else ns // 1000
    t = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=us)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + (f".{t.microsecond:06d}" if t.microsecond else "") + "Z"


def to_ns(t: dt.datetime) -> int:
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return (t - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1) * 1000


def list_pages(get: Callable[[str, dict[str, Any], str], bytes], path: str, per_page: int, what: str) -> list[ListItem]:
    """Every item of a page/per_page list, page 1 on, until ``page >= pages`` or an empty page; repeats dropped."""
    items: dict[str, ListItem] = {}
    page = 1
    while True:
        doc = parse_list(get(path, {"page": page, "per_page": per_page}, f"{what}, page {page}"), what)
        for item in doc.items or ():
            items.setdefault(item.name, item)
        if not doc.items or page >= (doc.pages if doc.pages is not None else math.inf):
            return list(items.values())
        page += 1


class AceIotConnector(Source):
    """Raw samples of points of one ACE IoT site, read through an injected ``httpx.Client``."""

    def __init__(self, settings: AceIotSource, client: httpx.Client, *, retrier: Retrier | None = None) -> None:
        if settings.site is None:
            raise PointSetError(
                f"ACE IoT {settings.base_url}: this point set names several sites; it loads as one point set per "
                "site (<name>_<site>): run those"
            )
        self.settings, self.client, self.site = settings, client, settings.site
        self.retrier = retrier or retrier_for(settings)
        self.description = f"{_SOURCE_NAME} {settings.base_url} (site {self.site})"
        self._intervals: dict[str, float | None] = {}  # point name -> collect interval (s), from the lists
        self._listed: dict[str, list[str]] = {}  # "configured" / "all" -> names, in the source's order
        self._site_known = False
        self._stats = dict.fromkeys(STATS, 0)

    def _get(self, path: str, params: dict[str, Any], what: str) -> bytes:
        return self.retrier.call(lambda: get_body(self.client, path, params, what), what)

    def _list(self, which: str) -> list[str]:
        """Names of the site's configured or all points (each list read once per connector)."""
        if which not in self._listed:
            path = f"sites/{self.site}/{'configured_points' if which == 'configured' else 'points'}"
            what = f"{self.description}: list {'configured ' if which == 'configured' else ''}points"
            try:
                items = list_pages(self._get, path, self.settings.list_page_size, what)
            except HttpStatusError as e:
                if e.status == 404:
                    raise self._unknown_site() from None
                raise
            self._site_known = True
            for item in items:
                self._intervals[item.name] = item.collect_interval
            self._listed[which] = [item.name for item in items]
        return self._listed[which]

    def _unknown_site(self) -> UnknownSiteError:
        try:
            sites = [s.name for s in list_pages(self._get, "sites/", self.settings.list_page_size, "list sites")]
            seen = ", ".join(sites[:20]) + (f" and {len(sites) - 20} more" if len(sites) > 20 else "") or "none"
        except SourceError:
            seen = "(the site list could not be read)"
        return UnknownSiteError(f"{self.description}: site {self.site!r} not found; sites this token sees: {seen}")

    def check_site(self) -> None:
        """Fail with :class:`UnknownSiteError` unless the site exists (a list read proves it)."""
        if not self._site_known:
            self._list("configured")

    def list_points(self, name_filter: str = "*") -> list[str]:
        names = self._list(self.settings.points_from)
        pattern = name_filter.upper()
        return names if name_filter == "*" else [n for n in names if fnmatch.fnmatchcase(n.upper(), pattern)]

    def missing_points(self, names: Sequence[str]) -> list[str]:
        known = set(self._intervals)
        if any(n not in known for n in names):
            known |= set(self._list("all"))
        return [n for n in names if n not in known]

    def estimate(self, points: int, days: int) -> Estimate:
        """Samples from the points' collect intervals; requests from every listed point of the site, whose
        samples all come through the paginated series (unlisted, retired points are not counted)."""
        try:
            self._list("all")
        except SourceError:
            return Estimate(samples=None, requests=None)
        per_day = [86_400.0 / iv for iv in self._intervals.values() if iv]
        if not per_day:
            return Estimate(samples=None, requests=None)
        samples = round(points * sum(per_day) / len(per_day)) * days
        return Estimate(samples=samples, requests=max(1, math.ceil(sum(per_day) / self.settings.page_size)) * days)

    def stats(self) -> dict[str, int]:
        """Counters of the last fetch: ``samples`` yielded, ``served`` (in the window, any point), ``dropped_null``
        (asked-for points, value null, empty, nan or infinite), ``dropped_unconfigured`` (other points),
        ``pages`` read."""
        return dict(self._stats)

    def fetch(self, points: Sequence[str], start: dt.datetime, end: dt.datetime) -> Iterator[pa.RecordBatch]:
        start_ns, end_ns = to_ns(start), to_ns(end)
        self._stats = dict.fromkeys(STATS, 0)
        if not points or end_ns <= start_ns:
            return
        missing = self.missing_points(points)
        if missing:
            raise UnknownPointsError(missing, self.description)
        self.check_site()
        wanted = list(dict.fromkeys(points))
        window = _Window(wanted, start_ns, end_ns, self._stats)
        params = {"start_time": iso(start_ns), "end_time": iso(end_ns, ceil=True),
                  "page_size": self.settings.page_size, "raw_data": "true"}
        cursor: str | None = None
        while True:
            page = self._page(params, cursor, window.index)
            if page is None:
                return
            self._stats["pages"] += 1
            batch = window.cut(page, self.description)
            if batch.num_rows:
                yield batch
            if not (page.has_more and page.next_cursor):
                return
            if page.next_cursor == cursor:
                raise SourceError(f"{self.description}: the server sent the cursor it was given again (a loop)")
            cursor = page.next_cursor

    def _page(self, params: dict[str, Any], cursor: str | None, index: dict[str, int]) -> SeriesPage | None:
        """One page; None when the first page is a 404 (no data in the window)."""
        what = f"{self.description}: samples from {params['start_time']}" + (" (next page)" if cursor else "")
        query = {**params, "cursor": cursor} if cursor else params
        path = f"sites/{self.site}/timeseries/paginated"

        def attempt() -> SeriesPage:
            return parse_series(get_body(self.client, path, query, what), index, what)

        try:
            return self.retrier.call(attempt, what)
        except HttpStatusError as e:
            if e.status == 404 and cursor is None:
                log.info("%s: no data (404)", what)
                return None
            raise

    def close(self) -> None:
        self.client.close()


class _Window:
    """Cuts pages to the wanted points in ``[start, end)``, counts what it drops, checks each point's time order."""

    def __init__(self, wanted: list[str], start_ns: int, end_ns: int, stats: dict[str, int]) -> None:
        self.names = pa.array(wanted, pa.string())
        self.index = {n: i for i, n in enumerate(wanted)}
        self.start, self.end, self.stats = start_ns, end_ns, stats
        self.last = np.full(len(wanted), np.iinfo(np.int64).min, np.int64)  # each point's latest time so far
        self.latest = np.iinfo(np.int64).min  # the latest time of any point so far

    def cut(self, page: SeriesPage, what: str) -> pa.RecordBatch:
        inside = (page.ts >= self.start) & (page.ts < self.end)
        wanted = inside & (page.index >= 0)
        has_value = page.number if page.text is None else page.number | page.text.is_valid().to_numpy(False)
        keep = wanted & has_value
        self.stats["served"] += int(inside.sum())
        self.stats["dropped_unconfigured"] += int((inside & ~wanted).sum())
        self.stats["dropped_null"] += int((wanted & ~has_value).sum())
        rows = np.flatnonzero(keep)
        self.stats["samples"] += len(rows)
        idx, ts = page.index[rows], page.ts[rows]
        self._check_order(idx, ts, what)
        take = pa.array(rows, pa.int64())
        columns: dict[str, Any] = {
            "point": self.names.take(pa.array(idx, pa.int64())),
            "ts": pa.array(ts, pa.int64()).cast(TS_TYPE),
            "value": page.value.take(take),
        }
        if page.text is not None:
            columns["text"] = page.text.take(take)
        return from_columns(**columns)

    def _check_order(self, idx: np.ndarray, ts: np.ndarray, what: str) -> None:
        if not len(ts):
            return
        if ts[0] >= self.latest and (len(ts) < 2 or bool((ts[1:] >= ts[:-1]).all())):
            self.last[idx] = ts  # in time order: each point's last write is its latest
        else:
            order = np.argsort(idx, kind="stable")
            si, st = idx[order], ts[order]
            first = np.ones(len(si), bool)
            first[1:] = si[1:] != si[:-1]
            back = np.flatnonzero((~first & (st < np.roll(st, 1))) | (first & (st < self.last[si])))
            if len(back):
                raise SourceError(f"{what}: samples of point {self.names[int(si[back[0]])].as_py()!r} go back "
                                  "in time (the series must be in time order per point)")
            np.maximum.at(self.last, idx, ts)
        self.latest = max(self.latest, int(ts.max()))


def build(settings: AceIotSource, credentials: Credentials) -> AceIotConnector:
    """The connector with its client from the shared HTTP factory (rate limit, retries, bearer auth, TLS)."""
    return AceIotConnector(settings, build_client(settings, credentials))
