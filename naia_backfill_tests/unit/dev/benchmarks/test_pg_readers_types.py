from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pyarrow as pa

from naia_backfill.dev.benchmarks.pg_readers_types import compare, short_type


def test_decimals_compare_exact_as_text_or_lossy():
    assert compare(Decimal("1.2345"), Decimal("1.2345")) == "exact"
    assert compare(Decimal("1.2345"), "1.2345") == "text"
    assert compare(Decimal("0.1"), 0.1) == "lossy"
    assert compare(Decimal("1.5"), "NaN") == "differs"


def test_time_zone_kind_must_match():
    aware = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    naive = dt.datetime(2024, 1, 1)
    assert compare(aware, aware.astimezone(dt.timezone(dt.timedelta(hours=2)))) == "exact"
    assert compare(naive, aware) == "differs"
    assert compare(aware, naive) == "differs"


def test_nulls_lists_uuids_and_intervals():
    assert compare(None, None) == "exact"
    assert compare(None, 0) == "differs"
    assert compare([1, None], [1, None]) == "exact"
    assert compare([Decimal("1")], ["1"]) == "text"
    u = uuid.uuid4()
    assert compare(u, str(u)) == "text"
    assert compare(dt.timedelta(days=-90), pa.MonthDayNano([-3, 0, 0])) == "exact"


def test_short_type_names_the_unit_and_zone():
    assert short_type(pa.timestamp("us", tz="UTC")) == "ts[us,UTC]"
    assert short_type(pa.list_(pa.decimal128(12, 4))) == "list<dec(12, 4)>"
