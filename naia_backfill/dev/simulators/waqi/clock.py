"""A simulated UTC clock that tests set and advance, so hours pass in milliseconds."""

from __future__ import annotations

import datetime as dt
import threading
import time


class SimClock:
    """UTC time that runs at ``speed`` times real time from where it was last set (0: stopped, the default
    in tests; 1: real time). ``SimClock()`` starts at the real current time, running at real speed."""

    def __init__(self, start: dt.datetime | None = None, speed: float | None = None) -> None:
        self._lock = threading.Lock()
        self._set(start if start is not None else dt.datetime.now(dt.UTC), speed if speed is not None else (
            0.0 if start is not None else 1.0))  # fmt: skip

    def _set(self, at: dt.datetime, speed: float) -> None:
        if at.tzinfo is None:
            at = at.replace(tzinfo=dt.UTC)
        if speed < 0:
            raise ValueError("clock speed must be >= 0")
        with self._lock:
            self._base, self._speed, self._since = at.astimezone(dt.UTC), speed, time.monotonic()

    def now(self) -> dt.datetime:
        with self._lock:
            return self._base + dt.timedelta(seconds=(time.monotonic() - self._since) * self._speed)

    def seconds(self) -> float:
        """Now as seconds since the epoch (a clock for rate windows)."""
        return self.now().timestamp()

    def set(self, at: dt.datetime, speed: float | None = None) -> None:
        """Jump to ``at`` (naive means UTC); keep running at the current speed unless ``speed`` is given."""
        self._set(at, self._speed if speed is None else speed)

    def advance(self, delta: dt.timedelta | float) -> dt.datetime:
        """Move forward by ``delta`` (a timedelta or seconds); returns the new time."""
        step = delta if isinstance(delta, dt.timedelta) else dt.timedelta(seconds=delta)
        self._set(self.now() + step, self._speed)
        return self.now()

    @property
    def speed(self) -> float:
        return self._speed
