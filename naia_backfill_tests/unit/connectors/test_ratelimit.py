from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

from naia_backfill.connectors.ratelimit import SharedRateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


def windows_ok(slots: list[float], requests: int, per: float) -> bool:
    slots = sorted(slots)
    return all(slots[i + requests] - slots[i] >= per - 1e-9 for i in range(len(slots) - requests))


def test_slots_respect_the_window_and_follow_back_to_back(tmp_path: Path):
    clock = FakeClock()
    limiter = SharedRateLimiter("pi", 5, 2.0, folder=tmp_path, clock=clock, sleep=clock.sleep)
    slots = []
    for _ in range(23):
        limiter.acquire()
        slots.append(clock.now)
    assert slots[:5] == [1000.0] * 5  # a burst up to the limit goes at once
    assert windows_ok(slots, 5, 2.0)
    assert slots[-1] - slots[0] == 8.0  # 23 requests at 5 per 2 s: no slot wasted


def test_two_limiters_on_one_file_share_the_limit(tmp_path: Path):
    clock = FakeClock()
    a = SharedRateLimiter("pi", 3, 1.0, folder=tmp_path, clock=clock, sleep=clock.sleep)
    b = SharedRateLimiter("pi", 3, 1.0, folder=tmp_path, clock=clock, sleep=clock.sleep)
    waits = [a.reserve(), b.reserve(), a.reserve(), b.reserve(), b.reserve()]
    assert waits == [0.0, 0.0, 0.0, 1.0, 1.0]
    other = SharedRateLimiter("other", 3, 1.0, folder=tmp_path, clock=clock, sleep=clock.sleep)
    assert other.reserve() == 0.0  # another source has its own log


def _worker(folder: str, n: int, out) -> None:  # pragma: no cover - runs in a child process
    limiter = SharedRateLimiter("shared", 10, 0.5, folder=Path(folder))
    for _ in range(n):
        limiter.acquire()
        out.put((limiter.last_slot, time.time()))


def test_processes_together_never_exceed_the_limit(tmp_path: Path):
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(str(tmp_path), 15, out)) for _ in range(3)]
    for p in procs:
        p.start()
    got = [out.get(timeout=60) for _ in range(45)]
    for p in procs:
        p.join(timeout=60)
    slots = [slot for slot, _ in got]
    assert windows_ok(slots, 10, 0.5)  # the booked slots, exactly
    assert all(granted >= slot for slot, granted in got)  # nobody went before its slot
