"""ACE IoT response bodies -> columns: values exactly as Python's float reads the text, times to UTC ns."""

from __future__ import annotations

import random

import numpy as np
import orjson
import pytest

from naia_backfill.connectors.ace_iot_json import parse_list, parse_series, parse_times, parse_values
from naia_backfill.connectors.http import TransientError
from naia_backfill.errors import SourceError


def test_decimal_texts_parse_to_the_correctly_rounded_double():
    rnd = random.Random(7)
    texts = [repr(rnd.uniform(-1e6, 1e6)) for _ in range(20_000)]
    texts += [f"{rnd.uniform(-1e3, 1e3):.{rnd.randint(0, 6)}f}" for _ in range(20_000)]
    texts += [f"{rnd.random():.17f}e{rnd.randint(-300, 300)}" for _ in range(20_000)]
    values, text = parse_values(texts)
    assert text is None
    assert values.to_pylist() == [float(s) for s in texts]


def test_odd_values():
    values, text = parse_values(["nan", "-inf", "", None, " 7 ", 3, True, 2.5, "on", {"x": 1}])
    got = values.to_pylist()
    assert np.isnan(got[0]) and got[1] == float("-inf")
    assert got[2:] == [None, None, 7.0, 3.0, 1.0, 2.5, None, None]
    assert text.to_pylist() == [None] * 8 + ["on", '{"x":1}']


def test_times_with_z_offsets_fractions_and_without_zone():
    got = parse_times(["2024-01-01T00:00:00Z", "2024-01-01T01:00:00.25+01:00", "2024-01-01T00:00:00.1234567Z"], "t")
    assert got.tolist() == [1_704_067_200_000_000_000, 1_704_067_200_250_000_000, 1_704_067_200_123_456_700]
    assert parse_times(["2024-01-01T00:00:01"], "t").tolist() == [1_704_067_201_000_000_000]
    with pytest.raises(SourceError, match="unreadable sample time"):
        parse_times(["yesterday"], "t")


def test_series_page_and_list_page():
    body = orjson.dumps({"point_samples": [{"name": "b", "value": "1.5", "time": "2024-01-01T00:00:00Z", "x": 1},
                                           {"name": "zz", "value": "2", "time": "2024-01-01T00:00:01Z"}],
                         "next_cursor": "c1", "has_more": True, "extra": {}})
    page = parse_series(body, {"a": 0, "b": 1}, "t")
    assert page.index.tolist() == [1, -1] and page.value.to_pylist() == [1.5, 2.0]
    assert (page.next_cursor, page.has_more, len(page)) == ("c1", True, 2)
    with pytest.raises(TransientError, match="cut-off"):
        parse_series(body[:40], {}, "t")
    with pytest.raises(SourceError, match="unexpected response"):
        parse_series(b'{"point_samples":[{"value":"1"}]}', {}, "t")
    listed = parse_list(b'{"page":1,"pages":2,"items":[{"name":"s","collect_interval":60,"id":3}]}', "t")
    assert (listed.pages, listed.items[0].name, listed.items[0].collect_interval) == (2, "s", 60.0)
