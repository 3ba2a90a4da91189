"""The Kafka message format (naia-samples/1): encoding, splitting, decoding, keys and headers; no servers."""

from __future__ import annotations

import datetime as dt
import warnings

import numpy as np
import pyarrow as pa
import pytest
from confluent_kafka import KafkaError

from naia_backfill.errors import SinkError
from naia_backfill.schema import SAMPLE_SCHEMA, from_columns
from naia_backfill.settings import KafkaSink
from naia_backfill.sinks.base import DayTarget
from naia_backfill.sinks.kafka import KafkaDaySink
from naia_backfill.sinks.kafka_messages import (
    CONTENT_TYPE,
    FORMAT,
    MESSAGE_SCHEMA,
    MessageSplitter,
    decode_value,
    encode_value,
    header_dict,
    iter_messages,
)
from naia_backfill.sinks.questdb import COLUMNS, samples_table, to_frame

T0 = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z in ns
TARGET = DayTarget(point_set="plant_a", day=dt.date(2024, 1, 1), run_id="run-42")


def mixed_batch() -> pa.RecordBatch:
    """Two points interleaved; every column, nulls, NaN, 100 ns ticks and three events at one timestamp."""
    ts = [T0, T0, T0 + 100, T0 + 100, T0 + 100, T0 + 100, T0 + 250]
    return from_columns(
        point=["A", "B", "A", "A", "B", "A", "B"],
        ts=pa.array(ts, pa.timestamp("ns", tz="UTC")),
        value=pa.array([1.5, None, float("nan"), 2.5, 7.0, None, -0.0]),
        text=pa.array([None, "On", None, None, "Off", "I/O Timeout", None]),
        state_code=pa.array([None, 1, None, None, 0, 246, None], pa.int32()),
        is_system=[False, False, False, False, False, True, False],
        good=[True, True, False, True, True, False, True],
        questionable=[False, True, False, False, False, False, False],
        substituted=[False, False, True, False, False, False, False],
        annotated=[False, False, False, True, False, False, True],
    )


def rebuild(messages: list[tuple[str, pa.RecordBatch]]) -> dict[str, pa.Table]:
    out: dict[str, list[pa.RecordBatch]] = {}
    for point, mb in messages:
        out.setdefault(point, []).append(decode_value(encode_value(mb)))
    return {p: pa.Table.from_batches(bs) for p, bs in out.items()}


def test_round_trip_keeps_every_column_nulls_nan_and_source_order():
    batch = mixed_batch()
    got = rebuild(list(iter_messages([batch])))
    assert sorted(got) == ["A", "B"]
    for point, table in got.items():
        assert table.schema == MESSAGE_SCHEMA
        expected = batch.filter(pa.compute.equal(batch.column("point"), point))
        for name in SAMPLE_SCHEMA.names[1:]:
            if name != "value":  # NaN != NaN in lists; compared below
                assert table.column(name).to_pylist() == expected.column(name).to_pylist(), name
        values = table.column("value").to_numpy(zero_copy_only=False)
        exp_values = expected.column("value")
        assert table.column("value").is_null().to_pylist() == exp_values.is_null().to_pylist()
        np.testing.assert_array_equal(values, exp_values.to_numpy(zero_copy_only=False))  # NaN == NaN here
    assert got["A"].column("seq").to_pylist() == [0, 0, 1, 2]
    assert got["B"].column("seq").to_pylist() == [0, 0, 0]
    assert got["A"].column("ts").cast(pa.int64()).to_pylist() == [T0, T0 + 100, T0 + 100, T0 + 100]


def test_split_at_samples_per_message_with_tails_carried_over_batches():
    n = 2_500
    ts = pa.array(T0 + np.arange(n, dtype=np.int64) * 1_000_000_000, pa.timestamp("ns", tz="UTC"))
    day = from_columns(point=["A"] * n, ts=ts, value=np.arange(n, dtype=float))
    batches = [day.slice(i, 300) for i in range(0, n, 300)] + [from_columns(point=["B"] * 10, ts=ts[:10])]
    messages = list(iter_messages(batches, samples_per_message=1000))
    assert [(p, m.num_rows) for p, m in messages] == [("A", 1000), ("A", 1000), ("A", 500), ("B", 10)]
    values = np.concatenate([m.column("value").to_numpy() for p, m in messages if p == "A"])
    np.testing.assert_array_equal(values, np.arange(n, dtype=float))


def test_pending_rows_are_bounded():
    ts = pa.array(T0 + np.arange(50, dtype=np.int64), pa.timestamp("ns", tz="UTC"))
    batches = [from_columns(point=[f"P{i}" for i in range(50)], ts=ts) for _ in range(4)]
    splitter = MessageSplitter(samples_per_message=1000, max_pending_rows=100)
    emitted = 0
    for b in batches:
        emitted += sum(m.num_rows for _, m in splitter.add(b))
        assert splitter.pending_rows <= 100
    assert emitted > 0
    assert emitted + sum(m.num_rows for _, m in splitter.finish()) == 200


def test_every_row_is_emitted_exactly_once_under_any_bound():
    rng = np.random.default_rng(1)
    rows = 5_000
    point = rng.choice(["A", "B", "C", "D"], rows)
    ts = np.zeros(rows, dtype=np.int64)
    for p in "ABCD":
        m = point == p
        ts[m] = T0 + np.cumsum(rng.integers(0, 3, m.sum()))  # runs of equal timestamps
    day = from_columns(point=point, ts=pa.array(ts, pa.timestamp("ns", tz="UTC")), value=np.arange(rows, dtype=float))
    batches = [day.slice(i, 700) for i in range(0, rows, 700)]
    for spm, bound in [(1000, 1_000_000), (7, 50), (1, 10_000), (333, 1)]:
        messages = list(iter_messages(batches, samples_per_message=spm, max_pending_rows=bound))
        assert all(0 < m.num_rows <= spm for _, m in messages)
        got = rebuild(messages)
        for p in "ABCD":
            exp = day.filter(pa.compute.equal(day.column("point"), p))
            assert got[p].column("value").to_pylist() == exp.column("value").to_pylist()
            pts = got[p].column("ts").cast(pa.int64()).to_numpy()
            seq = got[p].column("seq").to_numpy()
            expected_seq = np.zeros(len(pts), dtype=np.int64)
            for i in range(1, len(pts)):
                expected_seq[i] = expected_seq[i - 1] + 1 if pts[i] == pts[i - 1] else 0
            np.testing.assert_array_equal(seq, expected_seq)


def test_equal_timestamps_split_over_batches_keep_counting():
    ts = pa.array([T0] * 5, pa.timestamp("ns", tz="UTC"))
    b = from_columns(point=["A"] * 5, ts=ts)
    messages = list(iter_messages([b.slice(0, 2), b.slice(2, 3)], samples_per_message=2, max_pending_rows=1))
    assert [m.column("seq").to_pylist() for _, m in messages] == [[0, 1], [2, 3], [4]]


def test_realtime_message_without_seq_or_flags_gets_defaults():
    us = T0 // 1000
    ts = pa.array([us, us, us + 5], pa.timestamp("us", tz="UTC"))
    table = pa.table({"ts": ts, "value": [1.0, 2.0, 3.0], "extra": ["x", "y", "z"]})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    batch = decode_value(sink.getvalue().to_pybytes())
    assert batch.schema == MESSAGE_SCHEMA
    assert batch.column("seq").to_pylist() == [0, 1, 0]
    assert batch.column("good").to_pylist() == [True] * 3
    assert batch.column("is_system").to_pylist() == [False] * 3
    assert batch.column("text").null_count == 3
    assert batch.column("ts").cast(pa.int64()).to_pylist() == [T0, T0, T0 + 5000]


@pytest.mark.parametrize("value", [b"", b"not arrow", b"{\"ts\": [1]}"])
def test_garbage_is_refused(value):
    with pytest.raises(ValueError):
        decode_value(value)


def test_message_is_compact():
    n = 1000
    ts = pa.array(T0 + np.arange(n, dtype=np.int64) * 60_000_000_000, pa.timestamp("ns", tz="UTC"))
    (_point, mb), = iter_messages([from_columns(point=["A"] * n, ts=ts, value=np.linspace(0, 1, n))])
    value = encode_value(mb)
    assert len(value) < 32 * n  # uncompressed: null columns keep their (zero) buffers
    assert len(pa.Codec("zstd").compress(value, asbytes=True)) < 16 * n  # one JSON object per sample: ~150 B


class FakeProducer:
    def __init__(self, error: KafkaError | None = None, unacked: int = 0) -> None:
        self.sent: list[dict] = []
        self.callbacks = []
        self.error, self.unacked = error, unacked

    def produce(self, topic, value, key, headers, on_delivery):
        self.sent.append({"topic": topic, "value": value, "key": key, "headers": headers})
        self.callbacks.append(on_delivery)

    def poll(self, timeout=0):
        return 0

    def flush(self, timeout=None):
        done = self.callbacks[: len(self.callbacks) - self.unacked]
        for cb in done:
            cb(self.error, None)
        return self.unacked

    def __len__(self):
        return 0


def sink_with(producer: FakeProducer, **settings) -> KafkaDaySink:
    sink = KafkaDaySink(KafkaSink(kind="kafka", **settings), "127.0.0.1:1", create_topic=False, flush_timeout=1)
    sink._producer = producer
    return sink


def test_writer_keys_headers_and_result():
    producer = FakeProducer()
    writer = sink_with(producer).open_day(TARGET)
    writer.write(mixed_batch())
    result = writer.commit()
    assert result.rows == 7 and result.extra["messages"] == 2 and result.sink == "kafka"
    assert {m["key"] for m in producer.sent} == {b"A", b"B"}
    for m in producer.sent:
        assert m["topic"] == "naia.datapoints.backfill"
        h = header_dict(m["headers"])
        assert h["content-type"] == CONTENT_TYPE and h["naia-format"] == FORMAT
        assert (h["naia-point-set"], h["naia-day"], h["naia-run-id"]) == ("plant_a", "2024-01-01", "run-42")
        assert int(h["naia-rows"]) == decode_value(m["value"]).num_rows


def test_delivery_error_fails_the_day():
    writer = sink_with(FakeProducer(error=KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))).open_day(TARGET)
    writer.write(mixed_batch())
    with pytest.raises(SinkError, match=r"Kafka broker 127.0.0.1:1: 2 message\(s\) of plant_a 2024-01-01 on topic "
                       r"'naia.datapoints.backfill' were not delivered: Broker: Message size too large"):
        writer.commit()


def test_unacknowledged_messages_fail_the_day():
    writer = sink_with(FakeProducer(unacked=1)).open_day(TARGET)
    writer.write(mixed_batch())
    with pytest.raises(SinkError, match=r"127\.0\.0\.1:1 did not acknowledge 1 message"):
        writer.commit()


def test_realtime_topic_is_refused():
    with pytest.raises(SinkError, match="realtime"):
        KafkaDaySink(KafkaSink(kind="kafka", topic="naia.datapoints"), "127.0.0.1:1")


def test_direct_table_and_ilp_frame():
    batch = mixed_batch()
    table = samples_table(batch, np.array([0, 0, 0, 1, 0, 2, 0], np.int32), "plant_a")
    assert table.column_names == list(COLUMNS)
    frame = to_frame(table)
    assert str(frame["point"].dtype) == "category" and str(frame["ts"].dtype) == "datetime64[ns, UTC]"
    assert frame["state_code"].isna().tolist() == [True, False, True, True, False, False, True]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from questdb.ingress import Buffer
    buf = Buffer(protocol_version=2)
    buf.dataframe(frame, table_name="t", symbols=["point", "point_set"], at="ts")
    lines = bytes(buf).split(b"\n")[:-1]
    assert len(lines) == 7
    assert lines[5].startswith(b"t,point=A,point_set=plant_a seq=2i,")
    assert b'text="I/O Timeout"' in lines[5] and b"state_code=246i" in lines[5] and b"is_system=t" in lines[5]
    assert lines[5].endswith(b" 1704067200000000100n")  # 100 ns ticks kept
    assert b"text=" not in lines[0] and b"state_code" not in lines[0]  # nulls are left out


def test_smallest_partial_messages_are_held_back_within_the_budget():
    from naia_backfill.sinks.kafka_messages import split_messages

    sizes = {"A": 1500, "B": 10, "C": 1999}
    points = [p for p, n in sizes.items() for _ in range(n)]
    ts = pa.array(T0 + np.arange(len(points), dtype=np.int64), pa.timestamp("ns", tz="UTC"))
    batch = from_columns(point=points, ts=ts)
    batch = batch.append_column("seq", pa.array(np.zeros(len(points), np.int32)))
    messages, tail = split_messages(batch, 1000, tail_budget=600)
    assert [(p, m.num_rows) for p, m in messages] == [("A", 1000), ("C", 1000), ("C", 999)]
    assert tail.column("point").value_counts().to_pylist() == [{"values": "A", "counts": 500},
                                                               {"values": "B", "counts": 10}]
    assert tail.column_names == batch.column_names
