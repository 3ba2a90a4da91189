"""The QuestDB writer pipeline with a stand-in ILP sender: order, acknowledgement, retries, failures; no servers."""

from __future__ import annotations

import threading

import pytest
from questdb import QuestDBError, QuestDBErrorCode

from naia_backfill.core.consumer import QuestDBUnavailable, RetryPolicy
from naia_backfill.core.consumer.batching import PendingBatch, WriteJob, decode_message
from naia_backfill.core.consumer.writer import QuestDBWriter
from naia_backfill.errors import SinkError
from naia_backfill.sinks.kafka_messages import encode_value, iter_messages
from naia_backfill_tests.unit.sinks.test_kafka import mixed_batch


class FakeBuffer:
    def __init__(self) -> None:
        self.rows = 0

    def dataframe(self, frame, **kwargs) -> None:
        self.rows += len(frame)

    def __len__(self) -> int:
        return self.rows

    def clear(self) -> None:
        self.rows = 0


class FakeSender:
    """Refuses the first ``failures`` flushes with ``error``; records the rows of each accepted flush."""

    def __init__(self, failures: int = 0, error: QuestDBError | None = None) -> None:
        self.failures, self.error = failures, error
        self.accepted: list[int] = []
        self.attempts = 0

    def establish(self) -> None:
        pass

    def new_buffer(self) -> FakeBuffer:
        return FakeBuffer()

    def flush(self, buf: FakeBuffer, clear: bool = True) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise self.error or QuestDBError(QuestDBErrorCode.SocketError, "io: Connection refused")
        self.accepted.append(len(buf))

    def close(self, flush: bool = True) -> None:
        pass


def writer_with(sender: FakeSender, budget: float = 5.0,
                abort: threading.Event | None = None) -> QuestDBWriter:
    w = QuestDBWriter("127.0.0.1:9", "t", RetryPolicy(budget=budget, initial=0.01, max_wait=0.02),
                      abort or threading.Event(), depth=1, connect=lambda conf: sender)
    w.start()
    return w


def job(first_offset: int) -> WriteJob:
    pending = PendingBatch()
    for i, (point, mb) in enumerate(iter_messages([mixed_batch()])):
        pending.add(("t", 0, first_offset + i), decode_message(point.encode(), encode_value(mb), None))
    return pending.job()


def test_jobs_are_acknowledged_in_order_after_questdb_accepted_them():
    sender = FakeSender(failures=2)  # QuestDB refuses connections twice, then accepts
    w = writer_with(sender)
    jobs = [job(10 * i) for i in range(5)]
    for j in jobs:
        assert w.put(j, timeout=10)
    assert w.wait_idle(timeout=30)
    acked = w.acknowledged()
    w.close()
    assert [a.offsets for a in acked] == [j.offsets for j in jobs]
    assert sender.accepted == [7] * 5  # each job one request, none lost or sent twice after success
    assert w.retry_waits == 2 and w.error is None


def test_a_job_without_rows_is_acknowledged_without_a_request():
    sender = FakeSender()
    w = writer_with(sender)
    pending = PendingBatch()
    pending.skip(("t", 0, 3))
    assert w.put(pending.job(), timeout=10) and w.wait_idle(timeout=30)
    assert [a.offsets for a in w.acknowledged()] == [{("t", 0): 4}]
    w.close()
    assert sender.accepted == []


def test_exhausted_budget_fails_the_writer_and_acknowledges_nothing():
    w = writer_with(FakeSender(failures=10**9), budget=0.2)
    w.put(job(0), timeout=10)
    assert not w.wait_idle(timeout=30)
    assert isinstance(w.error, QuestDBUnavailable)
    assert "within the retry budget of 0s (--questdb-retry-seconds)" in str(w.error)
    assert w.acknowledged() == []
    with pytest.raises(QuestDBUnavailable):
        w.put(job(10))
    w.close()


def test_rows_questdb_refuses_fail_at_once():
    refusal = QuestDBError(QuestDBErrorCode.ServerFlushError, 'Could not flush buffer: {"code":"invalid"}')
    sender = FakeSender(failures=1, error=refusal)
    w = writer_with(sender)
    w.put(job(0), timeout=10)
    assert not w.wait_idle(timeout=30)
    assert type(w.error) is SinkError and "refused 7 rows for 't'" in str(w.error)
    assert sender.attempts == 1
    w.close()


def test_abort_stops_retrying_and_says_offsets_stay_uncommitted():
    abort = threading.Event()
    w = writer_with(FakeSender(failures=10**9), budget=600, abort=abort)
    w.put(job(0), timeout=10)
    abort.set()
    assert not w.wait_idle(timeout=30)
    assert "stopped while QuestDB" in str(w.error) and "offsets stay uncommitted" in str(w.error)
    w.close()
