"""PI time strings as the simulator understands them, resolved to 100 ns ticks since the Unix epoch.

ISO 8601 (``2024-01-01``, ``2024-01-01T00:00:00Z``, offsets ``+02:00``, up to 7 fractional digits, more are
cut; no zone means UTC, the simulator's server time zone) or a base ``*``/``now``, ``t``/``today``,
``y``/``yesterday``, followed by any number of offsets like ``-1d``, ``+8h``, ``-30m``, ``-1.5h``, ``-2w``,
``-1mo``, ``-1y`` (units ms, s, m, h, d, w, mo, y and their long names). Offsets alone are relative to now.
"""

from __future__ import annotations

import datetime as dt
import re

from naia_backfill.dev.simulators.pi_web_api.data import TICKS_PER_DAY, TICKS_PER_SECOND, to_ticks

_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?",
    re.IGNORECASE,
)
_BASE = re.compile(r"(\*|now|today|yesterday|t|y)(?![a-z])", re.IGNORECASE)
_OFFSET = re.compile(r"\s*([+-])\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*", re.IGNORECASE)
_UNITS = {
    "ms": 10_000,
    "millisecond": 10_000,
    "milliseconds": 10_000,
    "s": TICKS_PER_SECOND,
    "sec": TICKS_PER_SECOND,
    "second": TICKS_PER_SECOND,
    "seconds": TICKS_PER_SECOND,
    "m": 60 * TICKS_PER_SECOND,
    "min": 60 * TICKS_PER_SECOND,
    "minute": 60 * TICKS_PER_SECOND,
    "minutes": 60 * TICKS_PER_SECOND,
    "h": 3600 * TICKS_PER_SECOND,
    "hr": 3600 * TICKS_PER_SECOND,
    "hour": 3600 * TICKS_PER_SECOND,
    "hours": 3600 * TICKS_PER_SECOND,
    "d": TICKS_PER_DAY,
    "day": TICKS_PER_DAY,
    "days": TICKS_PER_DAY,
    "w": 7 * TICKS_PER_DAY,
    "week": 7 * TICKS_PER_DAY,
    "weeks": 7 * TICKS_PER_DAY,
}
_MONTHS = {"mo": 1, "month": 1, "months": 1, "y": 12, "year": 12, "years": 12}


class PiTimeError(ValueError):
    """A time string the simulator cannot read; the server answers 400."""


def parse_pi_time(text: str, now_ticks: int) -> int:
    """``text`` as ticks; ``now_ticks`` resolves ``*``, ``t``, ``y`` and bare offsets."""
    s = text.strip()
    if not s:
        raise PiTimeError(f"The time string '{text}' could not be parsed.")
    iso = _ISO.match(s)
    if iso:
        ticks, rest = _iso_ticks(iso, text), s[iso.end() :]
    else:
        base = _BASE.match(s)
        if base:
            word = base.group(1).lower()
            midnight = now_ticks - now_ticks % TICKS_PER_DAY
            ticks = {"*": now_ticks, "now": now_ticks, "t": midnight, "today": midnight}.get(
                word, midnight - TICKS_PER_DAY
            )
            rest = s[base.end() :]
        else:
            ticks, rest = now_ticks, s
    pos = 0
    while pos < len(rest):
        m = _OFFSET.match(rest, pos)
        if not m or m.end() == pos:
            raise PiTimeError(f"The time string '{text}' could not be parsed.")
        sign = -1 if m.group(1) == "-" else 1
        amount, unit = m.group(2), m.group(3).lower()
        if unit in _UNITS:
            ticks += sign * round(float(amount) * _UNITS[unit])
        elif unit in _MONTHS and amount.isdigit():
            ticks = _add_months(ticks, sign * int(amount) * _MONTHS[unit])
        else:
            raise PiTimeError(f"The time string '{text}' could not be parsed: unknown unit '{m.group(3)}'.")
        pos = m.end()
    return ticks


def _iso_ticks(m: re.Match[str], text: str) -> int:
    year, month, day, hour, minute, second, frac, zone = m.groups()
    try:
        t = dt.datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), tzinfo=dt.UTC
        )
    except ValueError as e:
        raise PiTimeError(f"The time string '{text}' could not be parsed: {e}.") from None
    ticks = to_ticks(t) + (int((frac or "")[:7].ljust(7, "0")) if frac else 0)
    if zone and zone.upper() != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset_minutes = int(digits[:2]) * 60 + (int(digits[2:4]) if len(digits) > 2 else 0)
        ticks -= sign * offset_minutes * 60 * TICKS_PER_SECOND
    return ticks


def _add_months(ticks: int, months: int) -> int:
    day_ticks = ticks % TICKS_PER_DAY
    date = dt.date(1970, 1, 1) + dt.timedelta(days=ticks // TICKS_PER_DAY)
    index = date.year * 12 + date.month - 1 + months
    year, month = divmod(index, 12)
    next_month = dt.date(year + (month == 11), (month + 1) % 12 + 1, 1)
    last_day = (next_month - dt.timedelta(days=1)).day
    shifted = dt.date(year, month + 1, min(date.day, last_day))
    return (shifted - dt.date(1970, 1, 1)).days * TICKS_PER_DAY + day_ticks
