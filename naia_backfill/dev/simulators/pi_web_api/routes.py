"""The PI Web API resources the simulator serves, as plain functions of (method, path, query, body).

No sockets here: :mod:`naia_backfill.dev.simulators.pi_web_api.server` feeds requests in and writes the answers out,
and ``/batch`` calls back into the same router. Error bodies are ``{"Errors":[...]}``; the messages are
modelled on PI Web API's but not copied from it.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

import orjson

from naia_backfill.dev.simulators.pi_web_api.data import SimPoint, generate
from naia_backfill.dev.simulators.pi_web_api.timed_values import VALUE_ERROR_SHAPES, iso, timed_value_parts
from naia_backfill.dev.simulators.pi_web_api.time_strings import PiTimeError, parse_pi_time

if TYPE_CHECKING:
    from naia_backfill.dev.simulators.pi_web_api.simulator import PiSimulator

JSON = "application/json; charset=utf-8"
PI_SERVER_VERSION = "3.4.440.477"
MAX_BATCH_BODY = 4 * 1024 * 1024


@dataclasses.dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    content_type: str | None = JSON


def errors(status: int, *messages: str) -> Response:
    return Response(status, orjson.dumps({"Errors": list(messages)}))


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.upper().encode("utf-8")).decode("ascii").rstrip("=")


def point_webid(data_server: str, name: str) -> str:
    """WebID 2.0, path-only, of a PI point: ``P1DP`` + base64url of ``SERVER\\NAME`` upper-cased."""
    return "P1DP" + _b64(f"{data_server}\\{name}")


def data_server_webid(data_server: str) -> str:
    """WebID 2.0, path-only, of a data server: ``P1DS`` + base64url of the server name upper-cased."""
    return "P1DS" + _b64(data_server)


def decode_webid(webid: str) -> tuple[str, str]:
    """(marker, upper-cased path payload) of a path-only WebID; ApiError 400 when it is not one."""
    try:
        if len(webid) < 5 or webid[0] != "P" or webid[1] != "1" or webid[2:4] not in ("DP", "DS"):
            raise ValueError
        payload = webid[4:]
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        return webid[2:4], raw.decode("utf-8")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiError(400, f"Unknown or invalid WebID format: '{webid}'.") from None


class Query:
    """Query parameters with case-insensitive names, as ASP.NET binds them."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._values: dict[str, list[str]] = {}
        for key, value in pairs:
            self._values.setdefault(key.lower(), []).append(value)

    def all(self, name: str) -> list[str]:
        return self._values.get(name.lower(), [])

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self.all(name)
        return values[0] if values else default

    def int(self, name: str, default: int, minimum: int = 0) -> int:
        raw = self.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ApiError(400, f"The value '{raw}' is not valid for {name}.") from None
        if value < minimum:
            raise ApiError(400, f"The value '{raw}' is not valid for {name}: it must be at least {minimum}.")
        return value


class PiApi:
    """Routes a request to a resource of one simulator."""

    def __init__(self, sim: PiSimulator) -> None:
        self.sim = sim
        self._routes: list[tuple[re.Pattern[str], str, Callable[..., Response]]] = [
            (re.compile(r"", re.IGNORECASE), "GET", self.home),
            (re.compile(r"dataservers", re.IGNORECASE), "GET", self.data_servers),
            (re.compile(r"dataservers/([^/]+)", re.IGNORECASE), "GET", self.data_server),
            (re.compile(r"dataservers/([^/]+)/points", re.IGNORECASE), "GET", self.points),
            (re.compile(r"points", re.IGNORECASE), "GET", self.point_by_path),
            (re.compile(r"points/([^/]+)", re.IGNORECASE), "GET", self.point),
            (re.compile(r"streams/([^/]+)/recorded", re.IGNORECASE), "GET", self.recorded),
            (re.compile(r"streamsets/recorded", re.IGNORECASE), "GET", self.streamset_recorded),
            (re.compile(r"batch", re.IGNORECASE), "POST", self.batch),
        ]

    def handle(
        self,
        method: str,
        path: str,
        pairs: list[tuple[str, str]],
        body: bytes,
        base: str,
        value_errors: int = 0,
        error_shapes: tuple[str, ...] = VALUE_ERROR_SHAPES,
    ) -> Response:
        """``path`` is the part after ``/piwebapi``; ``base`` the absolute URL of ``/piwebapi``."""
        rel = path.strip("/")
        for pattern, verb, func in self._routes:
            m = pattern.fullmatch(rel)
            if m is None:
                continue
            if method != verb:
                return errors(405, f"The requested resource does not support http method '{method}'.")
            try:
                return func(
                    *m.groups(), query=Query(pairs), base=base, body=body, value_errors=(value_errors, error_shapes)
                )
            except ApiError as e:
                return errors(e.status, str(e))
        return errors(404, f"The resource '{path}' was not found.")

    def home(self, *, base: str, **_: object) -> Response:
        links = {
            "Self": f"{base}/",
            "AssetServers": f"{base}/assetservers",
            "DataServers": f"{base}/dataservers",
            "Search": f"{base}/search",
            "System": f"{base}/system",
        }
        return Response(200, orjson.dumps({"Links": links}))

    def _server_json(self, base: str) -> dict:
        name = self.sim.data_server
        webid = data_server_webid(name)
        return {
            "WebId": webid,
            "Id": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{name.lower()}.pi.naia-backfill.invalid")),
            "Name": name,
            "Path": f"\\\\PIServers[{name}]",
            "IsConnected": True,
            "ServerVersion": PI_SERVER_VERSION,
            "ServerTime": iso(time.time_ns() // 100),
            "Links": {
                "Self": f"{base}/dataservers/{webid}",
                "Points": f"{base}/dataservers/{webid}/points",
                "EnumerationSets": f"{base}/dataservers/{webid}/enumerationsets",
            },
        }

    def data_servers(self, *, query: Query, base: str, **_: object) -> Response:
        name, path = query.get("name"), query.get("path")
        if name is None and path is None:
            return Response(200, orjson.dumps({"Links": {}, "Items": [self._server_json(base)]}))
        wanted = (name if name is not None else str(path)).upper()
        server = self.sim.data_server.upper()
        if wanted in (server, f"\\\\PISERVERS[{server}]", f"\\\\{server}"):
            return Response(200, orjson.dumps(self._server_json(base)))
        raise ApiError(404, f"The PI Data Server '{name if name is not None else path}' was not found.")

    def _check_server(self, webid: str) -> None:
        marker, payload = decode_webid(webid)
        if marker != "DS":
            raise ApiError(400, f"The WebID '{webid}' does not identify a PI Data Server.")
        if payload != self.sim.data_server.upper():
            raise ApiError(404, f"The PI Data Server with WebID '{webid}' was not found.")

    def data_server(self, webid: str, *, base: str, **_: object) -> Response:
        self._check_server(webid)
        return Response(200, orjson.dumps(self._server_json(base)))

    def _point_json(self, point_id: int, p: SimPoint, base: str) -> dict:
        server = self.sim.data_server
        webid = point_webid(server, p.name)
        stream = f"{base}/streams/{webid}"
        return {
            "WebId": webid,
            "Id": point_id,
            "Name": p.name,
            "Path": f"\\\\{server}\\{p.name}",
            "Descriptor": p.descriptor,
            "PointClass": "classic",
            "PointType": p.point_type,
            "DigitalSetName": p.digital_set or "",
            "EngineeringUnits": p.engineering_units,
            "Span": float(len(p.states) if p.digital_set else p.span),
            "Zero": 0.0 if p.digital_set else p.zero,
            "Step": p.step,
            "Future": False,
            "DisplayDigits": -5,
            "Links": {
                "Self": f"{base}/points/{webid}",
                "DataServer": f"{base}/dataservers/{data_server_webid(server)}",
                "Attributes": f"{base}/points/{webid}/attributes",
                "InterpolatedData": f"{stream}/interpolated",
                "RecordedData": f"{stream}/recorded",
                "PlotData": f"{stream}/plot",
                "SummaryData": f"{stream}/summary",
                "Value": f"{stream}/value",
                "EndValue": f"{stream}/end",
            },
        }

    def points(self, webid: str, *, query: Query, base: str, **_: object) -> Response:
        self._check_server(webid)
        pattern = _wildcard(query.get("nameFilter", "*") or "*")
        start = query.int("startIndex", 0)
        count = query.int("maxCount", 1000, minimum=1)
        self._check_max(count)
        matches = [(pid, p) for pid, p in self.sim.catalogue().values() if pattern.fullmatch(p.name)]
        page = [self._point_json(pid, p, base) for pid, p in matches[start : start + count]]
        return Response(200, orjson.dumps({"Links": {}, "Items": page}))

    def _resolve(self, webid: str) -> tuple[int, SimPoint]:
        marker, payload = decode_webid(webid)
        server, _, name = payload.partition("\\")
        entry = self.sim.catalogue().get(name) if marker == "DP" and server == self.sim.data_server.upper() else None
        if entry is None:
            raise ApiError(404, f"A PI Point with WebID '{webid}' was not found.")
        return entry

    def point(self, webid: str, *, base: str, **_: object) -> Response:
        return Response(200, orjson.dumps(self._point_json(*self._resolve(webid), base)))

    def point_by_path(self, *, query: Query, base: str, **_: object) -> Response:
        path = query.get("path")
        if not path:
            raise ApiError(400, "The 'path' parameter is required.")
        server, _, name = path.lstrip("\\").partition("\\")
        entry = self.sim.catalogue().get(name.upper()) if server.upper() == self.sim.data_server.upper() else None
        if entry is None:
            raise ApiError(404, f"PI Point not found '{path}'.")
        return Response(200, orjson.dumps(self._point_json(*entry, base)))

    def _check_max(self, count: int) -> None:
        limit = self.sim.max_returned_items
        if count > limit:
            raise ApiError(
                400,
                f"The maximum number of items requested ({count}) exceeds the maximum number "
                f"of items allowed per call (MaxReturnedItemsPerCall = {limit}).",
            )

    def _range(self, query: Query) -> tuple[int, int, int, bool]:
        boundary = query.get("boundaryType", "Inside") or "Inside"
        if boundary.lower() != "inside":
            raise ApiError(400, f"boundaryType '{boundary}' is not supported by the simulator; use Inside.")
        if query.get("filterExpression"):
            raise ApiError(400, "filterExpression is not supported by the simulator.")
        count = query.int("maxCount", 1000, minimum=1)
        self._check_max(count)
        now = time.time_ns() // 100
        try:
            t0 = parse_pi_time(query.get("startTime", "*-1d") or "*-1d", now)
            t1 = parse_pi_time(query.get("endTime", "*") or "*", now)
        except PiTimeError as e:
            raise ApiError(400, str(e)) from None
        return (t0, t1, count, False) if t0 <= t1 else (t1, t0, count, True)

    def _values(
        self, p: SimPoint, rng: tuple[int, int, int, bool], value_errors: tuple[int, tuple[str, ...]]
    ) -> list[bytes]:
        t0, t1, count, descending = rng
        events = generate(p, self.sim.seed, t0, t1, limit=count, descending=descending)
        return timed_value_parts(events, p, value_errors=value_errors[0], error_shapes=value_errors[1])

    def recorded(self, webid: str, *, query: Query, value_errors: tuple[int, tuple[str, ...]], **_: object) -> Response:
        _, p = self._resolve(webid)
        items = self._values(p, self._range(query), value_errors)
        return Response(200, b"".join([b'{"Links":{},"Items":', *items, b',"UnitsAbbreviation":""}']))

    def streamset_recorded(
        self, *, query: Query, base: str, value_errors: tuple[int, tuple[str, ...]], **_: object
    ) -> Response:
        webids = query.all("webId")
        if not webids:
            raise ApiError(400, "At least one 'webId' parameter is required.")
        for webid in webids:
            decode_webid(webid)
        rng = self._range(query)
        parts = [b'{"Links":{},"Items":[']
        for i, webid in enumerate(webids):
            if i:
                parts.append(b",")
            try:
                _, p = self._resolve(webid)
            except ApiError as e:
                missing = {"WebId": webid, "Name": "", "Path": "", "Links": {}, "Items": [], "UnitsAbbreviation": ""}
                missing["WebException"] = {"Errors": [str(e)], "StatusCode": e.status}
                parts.append(orjson.dumps(missing))
                continue
            head = {
                "WebId": webid,
                "Name": p.name,
                "Path": f"\\\\{self.sim.data_server}\\{p.name}",
                "Links": {"Source": f"{base}/points/{webid}"},
            }
            parts += [orjson.dumps(head)[:-1], b',"Items":', *self._values(p, rng, value_errors)]
            parts.append(b',"UnitsAbbreviation":""}')
        parts.append(b"]}")
        return Response(200, b"".join(parts))

    def batch(self, *, body: bytes, base: str, **_: object) -> Response:
        """Independent GET sub-requests only (no ParentIds, templates or JSONPath); answers 207."""
        try:
            requests = orjson.loads(body)
            if not isinstance(requests, dict):
                raise ValueError
        except ValueError:
            raise ApiError(400, "The batch request body must be a JSON object of requests.") from None
        out = []
        for key, req in requests.items():
            sub = _sub_request(self, req, base) if isinstance(req, dict) else errors(400, "Invalid request.")
            content = sub.body if sub.body else b"null"
            headers = orjson.dumps({"Content-Type": sub.content_type} if sub.content_type else {})
            out.append(
                orjson.dumps(str(key))
                + b':{"Status":'
                + str(sub.status).encode()
                + b',"Headers":'
                + headers
                + b',"Content":'
                + content
                + b"}"
            )
        return Response(207, b"{" + b",".join(out) + b"}")


def _sub_request(api: PiApi, req: dict, base: str) -> Response:
    from urllib.parse import parse_qsl, urlsplit

    if req.get("ParentIds") or req.get("RequestTemplate") or req.get("Parameters"):
        return errors(400, "ParentIds, RequestTemplate and Parameters are not supported by the simulator.")
    method = str(req.get("Method", "GET")).upper()
    resource = urlsplit(str(req.get("Resource", "")))
    path = resource.path
    marker = path.lower().find("/piwebapi")
    if marker < 0:
        return errors(400, f"The resource '{req.get('Resource')}' is not a PI Web API URL.")
    return api.handle(
        method, path[marker + len("/piwebapi") :], parse_qsl(resource.query, keep_blank_values=True), b"", base
    )


def _wildcard(name_filter: str) -> re.Pattern[str]:
    """PI name filters: ``*`` any run, ``?`` one character, case-insensitive."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in name_filter)
    return re.compile(regex, re.IGNORECASE | re.DOTALL)
