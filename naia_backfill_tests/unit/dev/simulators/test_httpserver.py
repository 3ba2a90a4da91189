"""The shared simulator HTTP server's pieces without sockets: rate window, fault queue, loopback check."""

from __future__ import annotations

import pytest

from naia_backfill.dev.simulators.httpserver import (
    HttpSimulator,
    SlidingWindow,
    check_loopback,
    phrase,
    retry_after_header,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_sliding_window_admits_limit_per_window_and_says_how_long_to_wait():
    clock = FakeClock()
    window = SlidingWindow(3, 60.0, clock)
    admitted = []
    for _ in range(3):
        admitted.append(window.admit())
        clock.now += 10
    assert admitted == [None, None, None]  # at 1000, 1010, 1020
    assert window.admit() == pytest.approx(30.0)  # at 1030: the one of 1000 leaves the window at 1060
    assert window.admit() == pytest.approx(30.0)  # refusals are not counted
    clock.now = 1060
    assert window.admit() is None
    assert window.admit() == pytest.approx(10.0)  # the one of 1010 leaves at 1070
    clock.now = 1200
    assert [window.admit() for _ in range(4)] == [None, None, None, pytest.approx(60.0)]
    with pytest.raises(ValueError):
        SlidingWindow(0, 60.0)


def test_faults_validate_match_and_count_down():
    sim = HttpSimulator()
    with pytest.raises(ValueError):
        sim.inject("teapot")
    with pytest.raises(ValueError):
        sim.inject(302)
    with pytest.raises(TypeError):
        sim.inject("cut", seconds=1)
    with pytest.raises(TypeError):
        sim.inject(503, fraction=0.5)
    sim.inject(503, times=2, path_contains="/timeseries", retry_after=7)
    sim.inject("slow", seconds=0.1, path_contains="Gebäude")
    sim.inject("drop")
    assert sim.take_fault("/api/points/a%20b/timeseries").kind == "503"
    taken = sim.take_fault("/api/points/Geb%C3%A4ude/x")  # matched on the percent-decoded target too
    assert taken is not None and taken.kind == "slow" and taken.options == {"seconds": 0.1}
    assert sim.take_fault("/api/sites/").kind == "drop"
    f = sim.take_fault("/api/sites/x/timeseries/paginated")
    assert f is not None and f.status == 503 and f.options["retry_after"] == 7
    assert sim.take_fault("/api/sites/x/timeseries/paginated") is None
    sim.inject(500, times=5)
    sim.clear_faults()
    assert sim.take_fault("/") is None


def test_only_loopback_addresses_are_accepted():
    for host in ("127.0.0.1", "127.3.2.1", "localhost"):
        check_loopback(host)
    for host in ("0.0.0.0", "192.168.1.10", "::1", "::", "example.com", ""):
        with pytest.raises(ValueError, match="loopback"):
            check_loopback(host)


def test_retry_after_and_phrases():
    assert retry_after_header(None) == []
    assert retry_after_header(0.2) == [("Retry-After", "1")]
    assert retry_after_header(3) == [("Retry-After", "3")]
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    assert retry_after_header(date) == [("Retry-After", date)]
    assert phrase(503) == "Service Unavailable" and phrase(522) == "Connection Timed Out"
