"""The one way an HTTP source gets its ``httpx.Client``, its rate limit and its retries.

:func:`build_client` turns an :class:`~naia_backfill.settings.HttpSourceBase` and :class:`Credentials` into a
client (base URL, timeouts, user agent, auth, TLS, keep-alive) whose every request -- retries included -- first
waits for the process-wide :class:`RateLimiter` of its source. :class:`Retrier` runs one unit of work ("send a
request, read it, parse one page") under tenacity and retries it on transient failures: 408/429/5xx/520-523,
connection errors, timeouts, cut-off or unparseable bodies, or anything a connector raises as
:class:`TransientError` (a 200 carrying a WebException). 400/401/403/404 and other 4xx fail at once with the
server's message. Nothing here logs or raises a credential: logged URLs carry no query string.
"""

from __future__ import annotations

import email.utils
import importlib.metadata
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import orjson
import tenacity

from naia_backfill.connectors.base import Credentials
from naia_backfill.connectors.ratelimit import RateLimiter, SharedRateLimiter
from naia_backfill.errors import SourceError
from naia_backfill.settings import HttpSourceBase, RateLimit

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 520, 521, 522, 523})
#: Errors that a new attempt may cure. RemoteProtocolError is how httpx reports a body cut off mid-transfer.
RETRY_EXCEPTIONS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError, httpx.DecodingError)


def user_agent() -> str:
    try:
        version = importlib.metadata.version("naia_backfill")
    except importlib.metadata.PackageNotFoundError:
        version = "0"
    return f"naia-backfill/{version}"


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
        return HttpStatusError(
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


_limiters: dict[str, SharedRateLimiter] = {}
_limiters_lock = threading.Lock()


def rate_limiter_for(key: str, limit: RateLimit | None) -> RateLimiter | None:
    """The limiter of a source (keyed by its pool name), shared by its threads in this process and by every
    other process of this machine reading the same source; the first limit registered here wins."""
    if limit is None:
        return None
    with _limiters_lock:
        limiter = _limiters.get(key)
        if limiter is None:
            limiter = _limiters[key] = SharedRateLimiter(key, limit.requests, limit.per_seconds)
        elif (limiter.requests, limiter.per_seconds) != (limit.requests, limit.per_seconds):
            log.warning(
                "source %s: rate limit %s/%ss ignored, the process already limits it to %s/%ss",
                key, limit.requests, limit.per_seconds, limiter.requests, limiter.per_seconds,
            )
        return limiter


class _Wait(tenacity.wait.wait_base):
    """The server's Retry-After (capped, plus a little jitter) if it gave one, else exponential backoff with
    "equal jitter": between half and all of ``initial * 2**(attempt-1)``, capped at ``maximum``."""

    def __init__(self, initial: float, maximum: float, retry_after_max: float, rng: random.Random) -> None:
        self.initial, self.maximum, self.retry_after_max, self.rng = initial, maximum, retry_after_max, rng

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            wait = min(retry_after, self.retry_after_max)
            return wait + self.rng.uniform(0, min(1.0, 0.1 * wait + 0.05))
        base = min(self.maximum, self.initial * 2 ** min(retry_state.attempt_number - 1, 60))
        return base / 2 + self.rng.uniform(0, base / 2)


class Retrier:
    """Runs one unit of work with up to ``max_retries`` retries of transient failures.

    ``call(fn, what)`` returns ``fn()``; a permanent failure raises at once, exhausted retries raise
    :class:`SourceError` naming ``what``, the number of attempts and the last cause.
    """

    def __init__(
        self,
        max_retries: int,
        *,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        retry_after_max: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.max_retries = max_retries
        self._wait = _Wait(backoff_initial, backoff_max, retry_after_max, rng or random.Random())
        self._sleep = sleep

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "attempt %d/%d failed, retrying in %.1fs: %s",
            state.attempt_number, self.max_retries + 1, wait, describe(exc) if exc else "?",
        )

    def call(self, fn: Callable[[], T], what: str) -> T:
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_retries + 1),
            wait=self._wait,
            retry=tenacity.retry_if_exception(is_transient),
            before_sleep=self._log_retry,
            sleep=self._sleep,
            reraise=False,
        )
        try:
            return retrying(fn)
        except tenacity.RetryError as e:
            cause = e.last_attempt.exception()
            attempts = e.last_attempt.attempt_number
            last = describe(cause).removeprefix(f"{what}: ")
            raise SourceError(f"{what}: gave up after {attempts} attempt(s); last error: {last}") from cause
        except SourceError:
            raise
        except httpx.HTTPError as e:
            raise SourceError(f"{what}: {describe(e)}") from e


def retrier_for(settings: HttpSourceBase, **kwargs: object) -> Retrier:
    return Retrier(settings.max_retries, **kwargs)  # type: ignore[arg-type]


class _BearerAuth(httpx.Auth):
    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        request.headers["Authorization"] = self._header
        yield request


def _auth(settings: HttpSourceBase, credentials: Credentials) -> httpx.Auth | None:
    auth = getattr(settings, "auth", None)
    kind = getattr(auth, "kind", "none")
    if kind == "basic":
        if not credentials.username or credentials.password is None:
            raise SourceError(
                f"{settings.base_url}: basic auth needs a user name and a password: set the environment variables "
                f"{auth.username_env} and {auth.password_env}"  # type: ignore[union-attr]
            )
        return httpx.BasicAuth(credentials.username, credentials.password)
    if kind == "bearer":
        if not credentials.token:
            env = auth.token_env  # type: ignore[union-attr]
            raise SourceError(f"{settings.base_url}: bearer auth needs a token: set the environment variable {env}")
        return _BearerAuth(credentials.token)
    return None


def _verify(settings: HttpSourceBase) -> ssl.SSLContext | bool:
    if not settings.verify_tls:
        return False
    if settings.ca_bundle:
        try:
            return ssl.create_default_context(cafile=settings.ca_bundle)
        except (OSError, ssl.SSLError) as e:
            raise SourceError(f"{settings.base_url}: cannot load the CA bundle {settings.ca_bundle}: {e}") from e
    return True


def build_client(
    settings: HttpSourceBase,
    credentials: Credentials,
    *,
    transport: httpx.BaseTransport | None = None,
    limiter: RateLimiter | None = None,
) -> httpx.Client:
    """An ``httpx.Client`` for an HTTP source; every request it sends waits for the source's rate limiter.

    ``transport`` replaces the network (tests pass an ``httpx.MockTransport``); ``limiter`` replaces the
    process-wide limiter of the source.
    """
    limiter = limiter or rate_limiter_for(settings.pool_name, settings.rate_limit)
    hooks = {"request": [lambda _request: limiter.acquire()]} if limiter else {}
    timeout = httpx.Timeout(settings.timeout_seconds, connect=min(settings.timeout_seconds, 30.0))
    return httpx.Client(
        base_url=settings.base_url + "/",
        auth=_auth(settings, credentials),
        headers={"User-Agent": user_agent(), "Accept": "application/json"},
        timeout=timeout,
        verify=_verify(settings),
        limits=httpx.Limits(max_connections=16, max_keepalive_connections=8, keepalive_expiry=60.0),
        follow_redirects=True,
        event_hooks=hooks,
        transport=transport,
    )
