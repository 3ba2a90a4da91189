from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from naia_backfill.connectors.synthetic import DUP_EVENTS, SyntheticConnector, point_kind
from naia_backfill.errors import SourceError, UnknownPointsError
from naia_backfill.schema import SAMPLE_SCHEMA
from naia_backfill.settings import SyntheticSource

DAY = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)


def source(**kw) -> SyntheticConnector:
    return SyntheticConnector(SyntheticSource(kind="synthetic", **{"points": 200, "seed": 1, **kw}))


def day_table(src: SyntheticConnector, points: list[str], start=DAY, hours: int = 24) -> pa.Table:
    return pa.Table.from_batches(list(src.fetch(points, start, start + dt.timedelta(hours=hours))), schema=SAMPLE_SCHEMA)


def test_lists_and_resolves_points():
    src = source(points=12)
    assert src.list_points() == [f"SYN{i:05d}" for i in range(12)]
    assert src.list_points("syn0000?") == [f"SYN{i:05d}" for i in range(10)]
    assert src.resolve(names=["SYN00003"]) == ["SYN00003"]
    with pytest.raises(UnknownPointsError, match="2 point\\(s\\) not found .*NOPE, SYN99999"):
        src.resolve(names=["SYN00001", "NOPE", "SYN99999"])
    with pytest.raises(SourceError, match="no point .* matches the filter 'X\\*'"):
        src.resolve(name_filter="X*")


def test_deterministic_and_independent_of_how_points_are_grouped():
    src = source()
    names = src.list_points()
    together = day_table(src, names)
    alone = day_table(source(), [names[17]])
    again = day_table(source(), names)
    assert together.equals(again)
    assert together.filter(pc.equal(together["point"], names[17])).equals(alone)
    assert not day_table(source(seed=2), [names[17]]).equals(alone)


def test_window_is_half_open_and_regular():
    src = source(points=3, interval_seconds=60)
    t = day_table(src, src.list_points(), hours=24)
    assert pc.min(t["ts"]).as_py() == DAY
    assert pc.max(t["ts"]).as_py() == DAY + dt.timedelta(hours=23, minutes=59)
    unique = pc.count_distinct(pc.binary_join_element_wise(t["point"], pc.cast(pc.cast(t["ts"], pa.int64()), pa.string()), "|")).as_py()
    assert unique == 3 * 1440


def test_has_every_kind_of_event():
    src = source(points=200)
    names = src.list_points()
    t = day_table(src, names)
    kinds = {point_kind(n) for n in names}
    assert kinds == {"numeric", "digital", "string"}
    system = t.filter(t["is_system"])
    assert system.num_rows > 0
    assert set(system["state_code"].to_pylist()) <= {246, 248, 254, 255}
    assert not any(system["good"].to_pylist()) and system["value"].null_count == system.num_rows
    digital = t.filter(pc.is_in(t["point"], pa.array([n for n in names if point_kind(n) == "digital"])))
    assert set(digital["text"].to_pylist()) == {"Off", "On", "Fault"}
    assert set(digital["state_code"].to_pylist()) == {0, 1, 2}
    strings = t.filter(pc.is_in(t["point"], pa.array([n for n in names if point_kind(n) == "string"])))
    assert strings["value"].null_count == strings.num_rows and strings["text"].null_count == 0
    numeric_bad = t.filter(pc.and_(pc.invert(t["good"]), pc.invert(t["is_system"])))
    assert numeric_bad.num_rows > 0 and numeric_bad["value"].null_count == 0
    for flag in ("questionable", "substituted", "annotated"):
        assert pc.sum(t[flag]).as_py() > 0


def test_equal_timestamps_are_kept_in_order_with_distinct_values():
    src = source(points=50)
    t = day_table(src, src.list_points())
    keys = pc.binary_join_element_wise(t["point"], pc.cast(pc.cast(t["ts"], pa.int64()), pa.string()), "|")
    counts = pc.value_counts(keys)
    dup = [c["values"] for c in counts.to_pylist() if c["counts"] > 1]
    assert dup, "expected runs of equal timestamps"
    assert {c["counts"] for c in counts.to_pylist() if c["counts"] > 1} == {DUP_EVENTS}
    rows = t.filter(pc.equal(keys, dup[0]))
    values = rows["value"].to_pylist()
    if values[0] is not None:
        assert values == sorted(values) and len(set(values)) == DUP_EVENTS


def test_estimate_is_close_to_the_real_count():
    src = source(points=100)
    t = day_table(src, src.list_points())
    est = src.estimate(100, 1)
    assert est.requests == 0
    assert abs(est.samples - t.num_rows) / t.num_rows < 0.01


def test_batches_are_bounded():
    src = source(points=400, interval_seconds=10)
    batches = list(src.fetch(src.list_points(), DAY, DAY + dt.timedelta(days=1)))
    assert len(batches) > 1
    assert max(b.num_rows for b in batches) < 200_000


def test_empty_window_yields_nothing():
    src = source(points=3)
    assert list(src.fetch(src.list_points(), DAY, DAY)) == []
