"""Kafka messages -> rows for QuestDB: decoding, refusing, batching and the offsets a batch settles; no servers."""

from __future__ import annotations

import pyarrow as pa
import pytest

from naia_backfill.core.consumer.batching import BadMessage, PendingBatch, WriteJob, decode_message, merge_offsets
from naia_backfill.sinks.kafka_messages import FORMAT, MESSAGE_SCHEMA, encode_value, iter_messages
from naia_backfill.sinks.questdb import COLUMNS
from naia_backfill_tests.unit.sinks.test_kafka import mixed_batch


def messages() -> list[tuple[str, pa.RecordBatch]]:
    return list(iter_messages([mixed_batch()]))


def test_decodes_key_point_set_and_rows():
    point, mb = messages()[0]
    decoded = decode_message(point.encode(), encode_value(mb), [("naia-format", FORMAT.encode()),
                                                                ("naia-point-set", b"plant_a")])
    assert (decoded.point, decoded.point_set) == (point, "plant_a")
    assert decoded.batch.schema.equals(MESSAGE_SCHEMA) and decoded.batch.num_rows == mb.num_rows
    assert decode_message(b"A", encode_value(mb), None).point_set is None


def _negative_ts() -> bytes:
    _, mb = messages()[0]
    ts = pa.array([-1] * mb.num_rows, pa.int64()).cast(pa.timestamp("ns", tz="UTC"))
    return encode_value(mb.set_column(0, MESSAGE_SCHEMA.field("ts"), ts))


def _bad_utf8_text() -> bytes:
    _, mb = messages()[0]
    n = mb.num_rows
    offsets = pa.array(range(n + 1), pa.int32())
    text = pa.StringArray.from_buffers(n, offsets.buffers()[1], pa.py_buffer(b"\xff" * n))
    return encode_value(mb.set_column(3, MESSAGE_SCHEMA.field("text"), text))


@pytest.mark.parametrize(("key", "value", "headers", "reason"), [
    (None, encode_value(messages()[0][1]), None, "message has no key"),
    (b"\xffP", encode_value(messages()[0][1]), None, "key is not UTF-8"),
    (b"P", b'{"ts": 1}', None, "not an Arrow IPC stream"),
    (b"P", b"", None, "not an Arrow IPC stream"),
    (b"P", encode_value(messages()[0][1]), [("naia-format", b"naia-samples/9")], "unsupported naia-format"),
    (b"P", _negative_ts(), None, "before 1970-01-01"),
    (b"P", _bad_utf8_text(), None, "'text' is not valid UTF-8"),
])
def test_refuses_what_quest_db_could_not_store(key, value, headers, reason):
    with pytest.raises(BadMessage, match=reason):
        decode_message(key, value, headers)


def test_pending_batch_builds_table_rows_and_settles_offsets():
    pending = PendingBatch()
    assert not pending
    for offset, (point, mb) in enumerate(messages()):
        headers = [("naia-point-set", b"plant_a")] if point == "A" else None
        pending.add(("t", 0, offset), decode_message(point.encode(), encode_value(mb), headers))
    pending.skip(("t", 1, 41))  # a refused message on another partition
    table = pending.table()
    assert table.column_names == list(COLUMNS)
    assert table.column("point").to_pylist() == ["A"] * 4 + ["B"] * 3
    assert table.column("point_set").to_pylist() == ["plant_a"] * 4 + [None] * 3
    job = pending.job()
    assert job.offsets == {("t", 0): 2, ("t", 1): 42}  # the next offset to read, as Kafka commits it
    assert (job.rows, job.messages) == (7, 3)


def test_a_batch_of_refused_messages_only_settles_offsets():
    pending = PendingBatch()
    pending.skip(("t", 0, 5))
    job = pending.job()
    assert pending and job.frames is None and job.rows == 0 and job.offsets == {("t", 0): 6}


def test_merge_keeps_the_latest_offset_per_partition_and_only_assigned_ones():
    jobs = [WriteJob(None, {("a", 0): 10, ("a", 1): 5}, 0, 0), WriteJob(None, {("a", 0): 20, ("b", 0): 3}, 0, 0)]
    assert merge_offsets(jobs) == {("a", 0): 20, ("a", 1): 5, ("b", 0): 3}
    assert merge_offsets(jobs, {("a", 0), ("b", 0)}) == {("a", 0): 20, ("b", 0): 3}
