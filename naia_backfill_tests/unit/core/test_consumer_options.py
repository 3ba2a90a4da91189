"""The consumer's QuestDB retry policy and which failures it retries; no servers."""

from __future__ import annotations

import threading

import httpx
import pytest
import tenacity
from questdb import QuestDBError, QuestDBErrorCode

from naia_backfill.core.consumer import RetryPolicy, consumer_config
from naia_backfill.core.consumer.options import is_transient, security_config
from naia_backfill.errors import SinkError


class FakeClock:
    """Stands in for tenacity's clock: time passes only when the policy sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(tenacity.time, "monotonic", fake.monotonic)
    return fake


def refused() -> QuestDBError:
    return QuestDBError(QuestDBErrorCode.SocketError, "Could not flush buffer: io: Connection refused")


def test_waits_grow_exponentially_up_to_the_cap_and_stop_within_the_budget(clock: FakeClock):
    policy = RetryPolicy(budget=60.0, initial=0.5, max_wait=8.0)
    calls = []

    def always_down() -> None:
        calls.append(clock.now)
        raise refused()

    with pytest.raises(QuestDBError):
        policy.retrying("QuestDB at h:1", sleep=clock.sleep)(always_down)
    jitter = min(1.0, policy.initial)
    for i, wait in enumerate(clock.waits):
        low = min(policy.initial * 2**i, policy.max_wait)
        assert low <= wait <= min(policy.initial * 2**i + jitter, policy.max_wait)
    assert clock.waits[-1] == policy.max_wait
    assert sum(clock.waits) < policy.budget  # no wait would end past the budget
    assert sum(clock.waits) + policy.max_wait >= policy.budget  # ... and it used what it had
    assert len(calls) == len(clock.waits) + 1


def test_success_after_failures_returns_the_result(clock: FakeClock):
    outcomes = iter([refused(), refused(), "accepted"])

    def flaky() -> str:
        result = next(outcomes)
        if isinstance(result, Exception):
            raise result
        return result

    assert RetryPolicy(budget=10.0).retrying("x", sleep=clock.sleep)(flaky) == "accepted"
    assert len(clock.waits) == 2


def test_each_wait_is_reported(clock: FakeClock, caplog: pytest.LogCaptureFixture):
    heard: list[float] = []

    def down() -> None:
        raise refused()

    with caplog.at_level("WARNING", logger="naia_backfill.core.consumer"), pytest.raises(QuestDBError):
        RetryPolicy(budget=3.0, initial=1.0, max_wait=1.0).retrying("QuestDB at h:1", on_wait=heard.append,
                                                                     sleep=clock.sleep)(down)
    assert heard == clock.waits
    waits_logged = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(waits_logged) == len(heard)
    assert waits_logged[0].startswith("QuestDB at h:1 failed (attempt 1, 0.0s of the 3s retry budget used)")


def test_zero_budget_fails_at_once(clock: FakeClock):
    def down() -> None:
        raise refused()

    with pytest.raises(QuestDBError):
        RetryPolicy(budget=0.0).retrying("x", sleep=clock.sleep)(down)
    assert clock.waits == []


def test_abort_stops_retrying(clock: FakeClock):
    abort = threading.Event()

    def down() -> None:
        abort.set()  # SIGTERM arrives during the first attempt
        raise refused()

    with pytest.raises(QuestDBError):
        RetryPolicy(budget=100.0).retrying("x", abort, sleep=clock.sleep)(down)
    assert clock.waits == []


def test_permanent_errors_are_not_retried(clock: FakeClock):
    def bad_rows() -> None:
        raise QuestDBError(QuestDBErrorCode.ServerFlushError,
                           'Could not flush buffer: {"code":"invalid","message":"failed to parse line protocol"}')

    with pytest.raises(QuestDBError):
        RetryPolicy(budget=100.0).retrying("x", sleep=clock.sleep)(bad_rows)
    assert clock.waits == []


@pytest.mark.parametrize(("error", "transient"), [
    (QuestDBError(QuestDBErrorCode.SocketError, "io: Connection refused"), True),
    (QuestDBError(QuestDBErrorCode.ProtocolVersionError, "Could not detect server's line protocol version, "
                  "err: io: Connection refused."), True),
    (QuestDBError(QuestDBErrorCode.ServerFlushError, 'Could not flush buffer: {"code":"internal error"}'), True),
    (QuestDBError(QuestDBErrorCode.ServerFlushError, 'Could not flush buffer: {"code":"invalid","line":1}'), False),
    (QuestDBError(QuestDBErrorCode.BadDataFrame, "Timestamp -5 is negative"), False),
    (QuestDBError(QuestDBErrorCode.AuthError, "401"), False),
    (httpx.ConnectError("refused"), True),
    (ValueError("bug"), False),
])
def test_transient_or_permanent(error: BaseException, transient: bool):
    assert is_transient(error) is transient


def test_rest_errors_are_transient_only_when_unreachable():
    try:
        raise SinkError("QuestDB at h:1 is unreachable") from httpx.ConnectError("refused")
    except SinkError as e:
        assert is_transient(e)
    assert not is_transient(SinkError("QuestDB table 'x' exists but lacks columns"))


def test_consumer_config_commits_manually_and_extra_wins():
    conf = consumer_config("b:9092", "g", {"auto.offset.reset": "latest", "sasl.username": "u"})
    assert conf["enable.auto.commit"] is False and conf["isolation.level"] == "read_committed"
    assert conf["auto.offset.reset"] == "latest"
    assert security_config({"sasl.username": "u", "session.timeout.ms": 6000, "ssl.ca.location": "/ca"}) == {
        "sasl.username": "u", "ssl.ca.location": "/ca"}


def test_the_cli_default_dead_letter_topic_is_the_consumers():
    from naia_backfill.cli.consume import DEAD_LETTER_TOPIC as CLI_DEFAULT
    from naia_backfill.core.consumer import DEAD_LETTER_TOPIC

    assert CLI_DEFAULT == DEAD_LETTER_TOPIC == "naia.datapoints.backfill.dlq"
