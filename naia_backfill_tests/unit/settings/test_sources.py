"""The ACE IoT source settings: one site or several, defaults (rate limit, pool per site)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from naia_backfill.settings import AceIotSource, RateLimit

BASE = {"kind": "ace_iot", "base_url": "https://ace.example.com/api/", "auth": {"kind": "bearer", "token_env": "T"}}


def test_defaults():
    s = AceIotSource.model_validate({**BASE, "site": "ses_falls_city"})
    assert s.base_url == "https://ace.example.com/api"
    assert (s.page_size, s.points_from, s.rate_limit) == (10_000, "configured", RateLimit(requests=50, per_seconds=60))
    assert s.pool_name == "naia_ace_iot_ace_example_com_ses_falls_city"
    assert s.limit_key == "https://ace.example.com:443"  # every site of one server shares one limit


@pytest.mark.parametrize(("fields", "reason"), [
    ({}, "exactly one of site, sites"),
    ({"site": "a", "sites": ["b"]}, "exactly one of site, sites"),
    ({"sites": []}, "must not be empty"),
    ({"sites": ["a", "a"]}, "site listed twice: a"),
    ({"site": "../etc"}, "should match pattern"),
    ({"sites": "all"}, "sites"),
    ({"site": "a", "page_size": 500_001}, "less than or equal to 500000"),
    ({"site": "a", "token": "x"}, "Extra inputs"),
])
def test_refused(fields, reason):
    with pytest.raises(ValidationError, match=reason):
        AceIotSource.model_validate({**BASE, **fields})
