"""The HTTP/1.1 server the ACE IoT and WAQI simulators share: threads, keep-alive, faults, rate limit, log.

A simulator subclasses :class:`HttpSimulator` and answers :class:`Request` objects with :class:`Response`
objects; :func:`serve` runs it on a loopback address. Status line, headers and small bodies go out in one
write with TCP_NODELAY, so keep-alive clients see no delayed-ACK stalls; a body given as an iterable of
chunks goes out with ``Transfer-Encoding: chunked`` while it is being produced.

Before the simulator sees a request, the server takes the first matching fault injected with
:meth:`HttpSimulator.inject` and then asks the sliding-window rate limit; every request lands in
:attr:`HttpSimulator.request_log`.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import ipaddress
import logging
import math
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

log = logging.getLogger(__name__)

JSON = "application/json"
#: Faults that are not a status code. A status code (400-599, int or str) answers with that status.
NAMED_FAULTS = ("slow", "cut", "drop")
#: Reason phrases Python's HTTPStatus lacks (Cloudflare's origin errors).
PHRASES = {520: "Unknown Error", 521: "Web Server Is Down", 522: "Connection Timed Out", 523: "Origin Is Unreachable"}
_FAULT_OPTIONS = {"slow": {"seconds"}, "cut": {"fraction"}, "drop": set(), "status": {"message", "retry_after"}}


@dataclasses.dataclass(frozen=True)
class Request:
    """One parsed request: ``path`` is percent-decoded, ``raw_path`` as sent; ``query`` keeps order and repeats."""

    method: str
    target: str
    raw_path: str
    path: str
    query: list[tuple[str, str]]
    headers: Message
    body: bytes = b""

    def arg(self, name: str, default: str | None = None) -> str | None:
        """The first value of query parameter ``name`` (exact name), or ``default``."""
        return next((v for k, v in self.query if k == name), default)


@dataclasses.dataclass
class Response:
    """A status, a body (bytes, or an iterable of chunks sent chunked) and extra headers."""

    status: int
    body: bytes | Iterable[bytes] = b""
    headers: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    content_type: str | None = JSON


def phrase(status: int) -> str:
    """The reason phrase of ``status``."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return PHRASES.get(status, "Unknown")


def retry_after_header(value: float | str | None) -> list[tuple[str, str]]:
    """A Retry-After header: whole seconds (rounded up) for a number, as given for a string (an HTTP-date)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [("Retry-After", value)]
    return [("Retry-After", str(max(0, math.ceil(value))))]


class SlidingWindow:
    """At most ``limit`` admitted requests in any ``window_s`` seconds of ``clock`` (a sliding log)."""

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("a rate limit needs limit >= 1 and window_s > 0")
        self.limit, self.window_s, self.clock = limit, window_s, clock
        self._admitted: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def admit(self) -> float | None:
        """None when the request is admitted (and counted), else the seconds until one would be."""
        with self._lock:
            now = self.clock()
            while self._admitted and self._admitted[0] <= now - self.window_s:
                self._admitted.popleft()
            if len(self._admitted) < self.limit:
                self._admitted.append(now)
                return None
            return max(0.0, self._admitted[0] + self.window_s - now)


@dataclasses.dataclass
class Fault:
    """An injected fault: ``kind`` is a status code as str, or one of :data:`NAMED_FAULTS`."""

    kind: str
    times: int
    path_contains: str | None
    options: dict[str, Any]

    @property
    def status(self) -> int | None:
        return int(self.kind) if self.kind.isdigit() else None


class HttpSimulator:
    """Shared state of a simulator behind :func:`serve`: faults, rate limit and request log.

    Subclasses implement :meth:`handle`, and may override :meth:`status_response` (the body of an injected
    status), :meth:`limited_response` (over the rate limit) and :meth:`loggable_query` (redaction).
    """

    server_header = "naia-simulator"

    def __init__(self, rate_limit: SlidingWindow | None = None) -> None:
        self.rate_limit = rate_limit
        self.request_log: list[dict[str, Any]] = []
        self._faults: list[Fault] = []
        self._state_lock = threading.Lock()

    def handle(self, request: Request) -> Response:
        raise NotImplementedError

    def status_response(self, status: int, message: str | None) -> Response:
        text = message or phrase(status)
        body = f"<html><body><h1>{status} {text}</h1></body></html>".encode()
        return Response(status, body, content_type="text/html")

    def limited_response(self, retry_after_s: float) -> Response:
        return Response(429, b"Too Many Requests", retry_after_header(retry_after_s), content_type="text/plain")

    def loggable_query(self, query: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return query

    def inject(self, fault: int | str, *, times: int = 1, path_contains: str | None = None, **options: Any) -> None:
        """Answer the next ``times`` requests whose URL contains ``path_contains`` (any, if None) with ``fault``.

        A status code (e.g. ``503``): the simulator's error body for it, ``message=`` to word it and
        ``retry_after=`` (seconds, or an HTTP-date string) to add Retry-After. ``"slow"``: wait ``seconds=``
        (default 5) and then answer normally. ``"cut"``: a normal answer whose body stops after ``fraction=``
        (default 0.5) of its bytes, then the connection closes. ``"drop"``: close the connection without an
        answer. Faults queue in order; a request takes the first that matches it, before the rate limit.
        """
        kind = str(fault)
        if kind.isdigit():
            if not 400 <= int(kind) <= 599:
                raise ValueError(f"an injected status must be 400-599, not {kind}")
            allowed = _FAULT_OPTIONS["status"]
        elif kind in NAMED_FAULTS:
            allowed = _FAULT_OPTIONS[kind]
        else:
            raise ValueError(f"unknown fault {fault!r}: a status code or one of {NAMED_FAULTS}")
        unknown = set(options) - allowed
        if unknown:
            raise TypeError(f"fault {kind!r} takes no option(s) {sorted(unknown)}")
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._state_lock:
            self._faults.append(Fault(kind, times, path_contains, dict(options)))

    def clear_faults(self) -> None:
        with self._state_lock:
            self._faults.clear()

    def clear_log(self) -> None:
        with self._state_lock:
            self.request_log.clear()

    def take_fault(self, target: str) -> Fault | None:
        decoded = unquote(target)
        with self._state_lock:
            for f in self._faults:
                if f.path_contains is None or f.path_contains in target or f.path_contains in decoded:
                    f.times -= 1
                    if f.times <= 0:
                        self._faults.remove(f)
                    return f
        return None

    def record(self, entry: dict[str, Any]) -> None:
        with self._state_lock:
            self.request_log.append(entry)


def answer(sim: HttpSimulator, request: Request, fault: Fault | None) -> Response:
    """What the server sends for ``request``, given the fault it took (cut and drop are the server's job)."""
    if fault is not None and fault.status is not None:
        resp = sim.status_response(fault.status, fault.options.get("message"))
        resp.headers += retry_after_header(fault.options.get("retry_after"))
        return resp
    if fault is not None and fault.kind == "slow":
        time.sleep(float(fault.options.get("seconds", 5.0)))
    if sim.rate_limit is not None:
        wait = sim.rate_limit.admit()
        if wait is not None:
            return sim.limited_response(wait)
    try:
        return sim.handle(request)
    except Exception as e:  # a simulator bug must not look like a dropped connection
        log.exception("simulator failed on %s", request.target)
        return Response(500, f"simulator failed: {e!r}".encode(), content_type="text/plain")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms delayed-ACK stalls

    def version_string(self) -> str:
        return self.server.sim.server_header

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request log records every request; the request line may carry a token (WAQI)

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def _dispatch(self) -> None:
        started, cpu = time.time(), time.thread_time()
        sim = self.server.sim
        split = urlsplit(self.path)
        size = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(size) if 0 < size <= 1 << 22 else b""
        if size > 1 << 22:
            self.close_connection = True
        query = parse_qsl(split.query, keep_blank_values=True)
        request = Request(self.command, self.path, split.path, unquote(split.path), query, self.headers, body)
        fault = sim.take_fault(self.path)
        entry: dict[str, Any] = {
            "method": self.command,
            "path": request.path,
            "query": sim.loggable_query(query),
            "status": 0,  # 0 until answered
            "time": started,
            "bytes": None,
            "duration_s": 0.0,
            "cpu_s": 0.0,
        }
        if fault is not None:
            entry["fault"] = fault.kind
        sim.record(entry)  # on arrival (completed below): a slow answer the client gave up on is in the log too
        if fault is not None and fault.kind == "drop":
            entry.update(status=None, bytes=0, duration_s=time.time() - started, cpu_s=time.thread_time() - cpu)
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        resp = answer(sim, request, fault)
        cut = float(fault.options.get("fraction", 0.5)) if fault is not None and fault.kind == "cut" else None
        if cut is not None and not isinstance(resp.body, bytes):
            resp.body = b"".join(resp.body)
        size_known = isinstance(resp.body, bytes)
        entry.update(status=resp.status, bytes=len(resp.body) if isinstance(resp.body, bytes) else None)
        entry.update(duration_s=time.time() - started, cpu_s=time.thread_time() - cpu)  # before sending
        sent = self._send(resp, cut)
        if not size_known:
            entry.update(bytes=sent, duration_s=time.time() - started, cpu_s=time.thread_time() - cpu)

    def _head(self, resp: Response, length: int | None) -> bytes:
        headers = [("Server", self.version_string()), ("Date", self.date_time_string())]
        if resp.content_type:
            headers.append(("Content-Type", resp.content_type))
        headers.append(("Content-Length", str(length)) if length is not None else ("Transfer-Encoding", "chunked"))
        headers += resp.headers
        if self.close_connection:
            headers.append(("Connection", "close"))
        lines = [f"{self.protocol_version} {resp.status} {phrase(resp.status)}\r\n"]
        lines += [f"{k}: {v}\r\n" for k, v in headers]
        return ("".join(lines) + "\r\n").encode("latin-1")

    def _send(self, resp: Response, cut: float | None) -> int:
        """Write the answer; returns the body bytes sent. A cut answer stops early and closes."""
        if cut is not None:
            self.close_connection = True
        try:
            if isinstance(resp.body, bytes):
                body = b"" if self.command == "HEAD" else resp.body
                if cut is not None:
                    body = body[: int(len(body) * cut)]
                head = self._head(resp, len(resp.body))
                if len(body) < 1 << 16:
                    self.wfile.write(head + body)
                else:
                    self.wfile.write(head)
                    self.wfile.write(body)
                return len(body)
            self.wfile.write(self._head(resp, None))
            sent = 0
            for chunk in resp.body:
                if chunk and self.command != "HEAD":
                    _send_parts(self.connection, [b"%x\r\n" % len(chunk), chunk, b"\r\n"])
                    sent += len(chunk)
            self.wfile.write(b"0\r\n\r\n")
            return sent
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return 0


def _send_parts(sock: socket.socket, parts: list[bytes]) -> None:
    """Send ``parts`` in order with scatter-gather writes: a chunk is never copied to be framed."""
    views = [memoryview(p) for p in parts if p]
    while views:
        sent = sock.sendmsg(views)
        while sent and views:
            if sent >= len(views[0]):
                sent -= len(views.pop(0))
            else:
                views[0], sent = views[0][sent:], 0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sim: HttpSimulator) -> None:
        self.sim = sim
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
    """Refuse any bind address but ``localhost`` and 127.0.0.0/8: simulators are never reachable from outside."""
    try:
        loopback = host == "localhost" or ipaddress.IPv4Address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"the simulator binds to loopback addresses only (127.0.0.1), not {host!r}")


@contextlib.contextmanager
def serve(sim: HttpSimulator, host: str = "127.0.0.1", port: int = 0, base_path: str = "") -> Iterator[str]:
    """Run ``sim`` on ``host:port`` (0 picks a free port) in background threads; yields the base URL
    (``http://host:port`` + ``base_path``) and shuts the server and its open connections down on exit."""
    check_loopback(host)
    server = _Server((host, port), sim)
    bound = f"{server.server_address[0]}:{server.server_address[1]}"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"simulator:{bound}", daemon=True
    )
    thread.start()
    try:
        yield f"http://{bound}{base_path}"
    finally:
        server.shutdown()
        server.close_connections()
        server.server_close()
        thread.join(timeout=10)


def serve_until_stopped(server: contextlib.AbstractContextManager[str], banner: Callable[[str], str]) -> None:
    """Enter ``server`` (a :func:`serve` context), print ``banner(url)`` and wait for SIGINT or SIGTERM."""
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with server as url:
            print(banner(url), flush=True)
            while not stop.wait(0.5):
                pass
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
