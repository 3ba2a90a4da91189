"""HTTP answers as typed errors: which statuses and exceptions are worth a retry (429, 5xx, Cloudflare 52x,
timeouts, cut bodies), Retry-After as seconds or an HTTP date, and the server's own message, never a URL's
query string or credentials."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson

from naia_backfill.errors import CredentialsError, SourceError

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 520, 521, 522, 523})
#: Errors that a new attempt may cure. RemoteProtocolError is how httpx reports a body cut off mid-transfer.
RETRY_EXCEPTIONS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError, httpx.DecodingError)


class TransientError(SourceError):
    """A failure worth another attempt; ``retry_after`` is the server's requested wait in seconds, if any."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class HttpStatusError(SourceError):
    """The server answered with a status that no retry will change (400, 401, 403, 404, ...)."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class RefusedCredentialsError(HttpStatusError, CredentialsError):
    """401 or 403: the credentials are wrong or lack the right; retrying will not help."""


def safe_url(url: httpx.URL | str) -> str:
    """The URL without its query string (which may hold a token) nor user info."""
    u = httpx.URL(str(url))
    return str(u.copy_with(query=None, fragment=None, username=None, password=None))


def server_message(content: bytes, limit: int = 500) -> str:
    """The error text of a response body: ``{"Errors":[...]}``, ``{"message":...}``, or the raw text."""
    try:
        doc = orjson.loads(content)
    except orjson.JSONDecodeError:
        doc = None
    if isinstance(doc, dict):
        if "WebException" in doc and isinstance(doc["WebException"], dict):
            doc = doc["WebException"]
        for key in ("Errors", "errors", "message", "Message", "error", "detail"):
            if doc.get(key):
                found = doc[key]
                text = "; ".join(map(str, found)) if isinstance(found, list) else str(found)
                return text[:limit]
    return content[:limit].decode("utf-8", "replace").strip()


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a ``Retry-After`` header given as seconds or as an HTTP date; None if absent."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now())


def status_error(status: int, message: str, what: str, retry_after: float | None = None) -> SourceError:
    """The typed error for an HTTP status (also used for a WebException inside a 200)."""
    phrase = httpx.codes.get_reason_phrase(status) or "error"
    detail = f": {message}" if message else ""
    if status in RETRY_STATUSES:
        return TransientError(f"{what}: HTTP {status} {phrase}{detail}", status=status, retry_after=retry_after)
    if status in (401, 403):
        return RefusedCredentialsError(
            f"{what}: HTTP {status} {phrase}: the server refused the credentials; check the user name and "
            f"password or the token in the environment variables the point set names{detail}",
            status=status,
        )
    return HttpStatusError(f"{what}: HTTP {status} {phrase}{detail}", status=status)


def check_response(response: httpx.Response, what: str | None = None) -> httpx.Response:
    """Return a 2xx response; raise :class:`TransientError` or :class:`HttpStatusError` for anything else."""
    if response.is_success:
        return response
    what = what or f"{response.request.method} {safe_url(response.request.url)}"
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    raise status_error(response.status_code, server_message(response.content), what, retry_after)


def get_body(client: httpx.Client, path: str, params: Any, what: str) -> bytes:
    """GET ``path`` and return its body, raising the typed error of a non-2xx status.

    The body is returned, never stored on the response: an httpx response and its stream refer to each
    other, so a body kept on the response lives until Python's cyclic garbage collector runs — with pages
    of tens of MB that grew a day's peak memory by hundreds of MB.
    """
    with client.stream("GET", path, params=params) as response:
        if not response.is_success:
            response.read()
            check_response(response, what)
        return b"".join(response.iter_bytes())


def describe(exc: BaseException) -> str:
    """A one-line account of a failure, naming the URL but never its query string."""
    if isinstance(exc, SourceError):
        return str(exc)
    try:
        url = safe_url(exc.request.url)  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):
        url = "the server"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect to {url}: {exc}"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out waiting for {url} ({type(exc).__name__})"
    if isinstance(exc, httpx.HTTPError):
        return f"{type(exc).__name__} from {url}: {exc}"
    return f"{type(exc).__name__}: {exc}"


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, (TransientError, *RETRY_EXCEPTIONS))
