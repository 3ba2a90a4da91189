"""The staging area on a local folder: an observation is created once, never overwritten, and read back by day."""

from __future__ import annotations

import datetime as dt

import pytest

from naia_backfill.connectors.staging import LocalObjects, StagingArea, objects_for
from naia_backfill.errors import LakeError

AT = dt.datetime(2024, 1, 15, 23, 30, tzinfo=dt.UTC)


def test_an_observation_is_staged_once_under_its_station_and_instant(tmp_path):
    area = StagingArea(LocalObjects(tmp_path), "waqi/api_waqi_info_443")
    assert area.stage(-475705, AT, {"aqi": 57}) is True
    assert area.stage(-475705, AT, {"aqi": 99}) is False  # a later poll of the same reading changes nothing
    path = tmp_path / "_staging/waqi/api_waqi_info_443/date=2024-01-15/-475705_233000.json"
    assert path.read_bytes() == b'{"aqi":57}'
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind
    assert area.read_day(AT.date()) == [(-475705, AT, {"aqi": 57})]
    assert area.read_day(AT.date() + dt.timedelta(days=1)) == []
    assert area.days() == [AT.date()]


def test_an_instant_in_a_half_hour_zone_lands_in_its_utc_day(tmp_path):
    area = StagingArea(LocalObjects(tmp_path), "waqi/x")
    local = dt.datetime(2024, 1, 16, 5, 0, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30)))
    area.stage(2553, local, {"aqi": 1})
    assert area.read_day(dt.date(2024, 1, 15))[0][1] == AT


def test_station_records_are_replaced(tmp_path):
    area = StagingArea(LocalObjects(tmp_path), "waqi/x")
    assert area.station(1583) is None
    area.save_station(1583, {"keys": ["aqi"]})
    area.save_station(1583, {"keys": ["aqi", "pm25"]})
    assert area.station(1583) == {"keys": ["aqi", "pm25"]}


def test_staging_names_and_lake_urls_are_checked(tmp_path):
    with pytest.raises(ValueError):
        StagingArea(LocalObjects(tmp_path), "../elsewhere")
    with pytest.raises(LakeError):
        objects_for("gs://bucket/lake")
    assert objects_for(f"file://{tmp_path}").url == str(tmp_path)
