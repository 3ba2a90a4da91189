"""A deterministic synthetic source for demos, tests and benchmarks.

Every event is a pure function of (seed, point name, sample time), so any day of any point is the same
whenever and however it is fetched. Point kinds, chosen by a hash of the name: most are numeric (a sine
with noise), one in twenty is digital (states Off/On/Fault), one in twenty is a string point. Numeric
streams carry system states (I/O Timeout, No Data, Shutdown, Bad Input), bad and flagged values, and now
and then three events at one timestamp. Generation is vectorised over blocks of points.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import zlib
from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow as pa

from naia_backfill.connectors.base import Credentials, Estimate, Source
from naia_backfill.schema import SAMPLE_SCHEMA
from naia_backfill.settings import SyntheticSource

SYSTEM_STATES = ((246, "I/O Timeout"), (248, "No Data"), (254, "Shutdown"), (255, "Bad Input"))
DIGITAL_STATES = ("Off", "On", "Fault")
STRING_VALUES = ("idle", "running", "cleaning", "fault", "maintenance")
VOCAB = pa.array([name for _, name in SYSTEM_STATES] + list(DIGITAL_STATES) + list(STRING_VALUES))
_SYS_CODES = np.array([code for code, _ in SYSTEM_STATES], dtype=np.int32)
_DIGITAL_BASE, _STRING_BASE = len(SYSTEM_STATES), len(SYSTEM_STATES) + len(DIGITAL_STATES)

#: One event in DUP_EVERY samples is three events at the same timestamp; one in SYSTEM_EVERY is a system
#: state, one in SYSTEM_EVERY is bad (Good=false), one in FLAG_EVERY has each of the other flags.
DUP_EVERY, DUP_EVENTS, SYSTEM_EVERY, FLAG_EVERY = 211, 3, 499, 353
BATCH_ROWS = 131_072

#: splitmix64's multipliers, also used to derive per-point and per-slot hashes.
M1, M2, M3 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB), np.uint64(0x9E3779B97F4A7C15)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a well-spread 64-bit hash of each element."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * M1
        x = (x ^ (x >> np.uint64(27))) * M2
        return x ^ (x >> np.uint64(31))


def point_key(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


def point_kind(name: str) -> str:
    k = point_key(name) % 20
    return "digital" if k == 0 else "string" if k == 1 else "numeric"


class SyntheticConnector(Source):
    def __init__(self, settings: SyntheticSource) -> None:
        self.settings = settings
        width = max(5, len(str(settings.points - 1)))
        self._names = [f"{settings.prefix}{i:0{width}d}" for i in range(settings.points)]
        self._known = set(self._names)
        self._interval_ns = max(1, round(settings.interval_seconds * 1e9))
        self.description = f"synthetic source ({settings.points} points, seed {settings.seed})"

    def list_points(self, name_filter: str = "*") -> list[str]:
        pattern = name_filter.upper()
        return [n for n in self._names if fnmatch.fnmatchcase(n.upper(), pattern)]

    def missing_points(self, names: Sequence[str]) -> list[str]:
        return [n for n in names if n not in self._known]

    def estimate(self, points: int, days: int) -> Estimate:
        per_day = 86_400e9 / self._interval_ns
        factor = 1 + (DUP_EVENTS - 1) / DUP_EVERY
        return Estimate(samples=round(points * days * per_day * factor), requests=0)

    def fetch(self, points: Sequence[str], start: dt.datetime, end: dt.datetime) -> Iterator[pa.RecordBatch]:
        t0 = int(start.timestamp() * 1_000_000) * 1000
        t1 = int(end.timestamp() * 1_000_000) * 1000
        step = self._interval_ns
        first, last = -(-t0 // step), -(-t1 // step)  # grid indices in [t0, t1)
        n = max(0, last - first)
        if n == 0 or not points:
            return
        grid = np.arange(first, last, dtype=np.int64)
        block = max(1, BATCH_ROWS // n)
        for i in range(0, len(points), block):
            yield self._block(list(points[i : i + block]), grid)

    def _block(self, names: list[str], grid: np.ndarray) -> pa.RecordBatch:
        p, n = len(names), len(grid)
        keys = np.array([point_key(nm) for nm in names], dtype=np.uint64)
        with np.errstate(over="ignore"):
            seed = np.uint64(self.settings.seed) * M3
            h = splitmix64((keys[:, None] * M1) ^ (grid.astype(np.uint64)[None, :] * M2) ^ seed).ravel()
        kind = (keys % np.uint64(20)).astype(np.int64)
        is_digital = np.repeat(kind == 0, n)
        is_string = np.repeat(kind == 1, n)
        numeric = ~(is_digital | is_string)

        r1 = (h >> np.uint64(8)) % np.uint64(SYSTEM_EVERY)
        is_system = numeric & (r1 == 0)
        bad = numeric & (r1 == 1)
        pick = (h >> np.uint64(20)).astype(np.int64)

        tsec = grid.astype(np.float64) * (self._interval_ns / 1e9)
        kf = keys.astype(np.float64)
        base = (kf % 1000.0) / 10.0
        amp = 1.0 + (keys >> np.uint64(10)).astype(np.float64) % 50.0
        period = 3600.0 * (1.0 + (keys >> np.uint64(16)).astype(np.float64) % 24.0)
        wave = np.sin(2 * np.pi * tsec[None, :] / period[:, None] + (kf % 360.0)[:, None])
        noise = ((h >> np.uint64(11)).astype(np.float64) / 2.0**53 - 0.5).reshape(p, n)
        value = (base[:, None] + amp[:, None] * (wave + 0.05 * noise)).ravel()
        value = np.where(numeric & ~is_system, value, np.nan)

        text_idx = np.full(p * n, -1, dtype=np.int64)
        text_idx = np.where(is_system, pick % len(SYSTEM_STATES), text_idx)
        digital_state = pick % len(DIGITAL_STATES)
        text_idx = np.where(is_digital, _DIGITAL_BASE + digital_state, text_idx)
        text_idx = np.where(is_string, _STRING_BASE + pick % len(STRING_VALUES), text_idx)
        state = np.where(is_system, _SYS_CODES[pick % len(SYSTEM_STATES)], 0).astype(np.int32)
        state = np.where(is_digital, digital_state, state).astype(np.int32)
        has_state = is_system | is_digital

        flags = (h >> np.uint64(40)) % np.uint64(FLAG_EVERY)
        good = ~(is_system | bad)
        questionable, substituted, annotated = flags == 1, flags == 2, flags == 3

        repeat = np.where((h >> np.uint64(50)) % np.uint64(DUP_EVERY) == 0, DUP_EVENTS, 1)
        rows = int(repeat.sum())
        ts = np.repeat(np.tile(grid * self._interval_ns, p), repeat)
        point_idx = np.repeat(np.repeat(np.arange(p), n), repeat)
        # Events after the first at one timestamp differ, so their order is observable.
        nth = np.arange(rows) - np.repeat(np.cumsum(repeat) - repeat, repeat)

        def rep(a: np.ndarray) -> np.ndarray:
            return np.repeat(a, repeat)

        value = rep(value) + nth * 0.5
        text_idx = rep(text_idx)
        text = VOCAB.take(pa.array(text_idx, mask=text_idx < 0))
        columns = [
            pa.array(names).take(pa.array(point_idx)),
            pa.array(ts, type=pa.int64()).view(pa.timestamp("ns", tz="UTC")),
            pa.array(value, mask=np.isnan(value)),
            text,
            pa.array(rep(state), mask=~rep(has_state)),
            pa.array(rep(is_system)),
            pa.array(rep(good)),
            pa.array(rep(questionable)),
            pa.array(rep(substituted)),
            pa.array(rep(annotated)),
        ]
        return pa.RecordBatch.from_arrays(columns, schema=SAMPLE_SCHEMA)


def build(settings: SyntheticSource, credentials: Credentials | None = None) -> SyntheticConnector:
    """The synthetic source; it needs no credentials."""
    return SyntheticConnector(settings)
