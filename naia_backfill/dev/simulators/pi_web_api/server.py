"""The simulator's HTTP/1.1 server: threads, keep-alive, faults, rate limit and auth in front of the routes.

Binds loopback addresses only. Status line, headers and small bodies go out in one write with TCP_NODELAY,
so keep-alive clients see no delayed-ACK stalls.
"""

from __future__ import annotations

import contextlib
import logging
import math
import socket
import threading
import time
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

import orjson

from naia_backfill.dev.simulators.pi_web_api.timed_values import VALUE_ERROR_SHAPES
from naia_backfill.dev.simulators.pi_web_api.routes import MAX_BATCH_BODY, PiApi, Response, errors

if TYPE_CHECKING:
    from naia_backfill.dev.simulators.pi_web_api.simulator import PiSimulator

log = logging.getLogger(__name__)

_FAULT_MESSAGES = {
    "500": "[-10722] PINET: Timeout on PI RPC or System Call.",
    "502": "The gateway could not reach the PI Web API service.",
    "503": "The service is unavailable.",
}
RATE_LIMIT_MESSAGE = "Rate limit was reached"


def _retry_after(value: Any) -> list[tuple[str, str]]:
    if value is None:
        return []
    if isinstance(value, int | float):
        return [("Retry-After", str(max(0, math.ceil(value))))]
    return [("Retry-After", str(value))]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms delayed-ACK stalls

    def version_string(self) -> str:
        return "Microsoft-HTTPAPI/2.0"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    def _dispatch(self) -> None:
        started, cpu = time.time(), time.thread_time()
        sim = self.server.sim
        split = urlsplit(self.path)
        path, pairs = unquote(split.path), parse_qsl(split.query, keep_blank_values=True)
        entry = {"method": self.command, "path": path, "query": pairs, "status": 0, "time": started}
        fault = None
        size = int(self.headers.get("Content-Length") or 0)
        if size > MAX_BATCH_BODY:
            self._discard(size)
            resp = errors(413, f"The request body of {size} bytes exceeds the limit of {MAX_BATCH_BODY} bytes.")
        else:
            body = self.rfile.read(size) if size else b""
            if len(self.path) > sim.max_url_length:
                resp = Response(414, b"<h2>Request URL Too Long</h2>", content_type="text/html; charset=us-ascii")
            elif not sim._authorized(self.headers.get("Authorization")):
                resp = sim._challenge()
            else:
                fault = sim._take_fault(self.path)
                try:
                    resp = self._answer(sim, path, pairs, body, fault)
                except Exception as e:  # a simulator bug must not look like a dropped connection
                    log.exception("PI Web API simulator failed on %s", self.path)
                    resp = errors(500, f"The simulator failed: {e!r}")
        cut = fault["kw"].get("fraction", 0.5) if fault and fault["fault"] == "cut" else None
        entry.update(
            status=resp.status, bytes=len(resp.body), duration_s=time.time() - started, cpu_s=time.thread_time() - cpu
        )
        if fault:
            entry["fault"] = fault["fault"]
        sim._record(entry)
        self._send(resp, cut)

    def _discard(self, size: int) -> None:
        """Read and drop an oversized body (so the client sees the 413), or close if it is absurd."""
        if size > 64 * MAX_BATCH_BODY:
            self.close_connection = True
            return
        while size > 0:
            chunk = self.rfile.read(min(size, 1 << 20))
            if not chunk:
                break
            size -= len(chunk)

    def _answer(
        self, sim: PiSimulator, path: str, pairs: list[tuple[str, str]], body: bytes, fault: dict[str, Any] | None
    ) -> Response:
        kind, kw = (fault["fault"], fault["kw"]) if fault else (None, {})
        if kind == "slow":
            time.sleep(float(kw.get("seconds", 5.0)))
        elif kind in ("500", "502", "503"):
            resp = errors(int(kind), kw.get("message", _FAULT_MESSAGES[kind]))
            resp.headers += _retry_after(kw.get("retry_after"))
            return resp
        elif kind == "429":
            resp = errors(429, RATE_LIMIT_MESSAGE)
            resp.headers += _retry_after(kw.get("retry_after", 1 if sim.retry_after else None))
            return resp
        elif kind == "401":
            return sim._challenge()
        elif kind == "webexception":
            message = kw.get("message", "Error occurred during writing of the output stream.")
            return Response(
                200,
                orjson.dumps({"WebException": {"Errors": [message], "StatusCode": int(kw.get("status_code", 500))}}),
            )
        wait = sim._admit()
        if wait is not None:
            return Response(
                429, orjson.dumps({"Errors": [RATE_LIMIT_MESSAGE]}), _retry_after(wait) if sim.retry_after else []
            )
        if not path.lower().startswith("/piwebapi") or path[9:10] not in ("", "/"):
            return errors(404, f"The resource '{path}' was not found.")
        host = self.headers.get("Host") or f"{self.server.server_address[0]}:{self.server.server_address[1]}"
        errors_every = int(kw.get("every", 10)) if kind == "value_errors" else 0
        shapes = tuple(kw.get("shapes", VALUE_ERROR_SHAPES))
        return self.server.api.handle(
            self.command,
            path[9:],
            pairs,
            body,
            f"http://{host}/piwebapi",
            value_errors=errors_every,
            error_shapes=shapes,
        )

    def _send(self, resp: Response, cut: float | None) -> None:
        """Status line, headers and (a small) body in one write: with TCP_NODELAY, no Nagle stalls."""
        if cut is not None:
            self.close_connection = True
        headers = [("Server", self.version_string()), ("Date", self.date_time_string())]
        if resp.content_type:
            headers.append(("Content-Type", resp.content_type))
        headers += [("Content-Length", str(len(resp.body))), *resp.headers]
        if self.close_connection:
            headers.append(("Connection", "close"))
        head = "".join(
            [
                f"{self.protocol_version} {resp.status} {HTTPStatus(resp.status).phrase}\r\n",
                *(f"{k}: {v}\r\n" for k, v in headers),
                "\r\n",
            ]
        ).encode("latin-1")
        body = b"" if self.command == "HEAD" else resp.body if cut is None else resp.body[: int(len(resp.body) * cut)]
        self.log_request(resp.status, len(resp.body))
        try:
            if len(body) < 1 << 16:
                self.wfile.write(head + body)
            else:
                self.wfile.write(head)
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sim: PiSimulator) -> None:
        self.sim = sim
        self.api = PiApi(sim)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        with self._open_lock:
            self._open.add(sock)
        return sock, addr

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._open_lock:
            for sock in list(self._open):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def check_loopback(host: str) -> None:
    if not (host == "localhost" or host.startswith("127.")):
        raise ValueError(f"the simulator binds to loopback addresses only, not {host!r}")


@contextlib.contextmanager
def serve(sim: PiSimulator, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Run ``sim`` on ``host:port`` (0 picks a free port) in background threads; yields the base URL ending in
    ``/piwebapi`` and shuts the server and its open connections down on exit."""
    check_loopback(host)
    server = _Server((host, port), sim)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name=f"pi-web-api-sim:{server.server_address[1]}",
        daemon=True,
    )
    thread.start()
    try:
        yield f"http://{server.server_address[0]}:{server.server_address[1]}/piwebapi"
    finally:
        server.shutdown()
        server.close_connections()
        server.server_close()
        thread.join(timeout=10)
