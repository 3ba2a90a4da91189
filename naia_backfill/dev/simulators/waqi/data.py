"""The deterministic hourly readings behind the WAQI simulator.

A station observes at every whole hour of its local time (so at hh:30 UTC in a +05:30 zone); the reading of
hour ``H`` is a pure function of (seed, station uid, H) and is published ``lag_min`` plus up to 20 minutes
later. Some hours are never published (the feed keeps showing the previous one), some are published
without pollutant data (``aqi`` is ``"-"``), and each key of ``iaqi`` drops out of some hours. A station
can stop reporting (``offline_from``): from then on its feed is stuck on its last reading.

``iaqi`` pollutant values are AQI sub-indices (US EPA scale), ``aqi`` is the largest of them and
``dominentpol`` (sic) its key; weather keys are ``t`` (°C), ``h`` (%), ``p`` (hPa), ``w`` and ``wg`` (m/s),
``dew`` (°C). Numbers are written as JavaScript does: integral values without a fraction.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import zlib
from zoneinfo import ZoneInfo

HOUR = dt.timedelta(hours=1)
POLLUTANTS = ("pm25", "pm10", "o3", "no2", "so2", "co")
WEATHER = ("t", "h", "p", "w", "dew", "wg")
#: (typical sub-index, decimals) of each pollutant, and (base, amplitude, decimals) of each weather key.
_POLLUTANT_SHAPE = {"pm25": (80, 0), "pm10": (45, 0), "o3": (22, 1), "no2": (14, 1), "so2": (3, 1), "co": (6, 1)}
_WEATHER_SHAPE = {"t": (0.0, 5.0, 1), "h": (70.0, 20.0, 0), "p": (1010.0, 6.0, 1), "w": (2.5, 2.0, 1),
                  "dew": (-6.0, 3.0, 0), "wg": (5.0, 4.0, 1)}  # fmt: skip
WAQI_ATTRIBUTION = ("https://waqi.info/", "World Air Quality Index Project")
_MASK = (1 << 64) - 1


def _mix(x: int) -> int:
    """splitmix64 finaliser on a Python int."""
    x &= _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def _unit(*keys: int) -> float:
    """A deterministic number in [0, 1) from integer keys."""
    h = 0
    for k in keys:
        h = _mix(h ^ (k & _MASK) * 0x9E3779B97F4A7C15)
    return (h >> 11) / 2.0**53


def _key(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def js_number(value: float, decimals: int) -> int | float:
    """``value`` rounded to ``decimals``, as an int when integral (what a JavaScript JSON writer prints)."""
    v = round(value, decimals)
    return int(v) if v == int(v) else v


@dataclasses.dataclass(frozen=True)
class Station:
    """One monitoring station. ``url`` is its path under https://aqicn.org/city/; ``city`` the keyword that
    ``/feed/{city}/`` resolves to it ('' for none); ``temp_c`` its mean temperature; ``level`` scales its
    pollution. ``offline_from`` (UTC) is when it stops reporting."""

    uid: int
    name: str
    lat: float
    lng: float
    tz: str
    url: str
    city: str = ""
    country: str = "VN"
    pollutants: tuple[str, ...] = POLLUTANTS
    weather: tuple[str, ...] = WEATHER
    attributions: tuple[tuple[str, str], ...] = ()
    temp_c: float = 26.0
    level: float = 1.0
    lag_min: int = 20
    missing_fraction: float = 0.05
    dash_fraction: float = 0.03
    key_dropout: float = 0.08
    forecast: bool = True
    offline_from: dt.datetime | None = None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)


@dataclasses.dataclass(frozen=True)
class Reading:
    """One published hourly reading: ``time`` the observation instant (UTC), ``published`` when the feed
    starts serving it, ``aqi`` an int or ``"-"``, ``iaqi`` key -> value (keys in alphabetical order)."""

    uid: int
    time: dt.datetime
    published: dt.datetime
    aqi: int | str
    dominentpol: str | None
    iaqi: dict[str, int | float]

    def local(self, station: Station) -> dt.datetime:
        return self.time.astimezone(station.zone)


def utc_offset(local: dt.datetime) -> str:
    """'+07:00', '-08:00', '+05:30' for an aware local time."""
    minutes = int((local.utcoffset() or dt.timedelta()).total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def hour_of(station: Station, at: dt.datetime) -> dt.datetime:
    """The station's observation instant (a whole local hour, in UTC) at or before ``at``."""
    local = at.astimezone(station.zone)
    return local.replace(minute=0, second=0, microsecond=0).astimezone(dt.UTC)


class Readings:
    """The readings of a set of stations for one seed."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def _u(self, station: Station, hour: dt.datetime, salt: str) -> float:
        return _unit(self.seed, station.uid, int(hour.timestamp()) // 60, _key(salt))

    def exists(self, station: Station, hour: dt.datetime) -> bool:
        """Whether the reading of observation instant ``hour`` is ever published."""
        if hour_of(station, hour) != hour or (station.offline_from is not None and hour >= station.offline_from):
            return False
        return self._u(station, hour, "missing") >= station.missing_fraction

    def reading(self, station: Station, hour: dt.datetime) -> Reading | None:
        """The reading of observation instant ``hour`` (UTC), or None if it is never published."""
        hour = hour.astimezone(dt.UTC)
        if not self.exists(station, hour):
            return None
        local = hour.astimezone(station.zone)
        diurnal = math.sin(2 * math.pi * (local.hour - 8) / 24)
        day = 0.6 + _unit(self.seed, station.uid, local.toordinal()) * 1.0
        dash = self._u(station, hour, "dash") < station.dash_fraction
        iaqi: dict[str, int | float] = {}
        for key in station.pollutants if not dash else ():
            if self._u(station, hour, "drop:" + key) < station.key_dropout:
                continue
            typical, decimals = _POLLUTANT_SHAPE[key]
            noise = 0.85 + 0.3 * self._u(station, hour, "v:" + key)
            iaqi[key] = js_number(typical * station.level * day * (1 + 0.35 * diurnal) * noise, decimals)
        pollutants = dict(iaqi)
        for key in station.weather:
            if self._u(station, hour, "drop:" + key) < station.key_dropout:
                continue
            base, amplitude, decimals = _WEATHER_SHAPE[key]
            centre = station.temp_c + base if key in ("t", "dew") else base
            wave = math.sin(2 * math.pi * (local.hour - 15) / 24) if key in ("t", "dew") else 2 * diurnal
            noise = self._u(station, hour, "v:" + key) - 0.5
            iaqi[key] = js_number(centre + amplitude * (0.5 * wave + noise), decimals)
        dominant = max(pollutants, key=lambda k: pollutants[k]) if pollutants else None
        aqi: int | str = math.floor(pollutants[dominant] + 0.5) if dominant else "-"
        delay = dt.timedelta(minutes=station.lag_min + 20 * self._u(station, hour, "lag"))
        return Reading(station.uid, hour, hour + delay, aqi, dominant, dict(sorted(iaqi.items())))

    def latest(self, station: Station, at: dt.datetime, horizon_h: int = 72) -> Reading | None:
        """The reading the feed serves at clock time ``at``: the newest one published by then (searching back
        ``horizon_h`` hours from the last hour the station reported)."""
        at = at.astimezone(dt.UTC)
        last = at if station.offline_from is None else min(at, station.offline_from - HOUR)
        hour = hour_of(station, last)
        for i in range(horizon_h):
            r = self.reading(station, hour - i * HOUR)
            if r is not None and r.published <= at:
                return r
        return None

    def between(self, station: Station, start: dt.datetime, end: dt.datetime) -> list[Reading]:
        """Every reading with an observation instant in ``[start, end)``, published or not yet."""
        hour = hour_of(station, start.astimezone(dt.UTC))
        hour = hour if hour >= start else hour + HOUR
        out = []
        while hour < end:
            r = self.reading(station, hour)
            if r is not None:
                out.append(r)
            hour += HOUR
        return out

    def forecast(self, station: Station, reading: Reading) -> dict[str, list[dict[str, object]]]:
        """Daily forecast around the reading's local day (two days back, six ahead), ints like WAQI's."""
        today = reading.local(station).date()
        daily: dict[str, list[dict[str, object]]] = {}
        for key, typical in (("o3", 22), ("pm10", 45), ("pm25", 80), ("uvi", 4)):
            rows = []
            for offset in range(-2, 7):
                day = today + dt.timedelta(days=offset)
                u = _unit(self.seed, station.uid, day.toordinal(), _key("forecast:" + key))
                avg = typical * (station.level if key != "uvi" else 1.0) * (0.6 + 0.8 * u)
                row = {"avg": round(avg), "day": day.isoformat(), "max": round(avg * 1.4), "min": round(avg * 0.5)}
                rows.append(row)
            daily[key] = rows
        return daily
