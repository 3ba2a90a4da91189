"""The WAQI connector over httpx.MockTransport: WAQI's HTTP-200 errors become typed errors, the token never reaches
a log or a message, observations are staged once, past days come from the staging area only."""

from __future__ import annotations

import datetime as dt
import logging

import httpx
import orjson
import pytest

from naia_backfill.connectors.base import Credentials
from naia_backfill.connectors.http import Retrier
from naia_backfill.connectors.staging import LocalObjects, StagingArea
from naia_backfill.connectors.waqi import NotCollectedError, UnknownStationsError, build
from naia_backfill.errors import CredentialsError, SourceError
from naia_backfill.settings.sources import WaqiSource

TOKEN = "tok-unit-5b2"
AT = dt.datetime(2024, 1, 15, 3, 0, tzinfo=dt.UTC)


def data(uid: int, at: dt.datetime, aqi: object = 57, **iaqi: object) -> dict:
    local = at.astimezone(dt.timezone(dt.timedelta(hours=7)))
    return {"aqi": aqi, "idx": uid, "attributions": [{"url": "https://waqi.info/", "name": "WAQI"}],
            "city": {"geo": [21.0, 105.8], "name": f"Station {uid}", "url": "https://aqicn.org/city/x"},
            "iaqi": {k: {"v": v} for k, v in (iaqi or {"pm25": 57, "t": 18.5}).items()},
            "time": {"s": f"{local:%Y-%m-%d %H:%M:%S}", "tz": "+07:00", "v": 0, "iso": local.isoformat()},
            "forecast": {"daily": {}}}


class Api:
    """Answers like WAQI: ``feeds`` uid -> data, or an error text; counts requests; records query strings."""

    def __init__(self, feeds: dict[int, object]) -> None:
        self.feeds, self.queries, self.errors = feeds, [], []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.queries.append(dict(request.url.params))
        if self.errors:
            return httpx.Response(200, json={"status": "error", "data": self.errors.pop(0)})
        if request.url.params.get("token") != TOKEN:
            return httpx.Response(200, json={"status": "error", "data": "Invalid key"})
        uid = int(request.url.path.split("@")[1].strip("/"))
        found = self.feeds.get(uid, "Unknown station")
        if isinstance(found, str):
            return httpx.Response(200, json={"status": "error", "data": found})
        return httpx.Response(200, json={"status": "ok", "data": found})


def connector(tmp_path, api: Api, uids: list[int], token: str = TOKEN):
    settings = WaqiSource(kind="waqi", base_url="https://waqi.test", token_env="NAIA_WAQI_TOKEN", uids=uids,
                          rate_limit=None, max_retries=2)
    source = build(settings, Credentials(token=token), transport=httpx.MockTransport(api),
                   staging=StagingArea(LocalObjects(tmp_path), "waqi/test"))
    source.retrier = Retrier(2, sleep=lambda s: None)
    return source


def test_the_token_goes_on_the_query_but_never_into_logs_or_errors(tmp_path, caplog):
    api = Api({1583: data(1583, AT)})
    caplog.set_level(logging.DEBUG)
    with connector(tmp_path, api, [1583]) as source:
        source.collect()
    assert api.queries[0]["token"] == TOKEN
    assert "feed/@1583" in caplog.text and TOKEN not in caplog.text
    with connector(tmp_path, Api({}), [1583], token="wrong-" + TOKEN) as source, pytest.raises(CredentialsError) as e:
        source.collect()
    assert "Invalid key" in str(e.value) and "NAIA_WAQI_TOKEN" in str(e.value) and TOKEN not in str(e.value)


def test_a_missing_token_is_a_credentials_error_naming_the_variable(tmp_path):
    settings = WaqiSource(kind="waqi", token_env="NAIA_WAQI_TOKEN", uids=[1])
    with pytest.raises(CredentialsError, match="NAIA_WAQI_TOKEN"):
        build(settings, Credentials())


def test_over_quota_is_retried(tmp_path):
    api = Api({1583: data(1583, AT)})
    api.errors = ["Over quota"]
    with connector(tmp_path, api, [1583]) as source:
        assert source.collect().staged == 1
    assert len(api.queries) == 2


def test_an_unknown_station_fails_before_anything_is_staged(tmp_path):
    with connector(tmp_path, Api({1583: data(1583, AT)}), [1583, 999]) as source, pytest.raises(UnknownStationsError) as e:
        source.collect()
    assert "999" in str(e.value)
    assert not list(tmp_path.rglob("*.json"))


def test_a_station_seen_before_that_disappears_only_warns(tmp_path, caplog):
    api = Api({1583: data(1583, AT), 8688: data(8688, AT)})
    with connector(tmp_path, api, [1583, 8688]) as source:
        source.collect()
    del api.feeds[8688]
    api.feeds[1583] = data(1583, AT + dt.timedelta(hours=1))
    with connector(tmp_path, api, [1583, 8688]) as source:
        report = source.collect()
    assert (report.staged, report.stale) == (1, [8688])
    assert "no longer known" in caplog.text


def test_a_repeated_poll_stages_nothing_new(tmp_path):
    api = Api({1583: data(1583, AT)})
    with connector(tmp_path, api, [1583]) as source:
        first, second = source.collect(), source.collect()
    assert (first.staged, first.already, second.staged, second.already) == (1, 0, 0, 1)
    [staged] = list(tmp_path.rglob("1583_*.json"))
    assert staged.name == "1583_030000.json" and "forecast" not in orjson.loads(staged.read_bytes())


def test_past_days_come_from_staging_with_dashes_and_missing_values_counted(tmp_path):
    api = Api({1583: data(1583, AT, aqi="-", pm25="-", t=18.5)})
    with connector(tmp_path, api, [1583]) as source:
        report = source.collect()
        api.feeds[1583] = data(1583, AT + dt.timedelta(hours=1), aqi=60, pm25=60, t=19)
        source.collect()
        points = source.list_points()
        [batch] = source.fetch(points, AT.replace(hour=0), AT.replace(hour=0) + dt.timedelta(days=1))
        meta = source.day_metadata(points, AT.replace(hour=0), AT.replace(hour=0) + dt.timedelta(days=1))
    assert report.counts.dash == 2
    assert points == ["1583/aqi", "1583/pm25", "1583/t"]
    rows = list(zip(batch["point"].to_pylist(), [t.hour for t in batch["ts"].to_pylist()], batch["value"].to_pylist(), strict=True))
    assert rows == [("1583/aqi", 4, 60.0), ("1583/pm25", 4, 60.0), ("1583/t", 3, 18.5), ("1583/t", 4, 19.0)]
    assert meta["waqi.skipped_dash"] == "2" and meta["waqi.observations"] == "2"
    assert meta["waqi.missing_hours"].startswith("00:00, 01:00, 02:00, 05:00")
    assert orjson.loads(meta["waqi.attributions"])["1583"][0]["name"] == "WAQI"
    assert orjson.loads(meta["waqi.utc_offsets"]) == {"1583": {"+07:00": int(AT.timestamp())}}


def test_a_day_never_collected_fails_with_the_explanation(tmp_path):
    with connector(tmp_path, Api({1583: data(1583, AT)}), [1583]) as source, pytest.raises(NotCollectedError) as e:
        list(source.fetch(["1583/aqi"], AT.replace(hour=0), AT.replace(hour=0) + dt.timedelta(days=1)))
    assert "keeps no history" in str(e.value) and "cannot be backfilled" in str(e.value)


def test_other_api_errors_are_source_errors_with_the_message(tmp_path):
    api = Api({})
    api.errors = ["Invalid latlng"]
    with connector(tmp_path, api, [1583]) as source, pytest.raises(SourceError, match="Invalid latlng"):
        source.feed(1583)


def test_exactly_one_station_selection():
    with pytest.raises(ValueError, match="exactly one of uids, bounds, keyword"):
        WaqiSource(kind="waqi", token_env="T", uids=[1], keyword="hanoi")
    with pytest.raises(ValueError, match="poll_minutes"):
        WaqiSource(kind="waqi", token_env="T", uids=[1], poll_minutes=7)


def test_a_dry_run_says_what_collection_costs_and_which_days_will_fail(tmp_path):
    api = Api({1583: data(1583, AT)})
    with connector(tmp_path, api, [1583]) as source:
        source.collect()
        rows = dict(source.describe_days([AT.date() - dt.timedelta(days=1), AT.date()]))
    assert rows["collection"].startswith("every 15 min (96 polls a day), 1 request(s) a poll: 96 a day")
    assert rows["collected days"] == "1 of 2"
    assert rows["will fail (no history)"] == "2024-01-14"
    assert "03:00" not in rows["partly collected"] and "23:00" in rows["partly collected"]
