"""The WAQI simulator's readings, clock, feed bodies and poller truth, without sockets."""

from __future__ import annotations

import calendar
import datetime as dt

import pytest

from naia_backfill.dev.simulators.waqi import routes
from naia_backfill.dev.simulators.waqi.clock import SimClock
from naia_backfill.dev.simulators.waqi.data import POLLUTANTS, hour_of
from naia_backfill.dev.simulators.waqi.simulator import WaqiSimulator, samples
from naia_backfill.schema import SAMPLE_SCHEMA

UTC = dt.UTC
DAY = dt.datetime(2024, 1, 14, tzinfo=UTC)
HANOI, DELHI, PARIS, STUCK = 1583, 2553, 3095, -122913


@pytest.fixture(scope="module")
def sim() -> WaqiSimulator:
    return WaqiSimulator(seed=11)


def test_observation_hours_are_whole_local_hours():
    sim = WaqiSimulator()
    at = dt.datetime(2024, 1, 14, 10, 47, tzinfo=UTC)
    assert hour_of(sim.station(HANOI), at) == dt.datetime(2024, 1, 14, 10, tzinfo=UTC)
    assert hour_of(sim.station(DELHI), at) == dt.datetime(2024, 1, 14, 10, 30, tzinfo=UTC)  # +05:30
    assert hour_of(sim.station(DELHI), at.replace(minute=20)) == dt.datetime(2024, 1, 14, 9, 30, tzinfo=UTC)
    readings = sim.readings_between(DELHI, DAY, DAY + dt.timedelta(days=1))
    assert readings and all(r.time.minute == 30 for r in readings)
    assert sim.reading(DELHI, dt.datetime(2024, 1, 14, 10, tzinfo=UTC)) is None  # not an observation instant


def test_readings_are_deterministic_with_keys_that_come_and_go(sim):
    week = sim.readings_between(HANOI, DAY, DAY + dt.timedelta(days=7))
    assert 140 <= len(week) < 168  # some hours are never published
    again = WaqiSimulator(seed=11).readings_between(HANOI, DAY, DAY + dt.timedelta(days=7))
    assert week == again
    assert week != WaqiSimulator(seed=12).readings_between(HANOI, DAY, DAY + dt.timedelta(days=7))
    key_sets = {tuple(r.iaqi) for r in week}
    assert len(key_sets) > 5
    for r in week:
        assert list(r.iaqi) == sorted(r.iaqi)
        pollutants = {k: v for k, v in r.iaqi.items() if k in POLLUTANTS}
        if pollutants:
            assert r.dominentpol == max(pollutants, key=lambda k: pollutants[k])
            assert r.aqi == int(pollutants[r.dominentpol] + 0.5)
        else:
            assert r.aqi == "-" and r.dominentpol is None
        assert r.time + dt.timedelta(minutes=20) <= r.published <= r.time + dt.timedelta(minutes=40)
    month = sim.readings_between(HANOI, DAY, DAY + dt.timedelta(days=40))
    assert any(r.aqi == "-" for r in month)


def test_the_feed_serves_the_newest_published_reading(sim):
    r = sim.reading(HANOI, dt.datetime(2024, 1, 14, 10, tzinfo=UTC)) or sim.reading(
        HANOI, dt.datetime(2024, 1, 14, 11, tzinfo=UTC)
    )
    assert r is not None
    before = sim.latest(HANOI, r.published - dt.timedelta(seconds=1))
    assert before is not None and before.time < r.time
    assert sim.latest(HANOI, r.published) == r
    assert sim.latest(HANOI, r.time + dt.timedelta(minutes=59)) == r or r.time.hour != 10
    stuck = sim.latest(STUCK, dt.datetime(2024, 3, 1, tzinfo=UTC))
    assert stuck is not None and stuck.time < dt.datetime(2024, 1, 10, tzinfo=UTC)
    assert stuck == sim.latest(STUCK, dt.datetime(2024, 1, 11, tzinfo=UTC))


def test_polls_store_what_the_feed_showed_at_each_poll(sim):
    polls = [DAY + dt.timedelta(hours=h, minutes=59) for h in range(24)]
    stored = sim.polled(polls)
    assert len({(r.uid, r.time) for r in stored}) == len(stored)
    for uid in (HANOI, DELHI, PARIS, STUCK):
        known = sim.readings_between(uid, DAY - dt.timedelta(days=10), DAY + dt.timedelta(days=1))
        shown = {}
        for p in polls:
            newest = max((r for r in known if r.published <= p), key=lambda r: r.time)
            shown[newest.time] = newest
        assert [r for r in stored if r.uid == uid] == [shown[t] for t in sorted(shown)]
    keys = {(r.uid, r.time) for r in stored}
    day = sim.readings_between(HANOI, DAY, DAY + dt.timedelta(hours=23))
    assert {(r.uid, r.time) for r in day} <= keys  # whole-hour zone, lag under an hour: polls at :59 miss nothing
    delhi = sim.readings_between(DELHI, DAY, DAY + dt.timedelta(hours=23))
    assert not {(r.uid, r.time) for r in delhi} <= keys  # +05:30: a reading published after the next :59 is lost
    assert sim.polled(polls + polls, uids=[HANOI]) == [r for r in stored if r.uid == HANOI]
    assert len(sim.polled(polls[::6], uids=[HANOI])) == 4


def test_feed_body_time_and_forecast(sim):
    r = sim.latest(PARIS, dt.datetime(2024, 7, 1, 12, 30, tzinfo=UTC))
    station = sim.station(PARIS)
    data = routes.feed_data(sim, station, r)
    assert list(data)[:4] == ["aqi", "idx", "attributions", "city"] and data["idx"] == PARIS
    assert data["attributions"][-1] == {"url": "https://waqi.info/", "name": "World Air Quality Index Project"}
    t = data["time"]
    assert t["tz"] == "+02:00"  # summer time
    local = dt.datetime.fromisoformat(t["iso"])
    assert local == r.time and t["s"] == local.strftime("%Y-%m-%d %H:%M:%S")
    assert t["v"] == calendar.timegm(local.replace(tzinfo=None).timetuple())  # wall clock as if UTC
    assert t["v"] - int(r.time.timestamp()) == 7_200
    daily = data["forecast"]["daily"]
    assert set(daily) == {"o3", "pm10", "pm25", "uvi"}
    assert all(set(row) == {"avg", "day", "max", "min"} for rows in daily.values() for row in rows)
    winter = routes.feed_data(sim, station, sim.latest(PARIS, dt.datetime(2024, 1, 15, tzinfo=UTC)))
    assert winter["time"]["tz"] == "+01:00"
    no_weather = routes.feed_data(sim, sim.station(13252), sim.latest(13252, dt.datetime(2024, 1, 15, tzinfo=UTC)))
    assert "forecast" not in no_weather and not set(no_weather.get("iaqi", {})) & {"t", "h", "p"}


def test_samples_are_one_row_per_numeric_value(sim):
    readings = sim.readings_between(HANOI, DAY, DAY + dt.timedelta(days=30))
    table = samples(readings)
    assert table.schema == SAMPLE_SCHEMA
    expected = sum(len(r.iaqi) + isinstance(r.aqi, int) for r in readings)
    assert len(table) == expected
    first = readings[0]
    head = table.slice(0, len(first.iaqi) + 1)
    points, values = head.column("point").to_pylist(), head.column("value").to_pylist()
    assert points == [f"{HANOI}/aqi"] + [f"{HANOI}/{k}" for k in first.iaqi]
    assert values == [float(first.aqi), *map(float, first.iaqi.values())]
    ns = head.column("ts").cast("int64").to_pylist()
    assert ns == [int(first.time.timestamp()) * 10**9] * len(head)


def test_clock_is_set_advanced_and_runs_at_its_speed():
    clock = SimClock(dt.datetime(2024, 1, 1))
    assert clock.now() == dt.datetime(2024, 1, 1, tzinfo=UTC) and clock.speed == 0
    assert clock.advance(dt.timedelta(hours=2)) == dt.datetime(2024, 1, 1, 2, tzinfo=UTC)
    assert clock.advance(90) == dt.datetime(2024, 1, 1, 2, 1, 30, tzinfo=UTC)
    clock.set(dt.datetime(2025, 6, 1, tzinfo=UTC), speed=3_600_000)  # an hour per millisecond
    later = clock.now()
    assert later > dt.datetime(2025, 6, 1, tzinfo=UTC)
    real = SimClock()
    assert abs((real.now() - dt.datetime.now(UTC)).total_seconds()) < 5 and real.speed == 1
    with pytest.raises(ValueError):
        SimClock(dt.datetime(2024, 1, 1), speed=-1)
