"""The shared HTTP client factory: client shape, auth, retries, Retry-After, rate limiting, log hygiene."""

from __future__ import annotations

import email.utils
import itertools
import logging
import random
import threading
import time

import httpx
import pytest

from naia_backfill.connectors import http
from naia_backfill.connectors.base import Credentials
from naia_backfill.errors import PointSetError, SourceError
from naia_backfill.settings import PiWebApiSource, RateLimit

SECRET = "s3cr3t-pa55"


def settings(**kw) -> PiWebApiSource:
    base = {"kind": "pi_web_api", "base_url": "https://pi.example/piwebapi/", "data_server": "PISRV1"}
    return PiWebApiSource.model_validate({**base, **kw})


def client_for(handler, s: PiWebApiSource | None = None, creds: Credentials | None = None, limiter=None):
    return http.build_client(s or settings(), creds or Credentials(), transport=httpx.MockTransport(handler),
                             limiter=limiter)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def retrier(clock: FakeClock, retries: int = 4, **kw) -> http.Retrier:
    return http.Retrier(retries, sleep=clock.sleep, rng=random.Random(1), **kw)


def scripted(*responses):
    """A handler answering with the given responses (or raising the given exceptions) in turn."""
    seen: list[httpx.Request] = []
    todo = iter(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        r = next(todo)
        if isinstance(r, Exception):
            raise r
        return r

    return handler, seen


def get(client: httpx.Client, r: http.Retrier, path: str = "dataservers"):
    return r.call(lambda: http.check_response(client.get(path)).json(), "GET dataservers")


# --- client shape -------------------------------------------------------------------------------------------

def test_client_has_base_url_user_agent_timeouts_and_keepalive():
    handler, seen = scripted(httpx.Response(200, json={"Items": []}))
    client = client_for(handler, settings(timeout_seconds=12.5))
    client.get("dataservers")
    assert str(seen[0].url) == "https://pi.example/piwebapi/dataservers"
    assert seen[0].headers["User-Agent"].startswith("naia-backfill/")
    assert client.timeout.read == 12.5 and client.timeout.connect == 12.5
    assert "Authorization" not in seen[0].headers


def test_basic_auth_header():
    s = settings(auth={"kind": "basic", "username_env": "NAIA_PI_USER", "password_env": "NAIA_PI_PASSWORD"})
    handler, seen = scripted(httpx.Response(200, json={}))
    client_for(handler, s, Credentials(username="svc", password=SECRET)).get("x")
    assert seen[0].headers["Authorization"] == httpx.BasicAuth("svc", SECRET)._auth_header


def test_bearer_auth_header():
    s = settings(auth={"kind": "bearer", "token_env": "NAIA_PI_TOKEN"})
    handler, seen = scripted(httpx.Response(200, json={}))
    client_for(handler, s, Credentials(token=SECRET)).get("x")
    assert seen[0].headers["Authorization"] == f"Bearer {SECRET}"


def test_missing_credentials_name_the_environment_variables():
    s = settings(auth={"kind": "basic", "username_env": "NAIA_PI_USER", "password_env": "NAIA_PI_PASSWORD"})
    with pytest.raises(SourceError, match="NAIA_PI_USER and NAIA_PI_PASSWORD"):
        http.build_client(s, Credentials(username="svc"))
    with pytest.raises(SourceError, match="NAIA_PI_TOKEN"):
        http.build_client(settings(auth={"kind": "bearer", "token_env": "NAIA_PI_TOKEN"}), Credentials())


def test_tls_verification_on_by_default_off_on_request_and_bad_ca_bundle_fails_clearly(tmp_path):
    assert http._verify(settings()) is True
    assert http._verify(settings(verify_tls=False)) is False
    with pytest.raises(PointSetError, match="CA bundle"):
        http._verify(settings(ca_bundle=str(tmp_path / "missing.pem")))


# --- Retry-After --------------------------------------------------------------------------------------------

def test_parse_retry_after_seconds_date_and_garbage():
    now = 1_700_000_000.0
    assert http.parse_retry_after("7", lambda: now) == 7.0
    assert http.parse_retry_after(email.utils.formatdate(now + 30, usegmt=True), lambda: now) == pytest.approx(30)
    assert http.parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), lambda: now) == 0.0
    assert http.parse_retry_after("soon", lambda: now) is None
    assert http.parse_retry_after(None) is None


def test_429_honours_retry_after_seconds():
    clock = FakeClock()
    handler, seen = scripted(
        httpx.Response(429, headers={"Retry-After": "7"}, json={"Errors": ["Rate limit was reached"]}),
        httpx.Response(200, json={"Items": [1]}),
    )
    assert get(client_for(handler), retrier(clock)) == {"Items": [1]}
    assert len(seen) == 2
    assert 7.0 <= clock.slept[0] <= 8.0


def test_429_honours_retry_after_http_date_and_caps_it():
    clock = FakeClock()
    soon = email.utils.formatdate(time.time() + 40, usegmt=True)
    far = email.utils.formatdate(time.time() + 86_400, usegmt=True)
    handler, _ = scripted(httpx.Response(429, headers={"Retry-After": soon}),
                          httpx.Response(503, headers={"Retry-After": far}), httpx.Response(200, json={}))
    get(client_for(handler), retrier(clock, retry_after_max=60.0))
    assert 30 <= clock.slept[0] <= 45  # about 40 s
    assert 60.0 <= clock.slept[1] <= 61.0  # a day, capped


@pytest.mark.parametrize("status", [500, 502, 503, 504, 520, 521, 522, 523])
def test_server_errors_are_retried_with_growing_jittered_backoff(status):
    clock = FakeClock()
    handler, seen = scripted(*[httpx.Response(status)] * 3, httpx.Response(200, json={"ok": 1}))
    assert get(client_for(handler), retrier(clock, backoff_initial=1.0, backoff_max=30.0)) == {"ok": 1}
    assert len(seen) == 4 and len(clock.slept) == 3
    assert [lo <= w <= hi for w, (lo, hi) in zip(clock.slept, [(0.5, 1), (1, 2), (2, 4)], strict=True)] == [True] * 3


def test_backoff_is_capped():
    clock = FakeClock()
    handler, _ = scripted(*[httpx.Response(502)] * 8, httpx.Response(200, json={}))
    get(client_for(handler), retrier(clock, retries=8, backoff_initial=1.0, backoff_max=5.0))
    assert max(clock.slept) <= 5.0 and min(clock.slept[4:]) >= 2.5


def test_connection_errors_timeouts_and_cut_bodies_are_retried():
    clock = FakeClock()
    req = httpx.Request("GET", "https://pi.example/piwebapi/dataservers")
    handler, seen = scripted(httpx.ConnectError("refused", request=req), httpx.ReadTimeout("slow", request=req),
                             httpx.RemoteProtocolError("peer closed connection without sending complete message body",
                                                       request=req),
                             httpx.Response(200, json={"ok": 1}))
    assert get(client_for(handler), retrier(clock)) == {"ok": 1}
    assert len(seen) == 4


def test_transient_error_raised_by_the_unit_is_retried():
    clock = FakeClock()
    calls = itertools.count()

    def unit():
        if next(calls) < 2:
            raise http.TransientError("WebException 503", status=503)
        return "page"

    assert retrier(clock).call(unit, "read page") == "page"
    assert len(clock.slept) == 2


def test_exhausted_retries_name_the_last_cause():
    clock = FakeClock()
    handler, seen = scripted(*[httpx.Response(503, json={"Errors": ["Service busy"]})] * 3)
    with pytest.raises(SourceError, match=r"gave up after 3 attempt\(s\); last error: .*HTTP 503.*Service busy"):
        get(client_for(handler), retrier(clock, retries=2))
    assert len(seen) == 3


def test_unreachable_server_names_the_url():
    clock = FakeClock()

    def handler(request):
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    with pytest.raises(SourceError, match=r"cannot connect to https://pi.example/piwebapi/dataservers"):
        get(client_for(handler), retrier(clock, retries=1))


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413])
def test_client_errors_are_not_retried_and_carry_the_server_message(status):
    clock = FakeClock()
    handler, seen = scripted(httpx.Response(status, json={"Errors": ["The parameter 'maxCount' is too large."]}))
    with pytest.raises(http.HttpStatusError, match="maxCount' is too large") as e:
        get(client_for(handler), retrier(clock))
    assert e.value.status == status
    assert len(seen) == 1 and clock.slept == []


def test_401_says_credentials_and_never_the_secret():
    s = settings(auth={"kind": "basic", "username_env": "NAIA_PI_USER", "password_env": "NAIA_PI_PASSWORD"})
    handler, _ = scripted(httpx.Response(401, text="Unauthorized"))
    client = client_for(handler, s, Credentials(username="svc", password=SECRET))
    with pytest.raises(SourceError, match="refused the credentials") as e:
        get(client, retrier(FakeClock()))
    assert SECRET not in str(e.value)


def test_logs_never_hold_credentials_or_query_strings(caplog):
    s = settings(auth={"kind": "bearer", "token_env": "NAIA_PI_TOKEN"})
    handler, _ = scripted(httpx.Response(503), httpx.Response(200, json={}))
    client = client_for(handler, s, Credentials(token=SECRET))
    with caplog.at_level(logging.DEBUG, logger="naia_backfill"):
        retrier(FakeClock()).call(lambda: http.check_response(client.get("x", params={"token": SECRET})), "GET x")
    assert "retrying" in caplog.text
    assert SECRET not in caplog.text


def test_server_message_forms():
    assert http.server_message(b'{"Errors":["a","b"]}') == "a; b"
    assert http.server_message(b'{"message":"JWT Signature Invalid"}') == "JWT Signature Invalid"
    assert http.server_message(b'{"WebException":{"Errors":["boom"],"StatusCode":502}}') == "boom"
    assert http.server_message(b"<html>Bad Gateway</html>") == "<html>Bad Gateway</html>"


# --- rate limiting ------------------------------------------------------------------------------------------

def max_in_window(slots: list[float], per: float) -> int:
    slots = sorted(slots)
    j, best = 0, 0
    for i, t in enumerate(slots):
        while slots[j] <= t - per:
            j += 1
        best = max(best, i - j + 1)
    return best


def test_rate_limiter_lets_a_burst_through_then_waits_for_the_window():
    clock = FakeClock()
    limiter = http.RateLimiter(3, 10.0, clock=clock, sleep=clock.sleep)
    assert [limiter.acquire() for _ in range(3)] == [0, 0, 0]
    assert limiter.acquire() == 10.0  # the 4th waits until the 1st leaves the window
    clock.now += 25
    assert limiter.acquire() == 0


def test_rate_limiter_never_exceeds_the_limit_in_any_window():
    clock = FakeClock()
    limiter = http.RateLimiter(5, 2.0, clock=clock, sleep=clock.sleep)
    rng = random.Random(7)
    slots = []
    for _ in range(500):
        clock.now += rng.choice([0, 0, 0, 0.01, 0.3, 1.7, 4.0])
        limiter.acquire()
        slots.append(clock.now)
    assert max_in_window(slots, 2.0) == 5


def test_rate_limiter_is_thread_safe():
    clock = FakeClock()  # frozen: every thread only reserves, and the reservations must still spread out
    limiter = http.RateLimiter(4, 1.0, clock=clock, sleep=lambda s: None)
    slots: list[float] = []
    lock = threading.Lock()

    def work():
        for _ in range(50):
            wait = limiter.reserve()
            with lock:
                slots.append(clock.now + wait)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(slots) == 400
    assert max_in_window(slots, 1.0) == 4
    assert max(slots) - clock.now == pytest.approx(99.0)


def test_limiter_registry_is_shared_per_source_and_first_limit_wins(caplog):
    a = http.rate_limiter_for("naia_test_registry_pool", RateLimit(requests=10, per_seconds=1))
    assert http.rate_limiter_for("naia_test_registry_pool", RateLimit(requests=10, per_seconds=1)) is a
    with caplog.at_level(logging.WARNING):
        assert http.rate_limiter_for("naia_test_registry_pool", RateLimit(requests=99, per_seconds=1)) is a
    assert "ignored" in caplog.text
    assert http.rate_limiter_for("naia_test_registry_pool", None) is None
    assert http.rate_limiter_for("naia_test_registry_other", RateLimit(requests=10, per_seconds=1)) is not a


def test_every_request_including_retries_passes_the_limiter():
    clock = FakeClock()
    limiter = http.RateLimiter(2, 60.0, clock=clock, sleep=clock.sleep)
    handler, seen = scripted(httpx.Response(503), httpx.Response(503), httpx.Response(200, json={}))
    get(client_for(handler, limiter=limiter), retrier(clock, backoff_initial=0.001, backoff_max=0.001))
    assert len(seen) == 3
    assert clock.slept[-1] == pytest.approx(60.0 - sum(clock.slept[:-1]), abs=1e-6)  # the third waited the window


def test_factory_uses_the_process_wide_limiter_of_the_source():
    s = settings(rate_limit={"requests": 5, "per_seconds": 1}, rate_limit_key="naia_test_factory_source")
    limiter = http.rate_limiter_for(s.limit_key, s.rate_limit)
    limiter.last_slot = None
    handler, _ = scripted(httpx.Response(200, json={}))
    http.build_client(s, Credentials(), transport=httpx.MockTransport(handler)).get("x")
    assert limiter.last_slot is not None  # the request booked a slot of the source's shared limiter


def test_sources_share_a_limiter_by_address_not_by_pool_or_limit():
    a = settings(base_url="https://PI.example:443/piwebapi", pool="a", rate_limit={"requests": 2, "per_seconds": 1})
    b = settings(base_url="https://pi.example/other", pool="b", rate_limit={"requests": 4, "per_seconds": 2})
    c = settings(base_url="https://pi.example:8443/piwebapi", rate_limit={"requests": 2, "per_seconds": 1})
    assert a.limit_key == b.limit_key == "https://pi.example:443" != c.limit_key
