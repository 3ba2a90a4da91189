"""The ACE IoT API resources the simulator serves, as plain functions of a request.

No sockets here: :mod:`naia_backfill.dev.simulators.httpserver` feeds requests in. Errors are
``{"message": "..."}``. Messages are modelled on a Flask API's but not copied from ACE's.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from naia_backfill.dev.simulators.ace_iot import wire
from naia_backfill.dev.simulators.ace_iot.data import AcePoint, AceSite, to_us
from naia_backfill.dev.simulators.ace_iot.model import SiteModel
from naia_backfill.dev.simulators.httpserver import Request, Response

if TYPE_CHECKING:
    from naia_backfill.dev.simulators.ace_iot.simulator import AceIotSimulator

NOT_FOUND = (
    "The requested URL was not found on the server. If you entered the URL manually please check your spelling "
    "and try again."
)
DEFAULT_PAGE_SIZE = 10_000
DEFAULT_PER_PAGE = 100


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def message(status: int, text: str, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, orjson.dumps({"message": text}), headers or [])


def parse_time(name: str, text: str | None) -> int:
    """An ISO 8601 query parameter (naive means UTC) as microseconds since the epoch; 400 when it is not one."""
    if not text:
        raise ApiError(400, f"Missing required parameter {name!r}")
    try:
        return to_us(dt.datetime.fromisoformat(text))
    except ValueError:
        raise ApiError(400, f"Invalid {name} {text!r}: expected an ISO 8601 date-time") from None


def int_arg(request: Request, name: str, default: int, minimum: int = 1) -> int:
    raw = request.arg(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"Invalid {name} {raw!r}: expected an integer") from None
    if value < minimum:
        raise ApiError(400, f"Invalid {name} {raw!r}: must be at least {minimum}")
    return value


def encode_cursor(site: str, lo: int, hi: int, key: tuple[int, int, int]) -> str:
    """Standard base64 (with '+', '/' and '=' padding: clients must URL-encode it) of the scan position."""
    doc = {"site": site, "lo": lo, "hi": hi, "t": key[0], "p": key[1], "j": key[2]}
    return base64.b64encode(orjson.dumps(doc)).decode("ascii")


def decode_cursor(site: str, cursor: str) -> tuple[int, int, tuple[int, int, int]]:
    try:
        doc = orjson.loads(base64.b64decode(cursor, validate=True))
        lo, hi, key = doc["lo"], doc["hi"], (doc["t"], doc["p"], doc["j"])
        if doc["site"] != site or not all(isinstance(v, int) for v in (lo, hi, *key)):
            raise ValueError
    except (ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise ApiError(400, "Invalid cursor") from None
    return lo, hi, key


def _stamp(days: int) -> str:
    return (dt.datetime(2023, 1, 2, 8, tzinfo=dt.UTC) + dt.timedelta(days=days)).isoformat().replace("+00:00", "Z")


def site_item(site_id: int, site: AceSite) -> dict[str, Any]:
    return {
        "id": site_id,
        "name": site.name,
        "client": site.client,
        "nice_name": site.nice_name,
        "address": site.address,
        "geo_location": site.address.rsplit(",", 2)[-2].strip() if site.address.count(",") >= 2 else site.address,
        "mqtt_prefix": f"{site.client}/{site.name}",
        "latitude": site.latitude,
        "longitude": site.longitude,
        "archived": False,
    }


def point_item(pid: int, site: AceSite, p: AcePoint) -> dict[str, Any]:
    """A point as the list endpoints serve it; BACnet details are derived from the name and id."""
    parts = p.name.replace(".points.", "/").split("/")
    device = parts[-2] if len(parts) > 1 else site.name
    interval = max(1, round(p.interval_s))
    return {
        "id": pid,
        "name": p.name,
        "client": site.client,
        "site": site.name,
        "kv_tags": {"equip": device, "unit": "" if p.binary else "°C" if "Temp" in p.name else ""},
        "marker_tags": ["point", "his"] + (["cmd"] if p.binary else ["sensor"]),
        "point_type": "bacnet",
        "collect_enabled": p.collect_enabled,
        "collect_interval": interval,
        "collect_config": {},
        "bacnet_data": {
            "device_address": f"10.{pid % 250}.{pid // 250 % 250}.{pid % 7 + 10}",
            "device_id": 1000 + sum(map(ord, device)) % 9000,
            "object_type": p.object_type,
            "object_index": pid % 4096,
            "object_name": parts[-1],
            "device_name": device,
            "object_description": p.description or parts[-1],
            "device_description": f"{device} controller",
            "scrape_interval": interval,
            "scrape_enabled": p.collect_enabled,
        },
        "created": _stamp(pid % 300),
        "updated": _stamp(pid % 300 + 30),
    }


def list_page(request: Request, entries: list[Any], item: Callable[..., dict[str, Any]], max_per_page: int) -> Response:
    """A page of ``entries`` (each ``item(*entry)`` on the wire) by ``page`` (from 1) and ``per_page``, which is
    silently clamped to ``max_per_page`` (the body says the ``per_page`` used)."""
    page = int_arg(request, "page", 1)
    per_page = min(int_arg(request, "per_page", DEFAULT_PER_PAGE), max_per_page)
    total = len(entries)
    body = {
        "page": page,
        "pages": math.ceil(total / per_page),
        "per_page": per_page,
        "total": total,
        "items": [item(*e) for e in entries[(page - 1) * per_page : page * per_page]],
    }
    return Response(200, orjson.dumps(body))


def site_series(sim: AceIotSimulator, request: Request, site: str) -> Response:
    """``/sites/{site}/timeseries/paginated``: a page of the site's raw samples, all points interleaved."""
    start, end = parse_time("start_time", request.arg("start_time")), parse_time("end_time", request.arg("end_time"))
    if end <= start:
        raise ApiError(400, "end_time must be after start_time")
    if (request.arg("raw_data") or "false").lower() not in ("true", "1"):
        raise ApiError(400, "raw_data=false (5-minute buckets) is not simulated: send raw_data=true")
    size = int_arg(request, "page_size", DEFAULT_PAGE_SIZE)
    if size > sim.max_page_size:
        raise ApiError(400, f"page_size must be at most {sim.max_page_size}")
    model = sim.model(site)
    cursor = request.arg("cursor")
    if cursor:
        lo, hi, key = decode_cursor(site, cursor)
        page, nxt = model.scan(lo, hi, key, size)
    else:
        lo, hi = sim.served_range(start, end)
        page, nxt = model.scan(lo, hi, None, size)
        if not _has_samples(model, page, start, end) and not _any_between(model, start, end):
            raise ApiError(404, f"No data found for site {site} between {request.arg('start_time')} and "
                           f"{request.arg('end_time')}")  # fmt: skip
    next_cursor = encode_cursor(site, lo, hi, nxt) if nxt is not None else None
    parts = wire.page_parts(model, page, next_cursor, nxt is not None)
    return Response(200, parts if len(page) > wire.CHUNK else b"".join(parts))


def _has_samples(model: SiteModel, page: Any, start: int, end: int) -> bool:
    return bool(len(page)) and bool(((page.t >= start) & (page.t < end)).any())


def _any_between(model: SiteModel, start: int, end: int) -> bool:
    key = None
    while True:
        page, key = model.scan(start, end, key, 1)
        if len(page):
            return True
        if key is None:
            return False


def point_series(sim: AceIotSimulator, request: Request, name: str) -> Response:
    """``/points/{name}/timeseries``: every sample of one point in the period, unpaged."""
    start, end = parse_time("start_time", request.arg("start_time")), parse_time("end_time", request.arg("end_time"))
    if end <= start:
        raise ApiError(400, "end_time must be after start_time")
    model = sim.point_model(name)
    if model is None:
        raise ApiError(404, f"Point {name!r} not found")
    lo, hi = sim.served_range(start, end)
    if (hi - lo) * model.samples_per_us > 2 * sim.max_page_size:
        raise ApiError(400, "Too many samples in the period: use a shorter period or the paginated site series")
    samples = model.between(lo, hi)
    if not ((samples.t >= start) & (samples.t < end)).any():
        raise ApiError(404, f"No data found for point {name!r} in the period")
    return Response(200, wire.point_samples(model, samples))


_SITE = re.compile(r"/api/sites/([^/]+)(/points|/configured_points|/timeseries/paginated)?/?")
_POINT = re.compile(r"/api/points/(.+?)(/timeseries)?/?")


def route(sim: AceIotSimulator, request: Request) -> Response:
    """Answer one authorised request."""
    if request.method not in ("GET", "HEAD"):
        return message(405, "The method is not allowed for the requested URL.")
    path = request.path
    try:
        if path in ("/api/sites", "/api/sites/"):
            return list_page(request, sim.site_items(), site_item, sim.max_per_page)
        if m := _SITE.fullmatch(path):
            site, what = m.group(1), m.group(2)
            found_site = sim.site_entry(site)
            if found_site is None:
                raise ApiError(404, f"Site {site!r} not found")
            site_id, site_obj = found_site
            if what is None:
                return Response(200, orjson.dumps(site_item(site_id, site_obj)))
            if what == "/timeseries/paginated":
                return site_series(sim, request, site)
            entries = [(pid, site_obj, p) for pid, p in sim.point_entries(site, what == "/configured_points")]
            return list_page(request, entries, point_item, sim.max_per_page)
        if m := _POINT.fullmatch(path):
            if m.group(2):
                return point_series(sim, request, m.group(1))
            found = sim.find_point(m.group(1))
            if found is None:
                raise ApiError(404, f"Point {m.group(1)!r} not found")
            return Response(200, orjson.dumps(point_item(*found)))
    except ApiError as e:
        return message(e.status, str(e))
    return message(404, NOT_FOUND)
