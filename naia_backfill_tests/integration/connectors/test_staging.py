"""The staging area on the real S3 server (SeaweedFS): conditional creation keeps the first observation."""

from __future__ import annotations

import datetime as dt
import uuid

import boto3
import pytest

from naia_backfill.connectors.staging import StagingArea, objects_for

pytestmark = pytest.mark.integration
AT = dt.datetime(2024, 1, 15, 3, tzinfo=dt.UTC)


def test_observations_are_created_once_and_read_back_on_s3(service_env):
    client = boto3.client("s3", endpoint_url=service_env.s3_endpoint, region_name=service_env.s3_region,
                          aws_access_key_id=service_env.s3_access_key, aws_secret_access_key=service_env.s3_secret_key)
    prefix = f"staging-test-{uuid.uuid4().hex[:8]}"
    area = StagingArea(objects_for(f"s3://{service_env.s3_bucket}/{prefix}", client), "waqi/sim")
    try:
        assert [area.stage(uid, AT, {"aqi": uid}) for uid in (1583, 8688)] == [True, True]
        assert area.stage(1583, AT, {"aqi": 0}) is False
        assert sorted(area.read_day(AT.date())) == [(1583, AT, {"aqi": 1583}), (8688, AT, {"aqi": 8688})]
        area.save_station(1583, {"keys": ["aqi"]})
        assert area.station(1583) == {"keys": ["aqi"]} and area.station(1) is None
        assert area.days() == [AT.date()]
    finally:
        for obj in client.list_objects_v2(Bucket=service_env.s3_bucket, Prefix=prefix).get("Contents", []):
            client.delete_object(Bucket=service_env.s3_bucket, Key=obj["Key"])
