"""A PI Web API simulator: a real HTTP/1.1 server on 127.0.0.1 speaking PI Web API's wire format.

For the PI connector's tests and benchmarks. It serves ``/piwebapi`` (landing links), ``/dataservers``
(list, ``?name=``, ``?path=``, ``/{webId}``), ``/dataservers/{webId}/points`` (``nameFilter`` with ``*``
and ``?``, ``startIndex``/``maxCount`` paging), ``/points?path=``, ``/points/{webId}``,
``/streams/{webId}/recorded``, ``/streamsets/recorded?webId=..&webId=..`` and ``POST /batch`` (independent
GETs only), from the deterministic history of :mod:`naia_backfill.dev.simulators.pi_web_api.data`. WebIDs are WebID
2.0 path-only. Recorded data: boundaryType Inside only, silently truncated at ``maxCount`` (per stream),
400 above ``max_returned_items``, descending when endTime < startTime.

Behaviour chosen where PI's is undocumented (see the lead's SOURCES.md): a failed login is 401 with
``WWW-Authenticate`` (Basic and/or Bearer) and an empty body; an unknown but well-formed WebID in a stream
set gives that item an empty ``Items`` and a ``WebException`` with StatusCode 404 while the others are
served; a malformed WebID is 400 for the whole request; no gzip. Tests inject faults with
:meth:`PiSimulator.inject` and read :attr:`PiSimulator.request_log`. The HTTP server is in
:mod:`~naia_backfill.dev.simulators.pi_web_api.server`, the resources in :mod:`~naia_backfill.dev.simulators.pi_web_api.routes`.
"""

from __future__ import annotations

import base64
import hmac
import os
import threading
import time
from datetime import datetime
from typing import Any
from urllib.parse import unquote

import click
import pyarrow as pa

from naia_backfill.dev.simulators.httpserver import serve_until_stopped
from naia_backfill.dev.simulators.pi_web_api.data import SimPoint, default_points, generate, to_ticks, truth_table
from naia_backfill.dev.simulators.pi_web_api.routes import Response, data_server_webid, point_webid
from naia_backfill.dev.simulators.pi_web_api.server import check_loopback, serve

__all__ = ["FAULTS", "PiSimulator", "SimPoint", "data_server_webid", "main", "point_webid", "serve"]

FAULTS = ("500", "502", "503", "429", "slow", "cut", "webexception", "value_errors", "401")
_FAULT_OPTIONS = {
    "500": {"message", "retry_after"},
    "502": {"message", "retry_after"},
    "503": {"message", "retry_after"},
    "429": {"retry_after"},
    "slow": {"seconds"},
    "cut": {"fraction"},
    "webexception": {"status_code", "message"},
    "value_errors": {"every", "shapes"},
    "401": set(),
}


class PiSimulator:
    """The state of one simulated PI Web API: its points, faults to inject, rate limit, auth and request log.

    Points and faults may change while a server runs; every request sees the latest state.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        data_server: str = "PISRV1",
        points: list[SimPoint] | None = None,
        max_returned_items: int = 150_000,
        rate_limit_per_s: float | None = None,
        retry_after: bool = True,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        max_url_length: int = 16_384,
    ) -> None:
        if (username is None) != (password is None):
            raise ValueError("username and password go together")
        self.seed = seed
        self.data_server = data_server
        self.max_returned_items = max_returned_items
        self.rate_limit_per_s = rate_limit_per_s
        self.retry_after = retry_after
        self.max_url_length = max_url_length
        self._basic = (username, password) if username is not None else None
        self._token = token
        self._lock = threading.Lock()
        self._catalogue: dict[str, tuple[int, SimPoint]] = {}
        self._next_id = 1
        self._faults: list[dict[str, Any]] = []
        self._tokens = float(max(1.0, rate_limit_per_s or 1.0))
        self._refilled = time.monotonic()
        self.request_log: list[dict[str, Any]] = []
        for p in default_points() if points is None else points:
            self.add_point(p)

    def add_point(self, point: SimPoint) -> None:
        """Add a point, or replace the definition of one with the same name (keeping its Id)."""
        with self._lock:
            catalogue = dict(self._catalogue)
            key = point.name.upper()
            if key in catalogue:
                catalogue[key] = (catalogue[key][0], point)
            else:
                catalogue[key] = (self._next_id, point)
                self._next_id += 1
            self._catalogue = catalogue

    def remove_point(self, name: str) -> None:
        with self._lock:
            catalogue = dict(self._catalogue)
            if catalogue.pop(name.upper(), None) is None:
                raise KeyError(f"no point {name!r} in the simulator")
            self._catalogue = catalogue

    def catalogue(self) -> dict[str, tuple[int, SimPoint]]:
        """Upper-cased name -> (point Id, point), in Id order. A snapshot: do not modify."""
        return self._catalogue

    @property
    def points(self) -> list[SimPoint]:
        return [p for _, p in self._catalogue.values()]

    def point(self, name: str) -> SimPoint:
        try:
            return self._catalogue[name.upper()][1]
        except KeyError:
            raise KeyError(f"no point {name!r} in the simulator") from None

    def webid(self, name: str) -> str:
        """The path-only WebID the server gives point ``name``."""
        return point_webid(self.data_server, self.point(name).name)

    @property
    def data_server_webid(self) -> str:
        return data_server_webid(self.data_server)

    def truth(self, names: list[str], start: datetime, end: datetime) -> pa.Table:
        """Exactly the events the server serves for ``[start, end)`` (naive datetimes are UTC), as canonical
        sample rows: per point in time order, equal timestamps in served order, points in ``names`` order."""
        points = [self.point(n) for n in names]
        t0, t1 = to_ticks(start), to_ticks(end) - 1
        return truth_table([p.name for p in points], [generate(p, self.seed, t0, t1) for p in points], points)

    def inject(self, fault: str, *, times: int = 1, path_contains: str | None = None, **kw: Any) -> None:
        """Answer the next ``times`` requests whose URL contains ``path_contains`` (any, if None) with ``fault``.

        "500"/"502"/"503": ``{"Errors":[message]}`` (``retry_after=`` adds the header); "429": rate-limit reply,
        Retry-After per the simulator's setting unless ``retry_after=`` (seconds, an HTTP-date string, or None
        for no header) is given; "slow": wait ``seconds=`` (default 5) then answer normally; "cut": a 200
        whose body stops after ``fraction=`` (default 0.5) of its Content-Length and the connection closes;
        "webexception": 200 ``{"WebException":{"Errors":[...],"StatusCode":status_code}}``; "value_errors": a
        normal 200 whose every ``every=``-th (default 10) value is an error value (shapes from
        ``pi_json.VALUE_ERROR_SHAPES``, ``shapes=`` to choose); "401": as a failed login.
        Faults queue in order; a request takes the first that matches it.
        """
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {FAULTS}")
        unknown = set(kw) - _FAULT_OPTIONS[fault]
        if unknown:
            raise TypeError(f"fault {fault!r} takes no option(s) {sorted(unknown)}")
        with self._lock:
            self._faults.append({"fault": fault, "times": times, "path_contains": path_contains, "kw": kw})

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def clear_log(self) -> None:
        with self._lock:
            self.request_log.clear()

    def _take_fault(self, target: str) -> dict[str, Any] | None:
        decoded = unquote(target)
        with self._lock:
            for f in self._faults:
                needle = f["path_contains"]
                if needle is None or needle in target or needle in decoded:
                    f["times"] -= 1
                    if f["times"] <= 0:
                        self._faults.remove(f)
                    return f
        return None

    def _admit(self) -> float | None:
        """None if the request is within the rate limit, else the seconds until it would be."""
        rate = self.rate_limit_per_s
        if not rate:
            return None
        with self._lock:
            now = time.monotonic()
            self._tokens = min(max(1.0, rate), self._tokens + (now - self._refilled) * rate)
            self._refilled = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return None
            return (1.0 - self._tokens) / rate

    def _authorized(self, header: str | None) -> bool:
        if self._basic is None and self._token is None:
            return True
        scheme, _, value = (header or "").partition(" ")
        if scheme.lower() == "basic" and self._basic is not None:
            try:
                user, _, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
            return hmac.compare_digest(user, str(self._basic[0])) & hmac.compare_digest(password, str(self._basic[1]))
        if scheme.lower() == "bearer" and self._token is not None:
            return hmac.compare_digest(value.strip(), self._token)
        return False

    def _challenge(self) -> Response:
        headers = []
        if self._basic is not None or self._token is None:
            headers.append(("WWW-Authenticate", f'Basic realm="{self.data_server}"'))
        if self._token is not None:
            headers.append(("WWW-Authenticate", "Bearer"))
        return Response(401, b"", headers, content_type=None)

    def _record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self.request_log.append(entry)


@click.command(name="pi-web-api", help=__doc__.split("\n\n")[0])
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback address to bind.")
@click.option("--port", type=int, default=0, help="Port (default: a free one, printed).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--data-server", default="PISRV1", show_default=True)
@click.option("--max-returned-items", type=int, default=150_000, show_default=True)
@click.option("--rate-limit", type=float, help="Requests per second before 429.")
@click.option("--no-retry-after", is_flag=True, help="Send 429 without Retry-After.")
@click.option("--username", help="Require Basic auth with this user.")
@click.option(
    "--password-env",
    default="NAIA_PI_SIM_PASSWORD",
    show_default=True,
    help="Environment variable holding the Basic password.",
)
@click.option("--token-env", help="Require or accept Bearer auth with the token in this variable.")
def main(
    host: str, port: int, seed: int, data_server: str, max_returned_items: int, rate_limit: float | None,
    no_retry_after: bool, username: str | None, password_env: str, token_env: str | None,
) -> None:  # fmt: skip
    """``naia-backfill simulate pi-web-api``: serve the default catalogue until SIGINT or SIGTERM."""
    password = token = None
    if username is not None:
        password = os.environ.get(password_env)
        if password is None:
            raise click.UsageError(f"--username needs the password in ${password_env}")
    if token_env:
        token = os.environ.get(token_env)
        if token is None:
            raise click.UsageError(f"${token_env} is not set")
    try:
        check_loopback(host)
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    sim = PiSimulator(
        seed=seed,
        data_server=data_server,
        max_returned_items=max_returned_items,
        rate_limit_per_s=rate_limit,
        retry_after=not no_retry_after,
        username=username,
        password=password,
        token=token,
    )
    names = ", ".join(p.name for p in sim.points)
    serve_until_stopped(
        serve(sim, host, port),
        lambda url: f"PI Web API simulator at {url} (data server {sim.data_server}, points: {names}); Ctrl-C to stop",
    )


if __name__ == "__main__":
    main()
