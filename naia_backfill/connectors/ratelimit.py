"""Request-rate limits: per process (:class:`RateLimiter`) and shared by every process of this machine
that reads the same source (:class:`SharedRateLimiter`).

Several Dagster runs of one source (a backfill's chunks, a sensor's runs, a CLI run) each run in their own
process. They share one sliding log of the last ``requests`` request slots, kept in a small file and
guarded by an exclusive ``flock``: each request books the earliest slot that keeps every window of
``per_seconds`` within the limit, then sleeps outside the lock until it comes. The total rate never goes
above the limit, and while requests are waiting the slots are handed out back to back, so the limit is
used in full.

The files live in ``$NAIA_RATE_LIMIT_DIR``, else ``$DAGSTER_HOME/rate_limits``, else the temp folder.
"""

from __future__ import annotations

import bisect
import collections
import fcntl
import os
import re
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path


def next_slot(slots: Sequence[float], now: float, requests: int, per_seconds: float) -> float:
    """The earliest time, not before ``now`` nor before the last booked slot, that keeps every window of
    ``per_seconds`` within ``requests`` slots, given the booked ``slots`` (ascending)."""
    slot = now
    if len(slots) >= requests:
        slot = max(now, slots[-requests] + per_seconds)
    if slots:
        slot = max(slot, slots[-1])
    return slot


def moved(slots: Sequence[float], slot: float, now: float) -> list[float]:
    """``slots`` (ascending) with ``slot`` moved to ``now`` if that is later (and it is still there)."""
    out = list(slots)
    if now <= slot or slot not in out:
        return out
    out.remove(slot)
    bisect.insort(out, now)
    return out


def limits_dir() -> Path:
    explicit = os.environ.get("NAIA_RATE_LIMIT_DIR")
    if explicit:
        return Path(explicit)
    home = os.environ.get("DAGSTER_HOME")
    if home:
        return Path(home) / "rate_limits"
    return Path(tempfile.gettempdir()) / f"naia-rate-limits-{os.getuid()}"


class RateLimiter:
    """At most ``requests`` acquisitions in any window of ``per_seconds`` seconds (a sliding log), in one
    process.

    Each caller reserves the earliest slot that keeps every window within the limit, then sleeps outside the
    lock until it, so concurrent threads are served in order. A token bucket would let up to twice the limit
    through a window that straddles a refill; the log of the last ``requests`` slots cannot.
    """

    def __init__(
        self,
        requests: int,
        per_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if requests < 1 or per_seconds <= 0:
            raise ValueError("a rate limit needs requests >= 1 and per_seconds > 0")
        self.requests, self.per_seconds = requests, per_seconds
        self._clock, self._sleep = clock, sleep
        self._slots: collections.deque[float] = collections.deque(maxlen=requests)
        self._thread_lock = threading.Lock()
        self._held = threading.local()
        self.last_slot: float | None = None

    def held(self) -> float | None:
        """The slot this thread booked last."""
        return getattr(self._held, "slot", None)

    def done(self, slot: float) -> None:
        """The request booked at ``slot`` got its answer now, and counts from now on: the server saw it at the
        latest now, so however late a request reaches the server, no window of the server's holds more than
        the limit."""
        with self._thread_lock:
            self._slots = collections.deque(moved(self._slots, slot, self._clock()), maxlen=self.requests)

    def reserve(self) -> float:
        """Book the next slot and return how long the caller must wait for it."""
        with self._thread_lock:
            now = self._clock()
            slot = next_slot(self._slots, now, self.requests, self.per_seconds)
            self._slots.append(slot)
            self.last_slot = self._held.slot = slot
            return slot - now

    def acquire(self) -> float:
        """Wait for a slot; return the time waited."""
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)
        return wait


class StoredRateLimiter(RateLimiter):
    """A limiter whose log of booked slots lives outside the process, read and rewritten under a lock that every
    process sharing the limit takes: a file (:class:`SharedRateLimiter`, one machine) or a PostgreSQL row
    (:class:`~naia_backfill.connectors.ratelimit_pg.PostgresRateLimiter`, every machine of a cluster)."""

    def _transact(self, change: Callable[[list[float], float], list[float]]) -> None:
        """Under the shared lock: read the slots, ``change(slots, now)``, write what it returns."""
        raise NotImplementedError

    def reserve(self) -> float:
        """Book the next slot and return how long the caller must wait for it."""
        booked: dict[str, float] = {}

        def book(slots: list[float], now: float) -> list[float]:
            slot = next_slot(slots, now, self.requests, self.per_seconds)
            booked.update(slot=slot, now=now)
            return [*slots[-(self.requests - 1):], slot] if self.requests > 1 else [slot]

        with self._thread_lock:
            self._transact(book)
            self.last_slot = self._held.slot = booked["slot"]
        return booked["slot"] - booked["now"]

    def done(self, slot: float) -> None:
        with self._thread_lock:
            self._transact(lambda slots, now: moved(slots, slot, now))


class SharedRateLimiter(StoredRateLimiter):
    """At most ``requests`` slots in any ``per_seconds`` window, across threads and processes of one machine: the
    log of booked slots lives in a file guarded by ``flock``."""

    def __init__(
        self,
        key: str,
        requests: int,
        per_seconds: float,
        *,
        folder: Path | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(requests, per_seconds, clock=clock, sleep=sleep)
        folder = folder or limits_dir()
        folder.mkdir(parents=True, exist_ok=True)
        # One log per source, whatever limit each process was given: point sets of one source get the strictest
        # of their limits when they load (naia_backfill.settings.loading), so every process books the same way.
        self.path = folder / re.sub(r"[^A-Za-z0-9_.-]+", "_", key)

    def _read(self, fd: int) -> list[float]:
        os.lseek(fd, 0, os.SEEK_SET)
        data = os.read(fd, 8 * self.requests + 8)
        n = len(data) // 8
        return list(struct.unpack(f"<{n}d", data[: 8 * n]))

    def _write(self, fd: int, slots: list[float]) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, struct.pack(f"<{len(slots)}d", *slots))

    def _transact(self, change: Callable[[list[float], float], list[float]]) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._write(fd, change(self._read(fd), self._clock()))
        finally:
            os.close(fd)  # closing releases the flock
