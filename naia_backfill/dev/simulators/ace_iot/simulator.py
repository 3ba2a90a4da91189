"""An ACE IoT API simulator: a real HTTP/1.1 server on 127.0.0.1 speaking ACE's wire format (SOURCES.md §2).

Serves ``/api/sites/``, ``/api/sites/{site}``, ``/api/sites/{site}/points``, ``/api/sites/{site}/
configured_points`` (``page`` from 1, ``per_page`` silently clamped to ``max_per_page``),
``/api/sites/{site}/timeseries/paginated`` (``raw_data=true`` only; opaque base64 cursor; every point of
the site interleaved in time order, unconfigured and retired points included; ``page_size`` above
``max_page_size`` is 400; an empty period is 404) and ``/api/points/{name}/timeseries`` (the name
URL-encoded; unpaged), from the deterministic samples of :mod:`~naia_backfill.dev.simulators.ace_iot.data`.

Edge semantics are the server's and configurable: by default a period also returns samples up to
``before_start_s`` before ``start_time`` and samples at exactly ``end_time`` (``end_inclusive``), so a
connector must cut to ``[start, end)`` itself. :meth:`AceIotSimulator.truth` is what a correct connector
keeps for a UTC day. Auth is Bearer (401 ``{"message":"JWT Signature Invalid"}``) when ``token`` is set;
``rate_limit=(n, seconds)`` answers 429 with Retry-After; faults come from
:meth:`~naia_backfill.dev.simulators.httpserver.HttpSimulator.inject`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hmac
import os
import threading
from collections.abc import Iterator
from typing import Any

import click
import numpy as np
import orjson
import pyarrow as pa

from naia_backfill.dev.simulators import httpserver
from naia_backfill.dev.simulators.ace_iot import routes
from naia_backfill.dev.simulators.ace_iot.data import (
    KIND_NUMBER,
    US_PER_DAY,
    US_PER_S,
    AcePoint,
    AceSite,
    to_us,
)
from naia_backfill.dev.simulators.ace_iot.model import SiteModel
from naia_backfill.dev.simulators.ace_iot.sites import default_sites
from naia_backfill.dev.simulators.httpserver import HttpSimulator, Request, Response, SlidingWindow
from naia_backfill.schema import SAMPLE_SCHEMA, from_columns

__all__ = ["AceIotSimulator", "AcePoint", "AceSite", "main", "serve"]

_GATEWAY_HTML = (
    "<html><head><title>{0}</title></head><body><center><h1>{0}</h1></center><hr><center>nginx</center></body></html>"
)


class AceIotSimulator(HttpSimulator):
    """The state of one simulated ACE IoT API: sites and points, auth, limits, edge semantics, faults, log.

    Points may be added or removed while a server runs; every request sees the latest state.
    """

    server_header = "cloudflare"

    def __init__(
        self,
        *,
        seed: int = 0,
        sites: list[AceSite] | None = None,
        token: str | None = None,
        rate_limit: tuple[int, float] | None = None,
        max_page_size: int = 500_000,
        max_per_page: int = 1_000,
        end_inclusive: bool = True,
        before_start_s: float = 90.0,
        after_end_s: float = 0.0,
    ) -> None:
        super().__init__(SlidingWindow(*rate_limit) if rate_limit else None)
        self.seed = seed
        self.token = token
        self.max_page_size = max_page_size
        self.max_per_page = max_per_page
        self.end_inclusive = end_inclusive
        self.before_start_s = before_start_s
        self.after_end_s = after_end_s
        self._lock = threading.Lock()
        self._sites: dict[str, tuple[int, AceSite]] = {}
        self._points: dict[str, dict[str, tuple[int, AcePoint]]] = {}
        self._models: dict[tuple[str, str | None], SiteModel] = {}
        self._next_pid = 1
        for site in default_sites() if sites is None else sites:
            self.add_site(site)

    # catalogue

    def add_site(self, site: AceSite) -> None:
        """Add a site with its points (``site.points``)."""
        with self._lock:
            if site.name in self._sites:
                raise ValueError(f"site {site.name!r} exists")
            self._sites = {**self._sites, site.name: (len(self._sites) + 1, site)}
            self._points = {**self._points, site.name: {}}
        for p in site.points:
            self.add_point(site.name, p)

    def add_point(self, site: str, point: AcePoint) -> int:
        """Add a point to ``site``, or replace the one with its name (keeping its id); returns the id."""
        with self._lock:
            if site not in self._points:
                raise KeyError(f"no site {site!r} in the simulator")
            owner = next((s for s, pts in self._points.items() if point.name in pts), site)
            if owner != site:
                raise ValueError(f"point {point.name!r} belongs to site {owner!r}")
            points = dict(self._points[site])
            pid = points[point.name][0] if point.name in points else self._next_pid
            self._next_pid += point.name not in points
            points[point.name] = (pid, point)
            self._points = {**self._points, site: points}
            self._models = {k: m for k, m in self._models.items() if k[0] != site}
            return pid

    def remove_point(self, name: str) -> None:
        with self._lock:
            site = next((s for s, pts in self._points.items() if name in pts), None)
            if site is None:
                raise KeyError(f"no point {name!r} in the simulator")
            points = dict(self._points[site])
            del points[name]
            self._points = {**self._points, site: points}
            self._models = {k: m for k, m in self._models.items() if k[0] != site}

    @property
    def sites(self) -> list[str]:
        return list(self._sites)

    def site_entry(self, site: str) -> tuple[int, AceSite] | None:
        return self._sites.get(site)

    def site_items(self) -> list[tuple[int, AceSite]]:
        return sorted(self._sites.values(), key=lambda e: e[0])

    def point_entries(self, site: str, configured_only: bool = False) -> list[tuple[int, AcePoint]]:
        """The listed points of ``site`` by id (only ``configured`` ones if asked), as (id, point)."""
        entries = sorted(self._points[site].values(), key=lambda e: e[0])
        return [(pid, p) for pid, p in entries if p.listed and (p.configured or not configured_only)]

    def points(self, site: str, configured_only: bool = False) -> list[str]:
        """Names of the listed (or configured) points of ``site``, by id."""
        return [p.name for _, p in self.point_entries(site, configured_only)]

    def find_point(self, name: str) -> tuple[int, AceSite, AcePoint] | None:
        for site, points in self._points.items():
            if name in points and points[name][1].listed:
                return points[name][0], self._sites[site][1], points[name][1]
        return None

    def model(self, site: str, point: str | None = None) -> SiteModel:
        """The sample generator of ``site`` (or of its one point ``point``) for the current points."""
        key = (site, point)
        with self._lock:  # built under the lock: a point added meanwhile cannot leave a stale model cached
            model = self._models.get(key)
            if model is None:
                entries = list(self._points[site].values())
                if point is not None:
                    entries = [e for e in entries if e[1].name == point]
                model = self._models[key] = SiteModel(self._sites[site][1], entries, self.seed)
        return model

    def point_model(self, name: str) -> SiteModel | None:
        found = self.find_point(name)
        return None if found is None else self.model(found[1].name, name)

    def served_range(self, start: int, end: int) -> tuple[int, int]:
        """The ``[lo, hi)`` microseconds a request for ``[start, end)`` gets, per the edge semantics."""
        lo = start - round(self.before_start_s * US_PER_S)
        return lo, end + round(self.after_end_s * US_PER_S) + (1 if self.end_inclusive else 0)

    # truth

    def truth_batches(
        self, site: str, start: dt.datetime | dt.date, end: dt.datetime | dt.date, points: list[str] | None = None
    ) -> Iterator[pa.RecordBatch]:
        """What a correct connector yields for ``[start, end)`` (dates are UTC midnights), in served order, an
        hour per batch: samples of the configured points (or of ``points``) whose value parses as a finite
        float, as canonical rows (``value`` the float, ``good`` true, no text)."""
        model = self.model(site)
        wanted = set(points or ())
        keep = model.configured if points is None else np.array([n in wanted for n in model.names], dtype=bool)
        names = pa.array(model.names, pa.string())
        a, b = to_us(start), to_us(end)
        for lo in range(a, b, 3_600 * US_PER_S):
            s = model.between(lo, min(b, lo + 3_600 * US_PER_S))
            s = s.take((s.kind == KIND_NUMBER) & keep[s.pidx])
            ts = pa.array(s.t * 1000, pa.int64()).cast(pa.timestamp("ns", tz="UTC"))
            yield from_columns(point=names.take(pa.array(s.pidx)), ts=ts, value=pa.array(model.values(s)))

    def truth(self, site: str, day: dt.date, points: list[str] | None = None) -> pa.Table:
        """The canonical samples a correct connector produces for UTC ``day`` (see :meth:`truth_batches`)."""
        batches = list(self.truth_batches(site, day, day + dt.timedelta(days=1), points))
        return pa.Table.from_batches(batches, schema=SAMPLE_SCHEMA)

    def truth_stats(self, site: str, day: dt.date) -> dict[str, Any]:
        """Counts for UTC ``day`` without building rows: ``samples`` (kept), ``points`` (with a sample),
        ``value_sum``, ``dropped_null`` (configured points, value not a finite number), ``dropped_unconfigured``
        (samples of points that are not configured, retired ones included) and ``served`` (all in the day)."""
        model = self.model(site)
        start = to_us(day)
        stats = {"samples": 0, "points": 0, "value_sum": 0.0, "dropped_null": 0, "dropped_unconfigured": 0}
        seen = np.zeros(len(model.names), dtype=bool)
        for lo in range(start, start + US_PER_DAY, 3_600 * US_PER_S):
            s = model.between(lo, lo + 3_600 * US_PER_S)
            conf = model.configured[s.pidx]
            good = conf & (s.kind == KIND_NUMBER)
            stats["samples"] += int(good.sum())
            stats["value_sum"] += float(model.values(s.take(good)).sum())
            stats["dropped_null"] += int((conf & ~good).sum())
            stats["dropped_unconfigured"] += int((~conf).sum())
            seen[s.pidx[good]] = True
        stats["points"] = int(seen.sum())
        stats["served"] = stats["samples"] + stats["dropped_null"] + stats["dropped_unconfigured"]
        return stats

    def offline_days(self, site: str, first: dt.date, last: dt.date) -> list[dt.date]:
        """The UTC days in ``[first, last]`` on which ``site`` has no samples at all (its period answers 404)."""
        d0 = to_us(first) // US_PER_DAY
        days = np.arange(d0, to_us(last) // US_PER_DAY + 1)
        return [first + dt.timedelta(days=int(d - d0)) for d in days[self.model(site).offline(days)]]

    # HTTP

    def handle(self, request: Request) -> Response:
        if self.token is not None:
            scheme, _, value = (request.headers.get("Authorization") or "").strip().partition(" ")
            if not scheme:
                return routes.message(401, "Missing Authorization Header")
            if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), self.token.encode()):
                return routes.message(401, "JWT Signature Invalid")
        return routes.route(self, request)

    def status_response(self, status: int, message: str | None) -> Response:
        if 520 <= status <= 523:
            return Response(status, f"error code: {status}".encode(), content_type="text/plain; charset=UTF-8")
        if status in (502, 504):
            title = f"{status} {httpserver.phrase(status)}"
            return Response(status, _GATEWAY_HTML.format(title).encode(), content_type="text/html")
        return Response(status, orjson.dumps({"message": message or httpserver.phrase(status)}))

    def limited_response(self, retry_after_s: float) -> Response:
        return routes.message(429, "Too Many Requests", httpserver.retry_after_header(max(1.0, retry_after_s)))


@contextlib.contextmanager
def serve(sim: AceIotSimulator, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Run ``sim`` on ``host:port`` (0 picks a free port); yields the base URL ending in ``/api``."""
    with httpserver.serve(sim, host, port, "/api") as url:
        yield url


@click.command(name="ace-iot", help=__doc__.split("\n\n")[0])
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback address to bind.")
@click.option("--port", type=int, default=0, help="Port (default: a free one, printed).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--token-env", help="Require Bearer auth with the token in this environment variable.")
@click.option("--rate-limit", type=int, help="Requests allowed per --per seconds before 429 (default: no limit).")
@click.option("--per", type=float, default=60.0, show_default=True, help="Window of --rate-limit, in seconds.")
@click.option("--max-page-size", type=int, default=500_000, show_default=True)
@click.option("--max-per-page", type=int, default=1_000, show_default=True)
@click.option("--end-exclusive", is_flag=True, help="Do not serve samples at exactly end_time.")
@click.option("--before-start", type=float, default=90.0, show_default=True, help="Seconds served before start_time.")
@click.option("--after-end", type=float, default=0.0, show_default=True, help="Seconds served after end_time.")
def main(
    host: str, port: int, seed: int, token_env: str | None, rate_limit: int | None, per: float,
    max_page_size: int, max_per_page: int, end_exclusive: bool, before_start: float, after_end: float,
) -> None:  # fmt: skip
    token = None
    if token_env:
        token = os.environ.get(token_env)
        if token is None:
            raise click.UsageError(f"${token_env} is not set")
    try:
        httpserver.check_loopback(host)
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    sim = AceIotSimulator(
        seed=seed,
        token=token,
        rate_limit=(rate_limit, per) if rate_limit else None,
        max_page_size=max_page_size,
        max_per_page=max_per_page,
        end_inclusive=not end_exclusive,
        before_start_s=before_start,
        after_end_s=after_end,
    )
    sites = ", ".join(f"{s} ({len(sim.points(s, True))} configured points)" for s in sim.sites)
    httpserver.serve_until_stopped(
        serve(sim, host, port), lambda url: f"ACE IoT simulator at {url} (sites: {sites}); Ctrl-C to stop"
    )


if __name__ == "__main__":
    main()
