from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from naia_backfill.schema import COLUMNS, SAMPLE_SCHEMA, EventSeq, conform, empty_batch, from_columns


def ts(*ns: int) -> pa.Array:
    return pa.array(list(ns), pa.int64()).cast(pa.timestamp("ns", tz="UTC"))


def test_schema_columns_and_types():
    assert COLUMNS == ("point", "ts", "value", "text", "state_code", "is_system", "good", "questionable",
                       "substituted", "annotated")
    assert SAMPLE_SCHEMA.field("ts").type == pa.timestamp("ns", tz="UTC")
    assert SAMPLE_SCHEMA.field("state_code").type == pa.int32()
    assert not SAMPLE_SCHEMA.field("point").nullable and SAMPLE_SCHEMA.field("value").nullable


def test_from_columns_defaults_to_good_without_other_flags():
    b = from_columns(point=["a"], ts=ts(5), value=[1.5])
    assert b.schema == SAMPLE_SCHEMA
    row = b.to_pylist()[0]
    assert row["good"] is True and row["questionable"] is False and row["is_system"] is False
    assert row["text"] is None and row["state_code"] is None


def test_conform_rejects_drift():
    good = from_columns(point=["a"], ts=ts(5000), value=[1.0])
    assert conform(good).num_rows == 1
    assert conform(empty_batch()).num_rows == 0
    with pytest.raises(ValueError, match="columns"):
        conform(good.drop_columns(["text"]))
    micro = good.set_column(1, "ts", good.column("ts").cast(pa.timestamp("us", tz="UTC")))
    with pytest.raises(ValueError, match="'ts' has type timestamp\\[us, tz=UTC\\]"):
        conform(micro)
    nullpoint = pa.RecordBatch.from_arrays(
        [pa.array([None], pa.string()), *good.columns[1:]], names=list(COLUMNS)
    )
    with pytest.raises(ValueError, match="'point' must not contain nulls"):
        conform(nullpoint)


def test_event_seq_numbers_equal_timestamps_in_source_order():
    seq = EventSeq()
    b = from_columns(point=["a", "b", "a", "a", "b", "a"], ts=ts(1, 1, 1, 2, 1, 1), value=[1, 2, 3, 4, 5, 6])
    assert seq(b).tolist() == [0, 0, 1, 0, 1, 2]


def test_event_seq_continues_across_batches():
    seq = EventSeq()
    assert seq(from_columns(point=["a", "a"], ts=ts(1, 2), value=[1, 2])).tolist() == [0, 0]
    assert seq(from_columns(point=["a", "a", "b"], ts=ts(2, 2, 2), value=[3, 4, 5])).tolist() == [1, 2, 0]
    assert seq(from_columns(point=["a"], ts=ts(3), value=[6])).tolist() == [0]


def test_event_seq_refuses_time_going_back_between_batches():
    seq = EventSeq()
    seq(from_columns(point=["a"], ts=ts(10), value=[1]))
    with pytest.raises(ValueError, match="'a' went back in time"):
        seq(from_columns(point=["a"], ts=ts(9), value=[1]))


def test_event_seq_matches_a_dict_count_on_random_data():
    rng = np.random.default_rng(3)
    points = rng.choice(["p", "q", "r"], 2000)
    times = np.sort(rng.integers(0, 300, 2000))
    seq = EventSeq()
    got = np.concatenate([
        seq(from_columns(point=points[i:i + 333].tolist(), ts=ts(*times[i:i + 333].tolist()), value=[0.0] * len(points[i:i + 333])))
        for i in range(0, 2000, 333)
    ])
    counts: dict[tuple[str, int], int] = {}
    expected = []
    for p, t in zip(points.tolist(), times.tolist(), strict=True):
        expected.append(counts.get((p, t), 0))
        counts[(p, t)] = expected[-1] + 1
    assert got.tolist() == expected
