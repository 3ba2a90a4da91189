"""The Kafka messages of a day of samples: compact Arrow messages, one point per message.

Message format ``naia-samples`` version 1 (the consumer and realtime producers use the same):

* key: the point name, UTF-8 -- a point's messages land in one partition, in time order;
* value: an Arrow IPC *stream* (schema, one record batch, end marker; buffers uncompressed -- Kafka
  compresses whole record batches) with the columns of :data:`MESSAGE_SCHEMA`: the canonical sample
  columns without ``point`` plus ``seq``, the event's ordinal among the point's events at that ``ts``;
* headers: ``content-type`` = ``application/vnd.apache.arrow.stream``, ``naia-format`` = ``naia-samples/1``,
  ``naia-point-set``, ``naia-day`` (YYYY-MM-DD), ``naia-run-id``, ``naia-rows``, and ``naia-group`` when set.

At most ``samples_per_message`` events per message; a point's events are carried over between batches so
messages are full except a point's last one of the day (or when ``max_pending_rows`` forces them out).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from naia_backfill.schema import SAMPLE_SCHEMA, EventSeq, conform
from naia_backfill.sinks.base import DayTarget

CONTENT_TYPE = "application/vnd.apache.arrow.stream"
FORMAT = "naia-samples/1"
REALTIME_TOPIC = "naia.datapoints"
MESSAGE_SCHEMA = pa.schema(
    [pa.field("ts", pa.timestamp("ns", tz="UTC"), nullable=False), pa.field("seq", pa.int32(), nullable=False)]
    + [f for f in SAMPLE_SCHEMA if f.name not in ("point", "ts")]
)
_REQUIRED = [i for i, f in enumerate(MESSAGE_SCHEMA) if not f.nullable]
_FLAG_DEFAULTS = {"is_system": False, "good": True, "questionable": False, "substituted": False, "annotated": False}


def encode_value(batch: pa.RecordBatch) -> bytes:
    """One message value: ``batch`` (columns of :data:`MESSAGE_SCHEMA`) as an Arrow IPC stream."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, MESSAGE_SCHEMA) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def split_messages(batch: pa.RecordBatch, samples_per_message: int, tail_budget: int = 0
                   ) -> tuple[list[tuple[str, pa.RecordBatch]], pa.RecordBatch | None]:
    """Split a batch (canonical columns plus ``seq``) into (point, message batch) pairs, each point's rows in order.

    Each point's last partial message is held back instead (returned as one batch with the input's columns,
    to go in front of the next batch) while the held-back rows fit ``tail_budget``; the smallest are held.
    """
    n = batch.num_rows
    if n == 0:
        return [], None
    codes = pc.dictionary_encode(batch.column("point"))
    idx = codes.indices.to_numpy(zero_copy_only=False)
    order = np.argsort(idx, kind="stable")
    sidx = idx[order]
    starts = np.flatnonzero(np.r_[True, sidx[1:] != sidx[:-1]])
    ends = np.r_[starts[1:], n]
    tails = (ends - starts) % samples_per_message
    by_size = np.argsort(tails, kind="stable")
    held = np.zeros(len(starts), dtype=bool)
    held[by_size[np.cumsum(tails[by_size]) <= tail_budget]] = True
    held &= tails > 0
    ordered = batch.select(MESSAGE_SCHEMA.names).take(pa.array(order))
    ordered = pa.RecordBatch.from_arrays(ordered.columns, schema=MESSAGE_SCHEMA)
    names = codes.dictionary.to_pylist()
    out: list[tuple[str, pa.RecordBatch]] = []
    for s, e, t, h in zip(starts.tolist(), ends.tolist(), tails.tolist(), held.tolist(), strict=True):
        name = names[int(sidx[s])]
        for a in range(s, e - t if h else e, samples_per_message):
            out.append((name, ordered.slice(a, min(samples_per_message, (e - t if h else e) - a))))
    if not held.any():
        return out, None
    keep = np.concatenate([order[e - t:e] for e, t in zip(ends[held], tails[held], strict=True)])
    return out, batch.take(pa.array(keep))


class MessageSplitter:
    """Turns a day's canonical batches into (point, message batch) pairs. Each point's partial message is
    carried over to the next batch (up to half of ``max_pending_rows`` rows) so messages are mostly full;
    at most about ``max_pending_rows`` rows wait."""

    def __init__(self, samples_per_message: int, max_pending_rows: int = 500_000) -> None:
        self.spm = samples_per_message
        self.max_pending_rows = max_pending_rows
        self.seq = EventSeq()
        self.pending: list[pa.RecordBatch] = []
        self.pending_rows = 0

    def add(self, batch: pa.RecordBatch) -> list[tuple[str, pa.RecordBatch]]:
        batch = conform(batch)
        if batch.num_rows == 0:
            return []
        self.pending.append(batch.append_column(pa.field("seq", pa.int32(), nullable=False),
                                                pa.array(self.seq(batch), pa.int32())))
        self.pending_rows += batch.num_rows
        return self._drain(final=False) if self.pending_rows >= self.max_pending_rows else []

    def finish(self) -> list[tuple[str, pa.RecordBatch]]:
        return self._drain(final=True)

    def clear(self) -> None:
        self.pending, self.pending_rows = [], 0

    def _drain(self, final: bool) -> list[tuple[str, pa.RecordBatch]]:
        if not self.pending:
            return []
        whole = pa.Table.from_batches(self.pending).combine_chunks().to_batches()[0]
        self.clear()
        messages, tail = split_messages(whole, self.spm, 0 if final else self.max_pending_rows // 2)
        if tail is not None:
            self.pending, self.pending_rows = [tail], tail.num_rows
        return messages


def decode_value(value: bytes | memoryview) -> pa.RecordBatch:
    """Decode a message value into a batch with exactly :data:`MESSAGE_SCHEMA`.

    Tolerates what a realtime producer may leave out: ``seq`` (then numbered within the message), the
    flag columns (canonical defaults) and value/text/state_code (null); other columns are ignored.
    """
    try:
        reader = pa.ipc.open_stream(value)
        batches = list(reader)
    except (pa.ArrowInvalid, OSError) as e:
        raise ValueError(f"message value is not an Arrow IPC stream: {e}") from e
    if reader.schema.equals(MESSAGE_SCHEMA) and len(batches) == 1:  # what our producers write: no copies
        batch = batches[0]
        for i in _REQUIRED:
            if batch.column(i).null_count:
                raise ValueError(f"message column {MESSAGE_SCHEMA.names[i]!r} must not contain nulls")
        return batch
    table = pa.Table.from_batches(batches, schema=reader.schema)
    n = table.num_rows
    if "ts" not in table.column_names:
        raise ValueError("message has no 'ts' column")
    cols = []
    for field in MESSAGE_SCHEMA:
        if field.name in table.column_names:
            col = table.column(field.name).combine_chunks()
            if col.type != field.type:
                col = col.cast(field.type)
            if not field.nullable and col.null_count:
                raise ValueError(f"message column {field.name!r} must not contain nulls")
        elif field.name == "seq":
            col = pa.array(_seq_within(table.column("ts").combine_chunks().cast(pa.int64()).to_numpy()))
        elif field.name in _FLAG_DEFAULTS:
            col = pa.array(np.full(n, _FLAG_DEFAULTS[field.name]))
        else:
            col = pa.nulls(n, field.type)
        cols.append(col)
    return pa.RecordBatch.from_arrays(cols, schema=MESSAGE_SCHEMA)


def _seq_within(ts: np.ndarray) -> np.ndarray:
    """Ordinal of each event among the message's events with the same timestamp, in message order."""
    n = len(ts)
    order = np.argsort(ts, kind="stable")
    sts = ts[order]
    starts = np.flatnonzero(np.r_[True, sts[1:] != sts[:-1]])
    seq = np.empty(n, dtype=np.int32)
    seq[order] = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))
    return seq


def headers_for(target: DayTarget, rows: int) -> list[tuple[str, bytes]]:
    h = [
        ("content-type", CONTENT_TYPE.encode()),
        ("naia-format", FORMAT.encode()),
        ("naia-point-set", target.point_set.encode()),
        ("naia-day", target.day.isoformat().encode()),
        ("naia-run-id", target.run_id.encode()),
        ("naia-rows", str(rows).encode()),
    ]
    if target.group:
        h.append(("naia-group", target.group.encode()))
    return h


def header_dict(headers: Sequence[tuple[str, bytes | None]] | None) -> dict[str, str]:
    return {k: (v or b"").decode("utf-8", "replace") for k, v in headers or ()}


def iter_messages(batches: Sequence[pa.RecordBatch], samples_per_message: int = 1000,
                  max_pending_rows: int = 500_000) -> Iterator[tuple[str, pa.RecordBatch]]:
    """Every (point, message batch) a day's canonical batches become, exactly as the Kafka sink sends them."""
    splitter = MessageSplitter(samples_per_message, max_pending_rows)
    for b in batches:
        yield from splitter.add(b)
    yield from splitter.finish()
