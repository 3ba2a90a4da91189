"""The WAQI (aqicn.org) API resources the simulator serves, as plain functions of a request.

Every answer to a well-formed route is HTTP 200 with ``{"status":"ok","data":...}`` or
``{"status":"error","data":"<message>"}`` (invalid key, unknown station, over quota).
"""

from __future__ import annotations

import calendar
import math
import re
from typing import TYPE_CHECKING, Any

import orjson

from naia_backfill.dev.simulators.httpserver import Request, Response
from naia_backfill.dev.simulators.waqi.data import WAQI_ATTRIBUTION, Reading, Station, utc_offset

if TYPE_CHECKING:
    from naia_backfill.dev.simulators.waqi.simulator import WaqiSimulator

INVALID_KEY, UNKNOWN_STATION, OVER_QUOTA = "Invalid key", "Unknown station", "Over quota"
CITY_URL = "https://aqicn.org/city/"


def ok(data: Any) -> Response:
    return Response(200, orjson.dumps({"status": "ok", "data": data}), content_type="application/json; charset=UTF-8")


def error(text: str, status: int = 200) -> Response:
    return Response(status, orjson.dumps({"status": "error", "data": text}),
                    content_type="application/json; charset=UTF-8")  # fmt: skip


def time_object(station: Station, reading: Reading) -> dict[str, Any]:
    """``{"s","tz","v","iso"}``: local wall clock, its offset, the wall clock encoded as if UTC, ISO."""
    local = reading.local(station)
    wall = local.replace(tzinfo=None)
    return {
        "s": wall.strftime("%Y-%m-%d %H:%M:%S"),
        "tz": utc_offset(local),
        "v": calendar.timegm(wall.timetuple()),
        "iso": local.isoformat(),
    }


def feed_data(sim: WaqiSimulator, station: Station, reading: Reading) -> dict[str, Any]:
    """The ``data`` of a feed answer; keys absent from the reading are absent here too."""
    attributions = [{"url": u, "name": n} for u, n in (*station.attributions, WAQI_ATTRIBUTION)]
    data: dict[str, Any] = {
        "aqi": reading.aqi,
        "idx": station.uid,
        "attributions": attributions,
        "city": {"geo": [station.lat, station.lng], "name": station.name, "url": CITY_URL + station.url},
    }
    if reading.dominentpol is not None:
        data["dominentpol"] = reading.dominentpol
    if reading.iaqi:
        data["iaqi"] = {k: {"v": v} for k, v in reading.iaqi.items()}
    data["time"] = time_object(station, reading)
    if station.forecast:
        data["forecast"] = {"daily": sim.readings.forecast(station, reading)}
    return data


def _distance(station: Station, lat: float, lng: float) -> float:
    """Great-circle distance in km."""
    p1, p2 = math.radians(lat), math.radians(station.lat)
    dp, dl = p2 - p1, math.radians(station.lng - lng)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 12_742 * math.asin(min(1.0, math.sqrt(a)))


def resolve(sim: WaqiSimulator, what: str) -> Station | None:
    """The station a ``/feed/{what}/`` names: ``@uid``, ``geo:lat;lng`` (the nearest), ``here`` or a city."""
    stations = sim.stations
    if what.startswith("@"):
        try:
            return sim.station(int(what[1:]))
        except (ValueError, KeyError):
            return None
    if what.startswith("geo:"):
        try:
            lat, lng = (float(x) for x in what[4:].split(";"))
        except ValueError:
            return None
        return min(stations, key=lambda s: _distance(s, lat, lng)) if stations else None
    if what == "here":
        return stations[0] if stations else None
    return next((s for s in stations if s.city and s.city == what.lower()), None)


def feed(sim: WaqiSimulator, what: str) -> Response:
    station = resolve(sim, what)
    reading = None if station is None else sim.latest(station.uid)
    if station is None or reading is None:
        return error(UNKNOWN_STATION)
    return ok(feed_data(sim, station, reading))


def _aqi_text(reading: Reading | None) -> str:
    return "-" if reading is None else str(reading.aqi)


def search(sim: WaqiSimulator, keyword: str) -> Response:
    """Stations whose name, URL or city contains ``keyword`` (case-insensitive)."""
    word = keyword.strip().lower()
    out = []
    for s in sim.stations:
        if word and (word in s.name.lower() or word in s.url.lower() or word == s.city):
            r = sim.latest(s.uid)
            item: dict[str, Any] = {"uid": s.uid, "aqi": _aqi_text(r)}
            if r is not None:
                t = time_object(s, r)
                item["time"] = {"tz": t["tz"], "stime": t["s"], "vtime": int(r.time.timestamp())}
            item["station"] = {"name": s.name, "geo": [s.lat, s.lng], "url": s.url, "country": s.country}
            out.append(item)
    return ok(out)


def bounds(sim: WaqiSimulator, latlng: str | None) -> Response:
    """Stations inside the box ``lat1,lng1,lat2,lng2`` (corners in any order)."""
    try:
        lat1, lng1, lat2, lng2 = (float(x) for x in (latlng or "").split(","))
    except ValueError:
        return error("Invalid latlng")
    out = []
    for s in sim.stations:
        if min(lat1, lat2) <= s.lat <= max(lat1, lat2) and min(lng1, lng2) <= s.lng <= max(lng1, lng2):
            r = sim.latest(s.uid)
            station: dict[str, Any] = {"name": s.name}
            if r is not None:
                station["time"] = r.local(s).isoformat()
            out.append({"lat": s.lat, "lon": s.lng, "uid": s.uid, "aqi": _aqi_text(r), "station": station})
    return ok(out)


_FEED = re.compile(r"/feed/([^/]+)/?")


def route(sim: WaqiSimulator, request: Request) -> Response:
    """Answer one request whose token was accepted."""
    path = request.path
    if m := _FEED.fullmatch(path):
        return feed(sim, m.group(1))
    if path in ("/search", "/search/"):
        return search(sim, request.arg("keyword") or "")
    if path in ("/map/bounds", "/map/bounds/"):
        return bounds(sim, request.arg("latlng"))
    return error("Unknown route", 404)
