"""Kafka messages -> validated Arrow batches -> one table per QuestDB request, with the offsets it settles."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from naia_backfill.core.consumer.frames import ilp_frames
from naia_backfill.sinks.kafka_messages import FORMAT, MESSAGE_SCHEMA, decode_value, encode_value
from naia_backfill.sinks.questdb import COLUMNS

#: (topic, partition)
Partition = tuple[str, int]


class BadMessage(ValueError):
    """A message that can never be written: its reason goes into the dead-letter headers."""


@dataclasses.dataclass(frozen=True)
class Decoded:
    """One message's rows and where they come from."""

    point: str
    point_set: str | None
    batch: pa.RecordBatch


def decode_message(key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes | None]] | None
                   ) -> Decoded:
    """A ``naia-samples/1`` message as rows QuestDB will accept, or BadMessage saying why it cannot be.

    Beyond decoding, refuses what would make the whole QuestDB request fail later: timestamps before 1970
    (the designated timestamp must not be negative) and text that is not UTF-8."""
    if not key:
        raise BadMessage("message has no key (the point name)")
    try:
        point = key.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadMessage(f"key is not UTF-8: {e}") from None
    point_set = None
    for name, raw in headers or ():
        if name == "naia-point-set":
            point_set = (raw or b"").decode("utf-8", "replace") or None
        elif name == "naia-format" and raw and raw.decode("utf-8", "replace") != FORMAT:
            raise BadMessage(f"unsupported naia-format {raw.decode('utf-8', 'replace')!r} (expected {FORMAT!r})")
    batch = _decode_ours(value) if value else None
    if batch is None:
        try:
            batch = decode_value(value or b"")
        except ValueError as e:
            raise BadMessage(str(e)) from None
    if batch.num_rows:
        ts = batch.column(0)
        if np.frombuffer(ts.buffers()[1], np.int64, len(ts), ts.offset * 8).min() < 0:
            raise BadMessage("a timestamp is before 1970-01-01 (QuestDB refuses negative designated timestamps)")
        text = batch.column(3)
        if text.null_count < len(text):
            try:
                text.validate(full=True)
            except pa.ArrowInvalid as e:
                raise BadMessage(f"column 'text' is not valid UTF-8: {e}") from None
    return Decoded(point, point_set, batch)


def _schema_message() -> bytes:
    """The IPC schema message our producers put in front of every value (``encode_value``), as bytes."""
    empty = pa.RecordBatch.from_pylist([], schema=MESSAGE_SCHEMA)
    reader = pa.ipc.MessageReader.open_stream(pa.py_buffer(encode_value(empty)))
    return reader.read_next_message().metadata.to_pybytes()


_OURS = _schema_message()


def _decode_ours(value: bytes) -> pa.RecordBatch | None:
    """The batch of a value written by our producers, without copies or parsing its schema; None for anything
    else (left to the general ``decode_value``)."""
    try:
        reader = pa.ipc.MessageReader.open_stream(pa.py_buffer(value))
        if reader.read_next_message().metadata.to_pybytes() != _OURS:
            return None
        batch = pa.ipc.read_record_batch(reader.read_next_message(), MESSAGE_SCHEMA)
    except (pa.ArrowInvalid, OSError, StopIteration):
        return None
    try:
        reader.read_next_message()
        return None  # more than one batch
    except StopIteration:
        pass  # the end of the stream, as our producers write it
    except (pa.ArrowInvalid, OSError):
        return None
    if batch.column(0).null_count or batch.column(1).null_count:
        return None  # decode_value names the column
    return batch


@dataclasses.dataclass
class WriteJob:
    """Rows for one QuestDB request, as the frames to serialise (None: no rows, only offsets), and per partition
    the next offset to commit once QuestDB accepted them."""

    frames: list[pd.DataFrame] | None
    offsets: dict[Partition, int]
    rows: int
    messages: int


class PendingBatch:
    """Decoded messages waiting to become a WriteJob, and the offsets they (and skipped messages) settle."""

    def __init__(self) -> None:
        self.batches: list[pa.RecordBatch] = []
        self.points: list[str] = []
        self.point_sets: list[str | None] = []
        self.offsets: dict[Partition, int] = {}
        self.rows = 0
        self.messages = 0
        self.since = 0.0

    def __bool__(self) -> bool:
        return bool(self.offsets)

    def add(self, where: tuple[str, int, int], decoded: Decoded) -> None:
        if decoded.batch.num_rows:
            self.batches.append(decoded.batch)
            self.points.append(decoded.point)
            self.point_sets.append(decoded.point_set)
            self.rows += decoded.batch.num_rows
        self.skip(where)

    def skip(self, where: tuple[str, int, int]) -> None:
        """Settle a message that adds no rows (dead-lettered or skipped) with this batch."""
        if not self.offsets:
            self.since = time.monotonic()
        topic, partition, offset = where
        self.offsets[(topic, partition)] = offset + 1
        self.messages += 1

    def job(self) -> WriteJob:
        """The batch ready for the writer: its frames are built here, on the consumer's thread, so the writer's
        serialiser does nothing but the GIL-free serialisation."""
        frames = ilp_frames(self.table()) if self.batches else None
        return WriteJob(frames, self.offsets, self.rows, self.messages)

    def table(self) -> pa.Table:
        """The rows in table column order; ``point`` and ``point_set`` dictionary-encoded from the messages."""
        lengths = np.fromiter((b.num_rows for b in self.batches), dtype=np.int64, count=len(self.batches))
        body = pa.Table.from_batches(self.batches, schema=MESSAGE_SCHEMA)
        cols = {name: body.column(name) for name in MESSAGE_SCHEMA.names}
        cols["point"] = repeat_dictionary(self.points, lengths)
        cols["point_set"] = repeat_dictionary(self.point_sets, lengths)
        return pa.table({name: cols[name] for name in COLUMNS})


def repeat_dictionary(values: Sequence[str | None], lengths: np.ndarray) -> pa.DictionaryArray:
    """Each value repeated ``lengths`` times, dictionary-encoded; None becomes null."""
    codes: dict[str | None, int] = {}
    idx = np.fromiter((-1 if v is None else codes.setdefault(v, len(codes)) for v in values), dtype=np.int32,
                      count=len(values))
    rows = np.repeat(idx, lengths)
    return pa.DictionaryArray.from_arrays(pa.array(rows, mask=rows < 0), pa.array(list(codes), pa.string()))


def merge_offsets(jobs: Sequence[WriteJob], assigned: set[Partition] | None = None) -> dict[Partition, int]:
    """The offsets to commit after ``jobs`` (in order) were written: the latest per partition, limited to the
    partitions still ``assigned`` (a revoked partition's offsets belong to its new owner)."""
    out: dict[Partition, int] = {}
    for job in jobs:
        out.update(job.offsets)
    return {p: o for p, o in out.items() if assigned is None or p in assigned}
