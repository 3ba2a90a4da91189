"""A WAQI (aqicn.org) API simulator: a real HTTP/1.1 server on 127.0.0.1 speaking WAQI's wire format
(SOURCES.md §3).

Serves ``/feed/@{uid}/``, ``/feed/{city}/``, ``/feed/geo:{lat};{lng}/``, ``/feed/here/``,
``/search/?keyword=`` and ``/map/bounds?latlng=lat1,lng1,lat2,lng2``, token as ``?token=``. A feed answers
the newest reading published by the simulator's clock (:class:`~naia_backfill.dev.simulators.waqi.clock.
SimClock`), from the deterministic readings of :mod:`~naia_backfill.dev.simulators.waqi.data`; there is no
history. Errors are HTTP 200 ``{"status":"error","data":"Invalid key"}`` / ``"Unknown station"`` /
``"Over quota"`` (more than ``quota`` requests in a minute). Faults come from
:meth:`~naia_backfill.dev.simulators.httpserver.HttpSimulator.inject`; the request log hides the token.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hmac
import os
from collections.abc import Iterable, Iterator

import click
import pyarrow as pa

from naia_backfill.dev.simulators import httpserver
from naia_backfill.dev.simulators.httpserver import HttpSimulator, Request, Response, SlidingWindow
from naia_backfill.dev.simulators.waqi import routes
from naia_backfill.dev.simulators.waqi.clock import SimClock
from naia_backfill.dev.simulators.waqi.data import Reading, Readings, Station
from naia_backfill.dev.simulators.waqi.stations import default_stations
from naia_backfill.schema import SAMPLE_SCHEMA, from_columns

__all__ = ["Reading", "SimClock", "Station", "WaqiSimulator", "main", "samples", "serve"]

_NGINX = "<html>\r\n<head><title>{0}</title></head>\r\n<body>\r\n<center><h1>{0}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"  # noqa: E501


class WaqiSimulator(HttpSimulator):
    """The state of one simulated WAQI API: stations, clock, token, quota, faults and request log.

    ``token`` None accepts any non-empty token. ``quota`` requests per minute (None: unlimited) are counted on
    real time, or on the simulated clock with ``quota_on_clock``.
    """

    server_header = "nginx"

    def __init__(
        self,
        *,
        seed: int = 0,
        stations: list[Station] | None = None,
        clock: SimClock | None = None,
        token: str | None = None,
        quota: int | None = 1_000,
        quota_on_clock: bool = False,
    ) -> None:
        self.clock = clock if clock is not None else SimClock(dt.datetime(2024, 1, 15, tzinfo=dt.UTC))
        window = None
        if quota:
            window = SlidingWindow(quota, 60.0, self.clock.seconds) if quota_on_clock else SlidingWindow(quota, 60.0)
        super().__init__(window)
        self.seed = seed
        self.token = token
        self.readings = Readings(seed)
        self._stations = {s.uid: s for s in (default_stations() if stations is None else stations)}

    @property
    def stations(self) -> list[Station]:
        return list(self._stations.values())

    def station(self, uid: int) -> Station:
        try:
            return self._stations[uid]
        except KeyError:
            raise KeyError(f"no station {uid} in the simulator") from None

    def add_station(self, station: Station) -> None:
        """Add a station, or replace the one with its uid."""
        self._stations = {**self._stations, station.uid: station}

    def remove_station(self, uid: int) -> None:
        stations = dict(self._stations)
        del stations[uid]
        self._stations = stations

    # truth

    def reading(self, uid: int, hour: dt.datetime) -> Reading | None:
        """The reading of observation instant ``hour`` (UTC; a whole local hour of the station), or None if
        that hour is never published."""
        return self.readings.reading(self.station(uid), hour)

    def readings_between(self, uid: int, start: dt.datetime, end: dt.datetime) -> list[Reading]:
        """Every reading observed in ``[start, end)``: what complete hourly collection would store."""
        return self.readings.between(self.station(uid), start, end)

    def latest(self, uid: int, at: dt.datetime | None = None) -> Reading | None:
        """What the feed of ``uid`` serves at ``at`` (default: the clock's now)."""
        return self.readings.latest(self.station(uid), at if at is not None else self.clock.now())

    def polled(self, poll_times: Iterable[dt.datetime], uids: Iterable[int] | None = None) -> list[Reading]:
        """The readings a poller that fetched every station (or ``uids``) at ``poll_times`` has stored: one per
        (station, observation time), sorted by station uid then time."""
        times = list(poll_times)
        found = {}
        for uid in self._stations if uids is None else uids:
            for at in times:
                r = self.latest(uid, at)
                if r is not None:
                    found[(uid, r.time)] = r
        return [found[k] for k in sorted(found)]

    # HTTP

    def handle(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return routes.error("Method not allowed", 405)
        given = request.arg("token") or ""
        accepted = bool(given) if self.token is None else hmac.compare_digest(given.encode(), self.token.encode())
        if not accepted:
            return routes.error(routes.INVALID_KEY)
        return routes.route(self, request)

    def status_response(self, status: int, message: str | None) -> Response:
        title = f"{status} {message or httpserver.phrase(status)}"
        return Response(status, _NGINX.format(title).encode(), content_type="text/html")

    def limited_response(self, retry_after_s: float) -> Response:
        return routes.error(routes.OVER_QUOTA)

    def loggable_query(self, query: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [(k, "***" if k == "token" else v) for k, v in query]


def samples(readings: Iterable[Reading]) -> pa.Table:
    """Readings as canonical sample rows, one per numeric value: point ``<uid>/aqi`` (skipped when ``"-"``)
    and ``<uid>/<iaqi key>``, at the observation instant. Rows by reading, ``aqi`` first, then iaqi keys."""
    points, ts, values = [], [], []
    for r in readings:
        pairs = ([("aqi", r.aqi)] if isinstance(r.aqi, int) else []) + list(r.iaqi.items())
        for key, value in pairs:
            points.append(f"{r.uid}/{key}")
            ts.append(round(r.time.timestamp()) * 1_000_000_000)  # observation instants are whole minutes
            values.append(float(value))
    stamps = pa.array(ts, pa.int64()).cast(pa.timestamp("ns", tz="UTC"))  # not datetimes: pyarrow would load pandas
    batch = from_columns(point=points, ts=stamps, value=values)
    return pa.Table.from_batches([batch], schema=SAMPLE_SCHEMA)


@contextlib.contextmanager
def serve(sim: WaqiSimulator, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Run ``sim`` on ``host:port`` (0 picks a free port); yields the base URL (``http://127.0.0.1:P``)."""
    with httpserver.serve(sim, host, port) as url:
        yield url


@click.command(name="waqi", help=__doc__.split("\n\n")[0])
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback address to bind.")
@click.option("--port", type=int, default=0, help="Port (default: a free one, printed).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--token-env", help="Accept only the token in this environment variable (default: any token).")
@click.option("--quota", type=int, default=1_000, show_default=True, help="Requests per minute; 0: unlimited.")
@click.option("--start", type=click.DateTime(), help="Simulated UTC time to start at (default: now).")
@click.option("--speed", type=float, default=1.0, show_default=True, help="Simulated seconds per real second.")
def main(host: str, port: int, seed: int, token_env: str | None, quota: int, start: dt.datetime | None,
         speed: float) -> None:  # fmt: skip
    token = None
    if token_env:
        token = os.environ.get(token_env)
        if token is None:
            raise click.UsageError(f"${token_env} is not set")
    try:
        httpserver.check_loopback(host)
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    clock = SimClock(start.replace(tzinfo=dt.UTC) if start else dt.datetime.now(dt.UTC), speed)
    sim = WaqiSimulator(seed=seed, clock=clock, token=token, quota=quota or None)
    uids = ", ".join(str(s.uid) for s in sim.stations)
    httpserver.serve_until_stopped(
        serve(sim, host, port),
        lambda url: f"WAQI simulator at {url} (stations {uids}; clock {clock.now():%Y-%m-%dT%H:%M:%SZ} "
        f"x{speed:g}); Ctrl-C to stop",
    )


if __name__ == "__main__":
    main()
