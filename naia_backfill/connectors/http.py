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

import importlib.metadata
import logging
import os
import random
import ssl
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import httpx
import tenacity

from naia_backfill.connectors.base import Credentials
from naia_backfill.connectors.ratelimit import RateLimiter, SharedRateLimiter
from naia_backfill.connectors.http_errors import (  # noqa: F401  (the connectors' one import for HTTP errors)
    RETRY_EXCEPTIONS,
    RETRY_STATUSES,
    HttpStatusError,
    RefusedCredentialsError,
    TransientError,
    check_response,
    describe,
    get_body,
    is_transient,
    parse_retry_after,
    safe_url,
    server_message,
    status_error,
)
from naia_backfill.errors import CredentialsError, PointSetError, SourceError
from naia_backfill.settings import HttpSourceBase, RateLimit

log = logging.getLogger(__name__)
T = TypeVar("T")

def user_agent() -> str:
    try:
        version = importlib.metadata.version("naia_backfill")
    except importlib.metadata.PackageNotFoundError:
        version = "0"
    return f"naia-backfill/{version}"


_limiters: dict[str, RateLimiter] = {}
_limiters_lock = threading.Lock()


def _shared_limiter(key: str, limit: RateLimit) -> RateLimiter:
    """Across the cluster when ``NAIA_RATE_LIMIT_DSN`` names a PostgreSQL database, else across this machine."""
    dsn = os.environ.get("NAIA_RATE_LIMIT_DSN")
    if dsn:
        from naia_backfill.connectors.ratelimit_pg import PostgresRateLimiter

        return PostgresRateLimiter(key, limit.requests, limit.per_seconds, dsn)
    return SharedRateLimiter(key, limit.requests, limit.per_seconds)


def rate_limiter_for(key: str, limit: RateLimit | None) -> RateLimiter | None:
    """The limiter of a source (keyed by its address or ``rate_limit_key``), shared by its threads in this
    process and by every other process of this machine reading the same source; the first limit registered
    here wins (point sets of one source already share the strictest limit, see settings.loading)."""
    if limit is None:
        return None
    with _limiters_lock:
        limiter = _limiters.get(key)
        if limiter is None:
            limiter = _limiters[key] = _shared_limiter(key, limit)
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
            raise CredentialsError(
                f"{settings.base_url}: basic auth needs a user name and a password: set the environment variables "
                f"{auth.username_env} and {auth.password_env}"  # type: ignore[union-attr]
            )
        return httpx.BasicAuth(credentials.username, credentials.password)
    if kind == "bearer":
        if not credentials.token:
            env = auth.token_env  # type: ignore[union-attr]
            raise CredentialsError(f"{settings.base_url}: bearer auth needs a token: set the environment variable {env}")
        return _BearerAuth(credentials.token)
    return None


def _verify(settings: HttpSourceBase) -> ssl.SSLContext | bool:
    if not settings.verify_tls:
        return False
    if settings.ca_bundle:
        try:
            return ssl.create_default_context(cafile=settings.ca_bundle)
        except (OSError, ssl.SSLError) as e:
            raise PointSetError(f"{settings.base_url}: cannot load the CA bundle {settings.ca_bundle}: {e}") from e
    return True


def _booking(limiter: RateLimiter) -> Callable[[httpx.Request], None]:
    def hook(request: httpx.Request) -> None:
        limiter.acquire()
        request.extensions["naia_rate_slot"] = limiter.held()

    return hook


def _answered(limiter: RateLimiter) -> Callable[[httpx.Response], None]:
    def hook(response: httpx.Response) -> None:
        slot = response.request.extensions.get("naia_rate_slot")
        if slot is not None:
            limiter.done(slot)

    return hook


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
    limiter = limiter or rate_limiter_for(settings.limit_key, settings.rate_limit)
    hooks = {"request": [_booking(limiter)], "response": [_answered(limiter)]} if limiter else {}
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
