"""The deterministic history behind the PI Web API simulator.

A point's events are a pure function of (seed, point name, grid slot): slot ``k`` of a point with interval
``I`` holds zero, one or several events at ``k*I`` plus an optional sub-interval offset, so any time range
is generated on demand (vectorised) and always yields the same events in the same order, whichever range
or page asked for them. Times are 100 ns ticks since the Unix epoch, as PI stores them.

What a point can carry: numbers (rounded to the decimals its type serialises with), digital states of a
state set, strings, system states (246 I/O Timeout, 248 No Data, 254 Shutdown, 255 Bad Input; Good false),
numbers flagged bad, Questionable/Substituted/Annotated flags, missing slots, whole empty UTC days and
bursts of events sharing one timestamp with different values.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import zlib
from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from naia_backfill.connectors.synthetic import M1 as _M1
from naia_backfill.connectors.synthetic import M2 as _M2
from naia_backfill.connectors.synthetic import M3 as _M3
from naia_backfill.connectors.synthetic import splitmix64
from naia_backfill.schema import SAMPLE_SCHEMA

TICKS_PER_SECOND = 10_000_000
TICKS_PER_DAY = 86_400 * TICKS_PER_SECOND
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

KIND_NUMBER, KIND_DIGITAL, KIND_STRING, KIND_SYSTEM = 0, 1, 2, 3
POINT_TYPES = ("Float16", "Float32", "Float64", "Int16", "Int32", "Digital", "String")
#: Decimals each numeric type is served with: few enough significant digits that a Float32 value written
#: as the shortest decimal that round-trips (what PI does) is exactly this decimal.
TYPE_DECIMALS = {"Float16": 2, "Float32": 3, "Float64": None, "Int16": 0, "Int32": 0}
SYSTEM_STATES = {
    246: "I/O Timeout",
    248: "No Data",
    249: "Calc Failed",
    253: "Pt Created",
    254: "Shutdown",
    255: "Bad Input",
}
SERVED_SYSTEM_CODES = np.array([246, 248, 254, 255], dtype=np.int32)
DIGITAL_SETS: dict[str, tuple[str, ...]] = {
    "Modes": ("MANUAL", "AUTO", "CASCADE", "PROGRAM", "PROG-AUTO"),
    "BatchAct": ("Inactive", "Active"),
    "PumpState": ("Stopped", "Starting", "Running", "Stopping", "Tripped"),
}
#: String-point vocabulary, with values that need JSON escaping, non-ASCII text and an empty string.
STRING_VALUES = (
    "idle",
    "running",
    "cleaning-in-place",
    'Batch "B-17" started',
    "Säule 3 \\ Ventil 2",
    "operator note:\nchecked",
    "",
    "温度 OK",
)

_PPM = np.uint64(1_000_000)


def _field(h: np.ndarray, shift: int) -> np.ndarray:
    """20 bits of a hash, as uint32 (cheap to take modulo a small number)."""
    return ((h >> np.uint64(shift)) & np.uint64(0xFFFFF)).astype(np.uint32)


_QUANTA = np.array([1, 100, 10_000, 1_000_000], dtype=np.int64)


def _salt(h: np.ndarray, salt: int) -> np.ndarray:
    with np.errstate(over="ignore"):
        return splitmix64(h ^ (np.uint64(salt) * _M3))


@dataclasses.dataclass(frozen=True)
class SimPoint:
    """One simulated PI point and the shape of its history.

    ``interval_s`` is the grid step; ``jitter`` moves each event to a random instant inside its slot (7
    fractional digits); ``gap_fraction`` drops slots; ``empty_day_fraction`` drops whole UTC days;
    ``burst_every`` makes one slot in N hold 2..``burst_size`` events at the same timestamp. ``system_every``,
    ``bad_every`` and ``flag_every`` make one event in N a system state, a bad number (Good false), or set
    each of Questionable/Substituted/Annotated; 0 turns one off.
    """

    name: str
    point_type: str = "Float32"
    interval_s: float = 60.0
    digital_set: str | None = None
    descriptor: str = ""
    engineering_units: str = ""
    zero: float = 0.0
    span: float = 100.0
    period_s: float = 43_200.0
    jitter: bool = False
    gap_fraction: float = 0.0
    empty_day_fraction: float = 0.0
    burst_every: int = 0
    burst_size: int = 3
    system_every: int = 499
    bad_every: int = 997
    flag_every: int = 353

    def __post_init__(self) -> None:
        if self.point_type not in POINT_TYPES:
            raise ValueError(f"point {self.name!r}: point_type must be one of {POINT_TYPES}")
        if (self.point_type == "Digital") != (self.digital_set is not None):
            raise ValueError(f"point {self.name!r}: digital_set is required for, and only for, Digital points")
        if self.digital_set is not None and self.digital_set not in DIGITAL_SETS:
            raise ValueError(f"point {self.name!r}: unknown digital set {self.digital_set!r}; see DIGITAL_SETS")
        if not self.name or "\\" in self.name or any(c in self.name for c in "*?"):
            raise ValueError(f"invalid PI point name {self.name!r}")
        if round(self.interval_s * TICKS_PER_SECOND) < 1:
            raise ValueError(f"point {self.name!r}: interval_s must be at least 100 ns")
        if self.burst_size < 2:
            raise ValueError(f"point {self.name!r}: burst_size must be at least 2")

    @property
    def interval_ticks(self) -> int:
        return round(self.interval_s * TICKS_PER_SECOND)

    @property
    def decimals(self) -> int | None:
        return TYPE_DECIMALS.get(self.point_type)

    @property
    def states(self) -> tuple[str, ...]:
        return DIGITAL_SETS[self.digital_set] if self.digital_set else ()

    @property
    def step(self) -> bool:
        return self.point_type in ("Digital", "String", "Int16", "Int32")


def default_points() -> list[SimPoint]:
    """The catalogue a :class:`PiSimulator` serves when given no points."""
    return [
        SimPoint("SINUSOID", descriptor="12 Hour Sine Wave", jitter=True, gap_fraction=0.1),
        SimPoint("SINUSOIDU", descriptor="12 Hour Sine Wave", interval_s=300.0),
        SimPoint(
            "CDT158",
            descriptor="Light Naphtha End Point",
            engineering_units="DEG. C",
            interval_s=5.0,
            zero=50.0,
            span=200.0,
            period_s=7_200.0,
        ),
        SimPoint("CDM158", "Digital", 120.0, "Modes", descriptor="Light Naphtha End Point Control"),
        SimPoint(
            "BA:TEMP.1",
            descriptor="Batch reactor temperature",
            engineering_units="DEG C",
            interval_s=10.0,
            zero=20.0,
            span=80.0,
            period_s=5_400.0,
        ),
        SimPoint("BA:ACTIVE.1", "Digital", 600.0, "BatchAct", descriptor="Batch active", gap_fraction=0.3),
        SimPoint("PUMP101.STATE", "Digital", 30.0, "PumpState", descriptor="Feed pump state"),
        SimPoint("FLOW101.F64", "Float64", 15.0, descriptor="Feed flow", engineering_units="m3/h", span=400.0),
        SimPoint("LEVEL101.I16", "Int16", 60.0, descriptor="Tank level", engineering_units="mm", span=3_000.0),
        SimPoint("COUNT101.I32", "Int32", 20.0, descriptor="Bottle counter", zero=1e6, span=1e6, period_s=86_400.0),
        SimPoint("OPERATOR.NOTE", "String", 900.0, descriptor="Operator messages", gap_fraction=0.5),
        SimPoint(
            "SPARSE.LAB",
            descriptor="Lab sample, some days none",
            interval_s=3_600.0,
            gap_fraction=0.6,
            empty_day_fraction=0.4,
        ),
        SimPoint(
            "BURST.VALVE",
            descriptor="Valve position, bursts at one timestamp",
            interval_s=60.0,
            burst_every=4,
            burst_size=5,
        ),
        SimPoint(
            "FAST.1HZ",
            descriptor="1 s vibration, over 86400 events a day",
            interval_s=1.0,
            burst_every=50,
            period_s=600.0,
        ),
        SimPoint("FAST.10HZ", descriptor="100 ms signal", interval_s=0.1, period_s=60.0),
        SimPoint("NODATA.1", descriptor="Never recorded", empty_day_fraction=1.0),
    ]


@dataclasses.dataclass(frozen=True)
class Events:
    """Columnar events of one point, in served order."""

    ticks: np.ndarray  # int64, 100 ns ticks since the Unix epoch
    kind: np.ndarray  # uint8 KIND_*
    number: np.ndarray  # float64; NaN unless KIND_NUMBER
    code: np.ndarray  # int32: digital state value, system state code or STRING_VALUES index
    good: np.ndarray
    questionable: np.ndarray
    substituted: np.ndarray
    annotated: np.ndarray

    def __len__(self) -> int:
        return len(self.ticks)

    def take(self, index: np.ndarray | slice) -> Events:
        return Events(*(getattr(self, f.name)[index] for f in dataclasses.fields(self)))

    @staticmethod
    def concat(parts: list[Events]) -> Events:
        if len(parts) == 1:
            return parts[0]
        return Events(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in dataclasses.fields(Events)))


def point_base(seed: int, name: str) -> np.uint64:
    key = np.uint64(zlib.crc32(name.upper().encode("utf-8")))
    with np.errstate(over="ignore"):
        return splitmix64(np.array([key * _M1 ^ np.uint64(seed & 0xFFFFFFFFFFFFFFFF) * _M3], dtype=np.uint64))[0]


def _slot_events(p: SimPoint, base: np.uint64, k: np.ndarray) -> Events:
    """Every event of the slots ``k`` (ascending), in served order."""
    interval = p.interval_ticks
    with np.errstate(over="ignore"):
        h = splitmix64(k.astype(np.uint64) * _M2 ^ base)
    present = np.ones(len(k), dtype=bool)
    if p.gap_fraction > 0:
        present &= _salt(h, 1) % _PPM >= np.uint64(round(p.gap_fraction * 1e6))
    if p.empty_day_fraction > 0:
        day = (k * interval) // TICKS_PER_DAY
        with np.errstate(over="ignore"):
            dh = splitmix64(day.astype(np.uint64) * _M1 ^ base)
        present &= dh % _PPM >= np.uint64(round(p.empty_day_fraction * 1e6))
    k, h = k[present], h[present]
    ticks = k * interval
    if p.jitter and interval > 1:
        hj = _salt(h, 2)
        quantum = np.minimum(_QUANTA[(hj & np.uint64(3)).astype(np.int64)], interval)
        ticks = ticks + ((hj >> np.uint64(2)) % (interval // quantum).astype(np.uint64)).astype(np.int64) * quantum
    mult = np.ones(len(k), dtype=np.int64)
    if p.burst_every:
        hb = _salt(h, 4)
        burst = _field(hb, 0) % p.burst_every == 0
        mult[burst] = 2 + (_field(hb[burst], 20) % (p.burst_size - 1)).astype(np.int64)
    n = int(mult.sum())
    starts = np.cumsum(mult) - mult
    j = np.arange(n, dtype=np.int64) - np.repeat(starts, mult)
    ticks, k, h = np.repeat(ticks, mult), np.repeat(k, mult), np.repeat(h, mult)
    with np.errstate(over="ignore"):
        he = splitmix64(h ^ (j.astype(np.uint64) + np.uint64(1)) * _M1)

    h2, h3 = _salt(he, 7), _salt(he, 8)
    kind = np.full(n, KIND_NUMBER, dtype=np.uint8)
    number = np.full(n, np.nan)
    code = np.zeros(n, dtype=np.int32)
    if p.point_type == "Digital":
        kind[:] = KIND_DIGITAL
        hold = splitmix64((k // 7).astype(np.uint64) * _M2 ^ base)
        code[:] = ((hold % np.uint64(len(p.states))).astype(np.int64) + j) % len(p.states)
    elif p.point_type == "String":
        kind[:] = KIND_STRING
        code[:] = _field(h3, 40) % len(STRING_VALUES)
    else:
        seconds = ticks.astype(np.float64) / TICKS_PER_SECOND
        phase = float(base % np.uint64(360)) * math.pi / 180.0
        noise = (h2 >> np.uint64(11)).astype(np.float64) / 2.0**53 - 0.5
        x = p.zero + p.span * (0.5 + 0.45 * np.sin(2 * math.pi * seconds / p.period_s + phase) + 0.02 * noise)
        x = x + j * p.span * 0.013
        if p.decimals is None:
            number = x
        elif p.decimals == 0:
            limit = 32_767 if p.point_type == "Int16" else 2_147_483_647
            number = np.clip(np.rint(x), -limit - 1, limit)
        else:
            scale = 10**p.decimals
            number = np.rint(x * scale) / scale
    good = np.ones(n, dtype=bool)
    if p.bad_every and p.point_type not in ("Digital", "String"):
        good &= _field(he, 20) % p.bad_every != 0
    if p.system_every:
        system = _field(he, 0) % p.system_every == 0
        kind[system] = KIND_SYSTEM
        number[system] = np.nan
        code[system] = SERVED_SYSTEM_CODES[(he[system] >> np.uint64(62)).astype(np.int64)]
        good &= ~system
    flags = []
    for field, shift in ((he, 40), (h3, 0), (h3, 20)):
        flags.append(_field(field, shift) % p.flag_every == 0 if p.flag_every else np.zeros(n, dtype=bool))
    return Events(ticks, kind, number, code, good, *flags)


def _chunks(first: int, last: int, size: int, descending: bool) -> Iterator[np.ndarray]:
    if descending:
        for hi in range(last, first - 1, -size):
            yield np.arange(max(first, hi - size + 1), hi + 1, dtype=np.int64)
    else:
        for lo in range(first, last + 1, size):
            yield np.arange(lo, min(last, lo + size - 1) + 1, dtype=np.int64)


def generate(
    point: SimPoint, seed: int, t0: int, t1: int, limit: int | None = None, descending: bool = False
) -> Events:
    """The events with ``t0 <= tick <= t1`` (PI's boundaryType Inside), the first ``limit`` of them.

    Ascending in time with equal timestamps in their fixed order, or, with ``descending``, the exact reverse.
    Generated slot chunk by slot chunk, so a short page of a long range costs little.
    """
    base = point_base(seed, point.name)
    if t1 < t0 or limit == 0:
        return _slot_events(point, base, np.zeros(0, dtype=np.int64))
    interval = point.interval_ticks
    parts: list[Events] = []
    count = 0
    size = 1 << 17
    for k in _chunks(t0 // interval, t1 // interval, size, descending):
        ev = _slot_events(point, base, k)
        inside = (ev.ticks >= t0) & (ev.ticks <= t1)
        if not inside.all():
            ev = ev.take(inside)
        if descending:
            ev = ev.take(slice(None, None, -1))
        parts.append(ev)
        count += len(ev)
        if limit is not None and count >= limit:
            break
    if not parts:
        return _slot_events(point, base, np.zeros(0, dtype=np.int64))
    out = Events.concat(parts)
    return out.take(slice(0, limit)) if limit is not None and len(out) > limit else out


def to_ticks(t: dt.datetime) -> int:
    """A datetime (naive means UTC) as 100 ns ticks since the Unix epoch."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    delta = t - EPOCH
    return (delta.days * 86_400 + delta.seconds) * TICKS_PER_SECOND + delta.microseconds * 10


def truth_table(names: list[str], events: list[Events], points: list[SimPoint]) -> pa.Table:
    """Events as canonical sample rows: numbers in ``value``; digital, string and system states in ``text``
    (state name or string), with ``state_code`` the digital state value or system state code."""
    strings = pa.array(list(STRING_VALUES))
    system_index = np.zeros(256, dtype=np.int64)
    system_index[list(SYSTEM_STATES)] = np.arange(len(SYSTEM_STATES))
    system_vocab = pa.array(list(SYSTEM_STATES.values()))
    batches = []
    for name, ev, p in zip(names, events, points, strict=True):
        n = len(ev)
        is_num, is_dig = ev.kind == KIND_NUMBER, ev.kind == KIND_DIGITAL
        is_str, is_sys = ev.kind == KIND_STRING, ev.kind == KIND_SYSTEM
        vocab = pa.concat_arrays([system_vocab, strings, pa.array(list(p.states), pa.string())])
        idx = np.full(n, -1, dtype=np.int64)
        idx[is_sys] = system_index[ev.code[is_sys]]
        idx[is_str] = len(system_vocab) + ev.code[is_str]
        idx[is_dig] = len(system_vocab) + len(strings) + ev.code[is_dig]
        columns = [
            pa.array(np.full(n, name, dtype=object), pa.string()),
            pa.array(ev.ticks * 100, pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
            pa.array(ev.number, pa.float64(), mask=~is_num),
            vocab.take(pa.array(idx, mask=idx < 0)),
            pa.array(ev.code, pa.int32(), mask=~(is_dig | is_sys)),
            pa.array(is_sys),
            pa.array(ev.good),
            pa.array(ev.questionable),
            pa.array(ev.substituted),
            pa.array(ev.annotated),
        ]
        batches.append(pa.RecordBatch.from_arrays(columns, schema=SAMPLE_SCHEMA))
    return pa.Table.from_batches(batches, schema=SAMPLE_SCHEMA)
