"""Dead-letter headers and when --exit-when-idle may look at the lag; no servers."""

from __future__ import annotations

from naia_backfill.core.consumer.deadletter import dead_letter_headers
from naia_backfill.core.consumer.idle import IdleWatch, partition_lag


def test_dead_letter_headers_keep_the_original_and_say_where_and_why():
    headers = dead_letter_headers([("content-type", b"application/json"), ("empty", None),
                                   ("naia-dlq-reason", b"an older refusal")],
                                  reason="message value is not an Arrow IPC stream: é", topic="naia.datapoints",
                                  partition=3, offset=1234, timestamp_ms=1_700_000_000_000, group="naia-questdb")
    assert headers == [
        ("content-type", b"application/json"),
        ("empty", b""),
        ("naia-dlq-reason", "message value is not an Arrow IPC stream: é".encode()),
        ("naia-dlq-topic", b"naia.datapoints"),
        ("naia-dlq-partition", b"3"),
        ("naia-dlq-offset", b"1234"),
        ("naia-dlq-timestamp", b"1700000000000"),
        ("naia-dlq-group", b"naia-questdb"),
    ]


def test_partition_lag_counts_from_position_then_committed_then_reset():
    assert partition_lag(position=90, committed=50, low=0, high=100) == 10
    assert partition_lag(position=-1001, committed=50, low=0, high=100) == 50  # assigned, not fetched yet
    assert partition_lag(position=-1001, committed=-1001, low=20, high=100) == 80  # new group, earliest
    assert partition_lag(position=-1001, committed=-1001, low=20, high=100, reset_latest=True) == 0
    assert partition_lag(position=-1001, committed=5, low=20, high=100) == 80  # committed offset deleted by retention
    assert partition_lag(position=-1001, committed=-1001, low=0, high=0) == 0  # empty partition


def test_idle_is_never_due_before_the_first_assignment():
    watch = IdleWatch(seconds=1.0)
    assert not watch.due(100.0)
    watch.busy(100.0)  # messages before an assignment cannot happen, but must not start the clock
    assert not watch.due(200.0)
    watch.assigned(200.0)
    assert not watch.due(200.5)
    assert watch.due(201.0)
    watch.busy(201.0)
    assert not watch.due(201.5)
    assert not IdleWatch(seconds=None, since=0.0).due(1e9)
