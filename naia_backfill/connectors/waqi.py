"""WAQI (aqicn.org): air-quality stations collected forward, since the API keeps no history.

The API serves each station's latest hourly reading only. :meth:`WaqiConnector.collect` (run by the point set's
collect schedule) polls every station and stages each observation in the lake
(:mod:`naia_backfill.connectors.staging`); :meth:`WaqiConnector.fetch` of a past day reads what was staged, never
the API, and fails with an explanation when nothing was collected for the day.

Errors come as HTTP 200 ``{"status": "error", "data": "..."}``: ``Invalid key`` is refused credentials,
``Unknown station`` an unknown point, ``Over quota`` a transient error retried by the shared retry policy. Every
request waits for the source's shared rate limiter (WAQI's quota is 1000 requests a minute per token).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fnmatch
import logging
import re
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import orjson
import pyarrow as pa

from naia_backfill.connectors import waqi_feed as feed
from naia_backfill.connectors.base import Credentials, Estimate, Source
from naia_backfill.connectors.http import (
    RefusedCredentialsError,
    Retrier,
    TransientError,
    build_client,
    get_body,
    retrier_for,
)
from naia_backfill.connectors.staging import StagingArea, objects_for
from naia_backfill.errors import CredentialsError, SourceError, UnknownPointsError
from naia_backfill.settings.sources import WaqiSource

log = logging.getLogger(__name__)
HOUR = dt.timedelta(hours=1)
POLL_THREADS = 4


class UnknownStationsError(UnknownPointsError):
    """Station uids the API does not know (and collection never saw)."""

    def __init__(self, uids: list[int], source: str) -> None:
        SourceError.__init__(self, f"{len(uids)} station(s) unknown to {source}: {', '.join(map(str, uids))} "
                                   "(WAQI answered 'Unknown station'; check the uids at https://aqicn.org)")
        self.points = [f"{u}/{feed.AQI}" for u in uids]


class NotCollectedError(SourceError):
    """A past day with no staged observation: the API cannot serve it."""


@dataclasses.dataclass
class CollectReport:
    """What one poll of every station did."""

    stations: int = 0
    uids: list[int] = dataclasses.field(default_factory=list)  # the stations polled
    staged: int = 0  # new observations
    already: int = 0  # observations staged by an earlier poll
    stale: list[int] = dataclasses.field(default_factory=list)  # stations seen before that the API no longer knows
    counts: feed.Counts = dataclasses.field(default_factory=feed.Counts)
    requests: int = 0


class WaqiConnector(Source):
    def __init__(self, settings: WaqiSource, client: httpx.Client, staging: StagingArea, *,
                 retrier: Retrier | None = None) -> None:  # fmt: skip
        self.settings, self.client, self.staging = settings, client, staging
        self.retrier = retrier or retrier_for(settings)
        self.description = f"WAQI {settings.base_url}"
        self.requests = 0
        self._polled: dict[int, dict[str, Any] | None] | None = None  # uid -> feed data (None: unknown station)
        self._day: tuple[dt.date, list[tuple[int, dt.datetime, dict[str, Any]]]] | None = None

    # the API

    def _call(self, path: str, params: dict[str, str] | None, what: str) -> Any:
        """The ``data`` of an answer with ``status: ok``; WAQI's errors raised as typed errors."""

        def attempt() -> Any:
            self.requests += 1
            body = get_body(self.client, path, params, what)
            try:
                doc = orjson.loads(body)
            except orjson.JSONDecodeError as e:
                raise TransientError(f"{what}: cut-off or malformed answer ({e})") from e
            if not isinstance(doc, dict) or doc.get("status") != "ok":
                message = str(doc.get("data") or doc.get("message") or doc) if isinstance(doc, dict) else str(doc)
                if message.lower().startswith("over quota"):
                    raise TransientError(f"{what}: over quota (WAQI allows 1000 requests a minute per token)",
                                         status=429)  # fmt: skip
                if message.lower().startswith("invalid key"):
                    raise RefusedCredentialsError(
                        f"{what}: WAQI refused the token (Invalid key): check the environment variable "
                        f"{self.settings.token_env}", status=401)  # fmt: skip
                return _Error(message[:300])
            return doc.get("data")

        result = self.retrier.call(attempt, what)
        if isinstance(result, _Error) and result.message != "Unknown station":
            raise SourceError(f"{what}: WAQI answered with an error: {result.message}")
        return result

    def feed(self, uid: int) -> dict[str, Any] | None:
        """The station's current feed ``data``, None for a station the API does not know."""
        data = self._call(f"feed/@{uid}/", None, f"{self.description}: feed of station {uid}")
        return None if isinstance(data, _Error) else data

    def station_uids(self) -> list[int]:
        """The point set's stations: its ``uids``, or those inside ``bounds`` or found by ``keyword`` now."""
        s = self.settings
        if s.uids is not None:
            return list(s.uids)
        if s.bounds is not None:
            latlng = ",".join(f"{x:g}" for x in s.bounds)
            items = self._call("map/bounds", {"latlng": latlng}, f"{self.description}: stations in {latlng}")
        else:
            items = self._call("search/", {"keyword": s.keyword or ""}, f"{self.description}: search {s.keyword!r}")
        uids = sorted({int(it["uid"]) for it in items if isinstance(items, list) and "uid" in it})
        if not uids:
            raise SourceError(f"{self.description}: no station matches {s.bounds or s.keyword!r}")
        return uids

    def poll(self) -> dict[int, dict[str, Any] | None]:
        """Every station's current feed (None: unknown station), requests spread over a few threads."""
        uids = self.station_uids()
        with ThreadPoolExecutor(max_workers=POLL_THREADS, thread_name_prefix="waqi-poll") as pool:
            self._polled = dict(zip(uids, pool.map(self.feed, uids), strict=True))
        return self._polled

    def _check_unknown(self, polled: dict[int, dict[str, Any] | None]) -> list[int]:
        """Stations the API does not know: an error for any collection never saw (a wrong uid, nothing is
        written), a warning for stations it saw before (they stopped reporting; the others are kept)."""
        unknown = [u for u, data in polled.items() if data is None]
        never = [u for u in unknown if self.staging.station(u) is None]
        if never:
            raise UnknownStationsError(never, self.description)
        for uid in unknown:
            log.warning("%s: station %s is no longer known to the API (it was collected before)", self.description, uid)
        return unknown

    def collect(self) -> CollectReport:
        """Poll every station once and stage each observation (a repeated poll changes nothing)."""
        before = self.requests
        polled = self.poll()
        report = CollectReport(stations=len(polled), uids=list(polled), stale=self._check_unknown(polled))
        for uid, data in polled.items():
            if data is None:
                continue
            at = feed.observed_at(data, f"{self.description}: feed of station {uid}")
            if self.staging.stage(uid, at, feed.staged_document(data)):
                report.staged += 1
            else:
                report.already += 1
            feed.values(data, report.counts)
            self._remember(uid, data)
        report.requests = self.requests - before
        return report

    def _remember(self, uid: int, data: dict[str, Any]) -> None:
        """Keep the station's name, attributions and every key it ever reported in its staging record."""
        known = self.staging.station(uid) or {}
        info = {"uid": uid, "name": (data.get("city") or {}).get("name", ""), "url": (data.get("city") or {}).get("url", ""),
                "attributions": data.get("attributions") or [],
                "keys": sorted(set(known.get("keys", [])) | set(feed.keys_of(data)))}  # fmt: skip
        if info != known:
            self.staging.save_station(uid, info)

    # Source

    def list_points(self, name_filter: str = "*") -> list[str]:
        polled = self._polled if self._polled is not None else self.poll()
        self._check_unknown(polled)
        points = []
        for uid, data in polled.items():
            keys = set(feed.keys_of(data)) if data else set()
            keys |= set((self.staging.station(uid) or {}).get("keys", []))
            keys.discard(feed.AQI)
            points += [feed.point_name(uid, k) for k in [feed.AQI, *sorted(keys)]]
        return [p for p in points if fnmatch.fnmatchcase(p, name_filter)]

    def day(self, day: dt.date) -> list[tuple[int, dt.datetime, dict[str, Any]]]:
        """The day's staged observations (kept for the day's metadata and its fetch)."""
        if self._day is None or self._day[0] != day:
            self._day = (day, self.staging.read_day(day))
        return self._day[1]

    def _observations(self, points: Sequence[str], start: dt.datetime, end: dt.datetime
                      ) -> list[tuple[int, dt.datetime, dict[str, Any]]]:  # fmt: skip
        """The staged observations in ``[start, end)`` of the stations of ``points``."""
        uids = {parts[0] for p in points if (parts := feed.split_point(p))}
        days = [start.date() + dt.timedelta(days=i) for i in range((end - start).days + 1)]
        found = [o for d in days for o in self.day(d) if start <= o[1] < end and o[0] in uids]
        if not found:
            raise NotCollectedError(
                f"{self.description}: no observation of {start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC was "
                f"collected. The WAQI API serves only each station's latest reading and keeps no history, so a day "
                f"can only be materialized from what the point set's collect schedule (<name>_collect) staged "
                f"while the day was current; this day cannot be backfilled. Staging area: {self.staging.url}"
            )
        return found

    def fetch(self, points: Sequence[str], start: dt.datetime, end: dt.datetime) -> Iterator[pa.RecordBatch]:
        found = self._observations(points, start, end)
        missing = missing_hours(found, start, end)
        if missing:
            log.warning("%s: %s: no observation collected in the UTC hour(s) %s; materializing the %d hour(s) "
                        "collected", self.description, f"{start:%Y-%m-%d}", hours_text(missing),
                        round((end - start) / HOUR) - len(missing))  # fmt: skip
        counts = feed.Counts()
        yield feed.samples_batch(points, found, counts)

    def day_metadata(self, points: Sequence[str], start: dt.datetime, end: dt.datetime) -> dict[str, str]:
        """Key-value metadata of the day's objects: WAQI attributions (mandatory), each station's UTC offsets
        (offset -> first observation, epoch seconds), coverage and skipped values."""
        found = self._observations(points, start, end)
        counts = feed.Counts()
        for _, _, doc in found:
            feed.values(doc, counts)
        attributions: dict[int, Any] = {}
        offsets: dict[int, dict[str, int]] = {}
        for uid, at, doc in sorted(found, key=lambda o: (o[0], o[1])):
            attributions.setdefault(uid, doc.get("attributions") or [])
            tz = (doc.get("time") or {}).get("tz") or "+00:00"
            offsets.setdefault(uid, {}).setdefault(tz, int(at.timestamp()))
        missing = missing_hours(found, start, end)
        return {
            "waqi.attributions": orjson.dumps({str(u): a for u, a in attributions.items()}).decode(),
            "waqi.utc_offsets": orjson.dumps({str(u): o for u, o in offsets.items()}).decode(),
            "waqi.observations": str(len(found)),
            "waqi.missing_hours": hours_text(missing),
            "waqi.skipped_dash": str(counts.dash),
            "waqi.skipped_missing": str(counts.missing),
        }

    def describe_days(self, days: Sequence[dt.date]) -> list[tuple[str, str]]:
        """Rows of a dry run (`naia-backfill plan`): what collection costs and which days can be materialized.
        Reads the staging area's listings only, no observation and no API request."""
        stations = len(self.settings.uids) if self.settings.uids else None
        polls = 24 * 60 // self.settings.poll_minutes
        per_poll = f"{stations} request(s) a poll" if stations else "one request per station (+1 listing) a poll"
        cost = f"every {self.settings.poll_minutes} min ({polls} polls a day), {per_poll}"
        if stations:
            cost += f": {stations * polls:,} a day, {stations * polls / 1_440_000:.3%} of WAQI's 1000 a minute"
        never, partial = [], []
        for day in days:
            found = [(uid, at, None) for uid, at, _ in self.staging.observation_keys(day)]
            if not found:
                never.append(day.isoformat())
                continue
            start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
            missing = missing_hours(found, start, start + dt.timedelta(days=1))
            if missing:
                partial.append(f"{day} (no observation in {len(missing)} hour(s): {hours_text(missing)})")
        rows = [("collection", cost), ("staging area", self.staging.url),
                ("collected days", f"{len(days) - len(never)} of {len(days)}")]
        if never:
            rows.append(("will fail (no history)", ", ".join(never[:20]) + (" …" if len(never) > 20 else "")))
        if partial:
            rows.append(("partly collected", "; ".join(partial[:10]) + (" …" if len(partial) > 10 else "")))
        return rows

    def estimate(self, points: int, days: int) -> Estimate:
        """A past day is read from the staging area: no request; at most one sample per point and hour."""
        return Estimate(samples=points * 24 * days, requests=0)

    def close(self) -> None:
        self.client.close()


@dataclasses.dataclass(frozen=True)
class _Error:
    message: str


def missing_hours(found: Sequence[tuple[int, dt.datetime, Any]], start: dt.datetime, end: dt.datetime) -> list[int]:
    """UTC hours (0-23 of the window's day) in which no station has a staged observation."""
    hours = {int((at - start) // HOUR) for _, at, _ in found}
    return [h for h in range(round((end - start) / HOUR)) if h not in hours]


def hours_text(hours: Sequence[int]) -> str:
    return ", ".join(f"{h:02d}:00" for h in hours)


def staging_name(settings: WaqiSource) -> str:
    """The staging area of a WAQI API: ``waqi/<scheme_host_port>``."""
    return "waqi/" + re.sub(r"[^A-Za-z0-9]+", "_", settings.address()).strip("_")


def build(settings: WaqiSource, credentials: Credentials, *, transport: httpx.BaseTransport | None = None,
          staging: StagingArea | None = None) -> WaqiConnector:  # fmt: skip
    """The connector: the API client (token added below httpx, see :class:`~.waqi_feed.TokenQuery`) and the
    staging area in the lake (``$NAIA_LAKE_URL``, else ./data/lake) unless given."""
    if not credentials.token:
        raise CredentialsError(f"{settings.base_url}: WAQI needs a token: set the environment variable {settings.token_env}")
    inner = transport or feed.network_transport(settings.verify_tls, settings.ca_bundle)
    client = build_client(settings, Credentials(), transport=feed.TokenQuery(inner, credentials.token))
    if staging is None:
        staging = StagingArea(objects_for(None), staging_name(settings))
    return WaqiConnector(settings, client, staging)
