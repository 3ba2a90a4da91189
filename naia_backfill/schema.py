"""The canonical sample schema every source yields and every sink consumes.

One row is one event of one point. Several events of a point may share a timestamp (PI keeps them all);
they are kept in source order, and sinks that need a unique key add ``seq``, the event's position among
the events of the same (point, ts) -- see :func:`event_seq`.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SAMPLE_SCHEMA = pa.schema(
    [
        pa.field("point", pa.string(), nullable=False),
        pa.field("ts", pa.timestamp("ns", tz="UTC"), nullable=False),
        pa.field("value", pa.float64()),
        pa.field("text", pa.string()),
        pa.field("state_code", pa.int32()),
        pa.field("is_system", pa.bool_(), nullable=False),
        pa.field("good", pa.bool_(), nullable=False),
        pa.field("questionable", pa.bool_(), nullable=False),
        pa.field("substituted", pa.bool_(), nullable=False),
        pa.field("annotated", pa.bool_(), nullable=False),
    ],
    metadata={"naia.schema": "sample", "naia.schema_version": "1"},
)

COLUMNS = tuple(SAMPLE_SCHEMA.names)


def empty_batch() -> pa.RecordBatch:
    """A batch with the canonical schema and no rows."""
    return pa.RecordBatch.from_pylist([], schema=SAMPLE_SCHEMA)


def conform(batch: pa.RecordBatch | pa.Table) -> pa.RecordBatch:
    """Check that ``batch`` has exactly the canonical columns and types; return it with the canonical schema.

    Sources are expected to build batches with :data:`SAMPLE_SCHEMA`; this guards sinks against a source
    that drifted (a missing column, a timestamp in microseconds, a null in a flag column).
    """
    if isinstance(batch, pa.Table):
        batch = batch.combine_chunks().to_batches()[0] if batch.num_rows else empty_batch()
    if batch.schema.names != list(COLUMNS):
        raise ValueError(f"sample batch has columns {batch.schema.names}, expected {list(COLUMNS)}")
    for field, expected in zip(batch.schema, SAMPLE_SCHEMA, strict=True):
        if field.type != expected.type:
            raise ValueError(f"sample column {field.name!r} has type {field.type}, expected {expected.type}")
        if not expected.nullable and batch.column(field.name).null_count:
            raise ValueError(f"sample column {field.name!r} must not contain nulls")
    return pa.RecordBatch.from_arrays(batch.columns, schema=SAMPLE_SCHEMA)


def conform_to(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` checked against the schema its source declared: the sample schema (see :func:`conform`), or a
    table's own columns, which it must have exactly (names and types)."""
    if schema is SAMPLE_SCHEMA:
        return conform(batch)
    if not batch.schema.equals(schema, check_metadata=False):
        raise ValueError(f"batch has columns {batch.schema}, its source declared {schema}")
    return batch


def from_columns(**columns: Iterable | pa.Array | np.ndarray) -> pa.RecordBatch:
    """Build a canonical batch from column values; missing flag columns default to good=True, others False."""
    n = None
    arrays = {}
    for name, values in columns.items():
        if name not in COLUMNS:
            raise ValueError(f"unknown sample column {name!r}")
        arr = values if isinstance(values, pa.Array) else pa.array(values, type=SAMPLE_SCHEMA.field(name).type)
        arrays[name] = arr.cast(SAMPLE_SCHEMA.field(name).type)
        n = len(arr) if n is None else n
    n = n or 0
    defaults = {"is_system": False, "good": True, "questionable": False, "substituted": False, "annotated": False}
    out = []
    for field in SAMPLE_SCHEMA:
        if field.name in arrays:
            out.append(arrays[field.name])
        elif field.name in defaults:
            out.append(pa.array(np.full(n, defaults[field.name], dtype=bool)))
        elif field.nullable:
            out.append(pa.nulls(n, type=field.type))
        else:
            raise ValueError(f"sample column {field.name!r} is required")
    return pa.RecordBatch.from_arrays(out, schema=SAMPLE_SCHEMA)


class EventSeq:
    """Numbers events that share (point, ts): 0 for the first, 1 for the next, in source order.

    Stateful across the batches of one day, so a run of equal timestamps split over two batches keeps
    counting. Inside a batch rows may come in any order (sources interleave points); across batches each
    point's events must not go back in time, which holds for every source here and is checked.
    """

    def __init__(self) -> None:
        self._last: dict[str, tuple[int, int]] = {}

    def __call__(self, batch: pa.RecordBatch) -> np.ndarray:
        n = batch.num_rows
        if n == 0:
            return np.zeros(0, dtype=np.int32)
        codes = pc.dictionary_encode(batch.column("point"))
        idx = codes.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        ts = batch.column("ts").cast(pa.int64()).to_numpy(zero_copy_only=False)
        order = np.lexsort((np.arange(n), ts, idx))
        sidx, sts = idx[order], ts[order]
        new_run = np.ones(n, dtype=bool)
        new_run[1:] = (sidx[1:] != sidx[:-1]) | (sts[1:] != sts[:-1])
        starts = np.flatnonzero(new_run)
        lengths = np.diff(np.append(starts, n))
        seq_sorted = np.arange(n) - np.repeat(starts, lengths)

        names = codes.dictionary.to_pylist()
        prev = [self._last.get(name, (np.iinfo(np.int64).min, -1)) for name in names]
        prev_ts = np.fromiter((p[0] for p in prev), dtype=np.int64, count=len(names))
        prev_seq = np.fromiter((p[1] for p in prev), dtype=np.int64, count=len(names))
        run_pt, run_ts = sidx[starts], sts[starts]
        first = np.ones(len(starts), dtype=bool)
        first[1:] = run_pt[1:] != run_pt[:-1]
        if np.any(first & (run_ts < prev_ts[run_pt])):
            bad = names[int(run_pt[np.flatnonzero(first & (run_ts < prev_ts[run_pt]))[0]])]
            raise ValueError(f"events of point {bad!r} went back in time between batches")
        cont = first & (run_ts == prev_ts[run_pt])
        seq_sorted += np.repeat(np.where(cont, prev_seq[run_pt] + 1, 0), lengths)

        last = np.append(starts[1:], n) - 1
        last_of_point = np.ones(len(starts), dtype=bool)
        last_of_point[:-1] = run_pt[1:] != run_pt[:-1]
        for r in np.flatnonzero(last_of_point):
            self._last[names[int(run_pt[r])]] = (int(run_ts[r]), int(seq_sorted[last[r]]))
        seq = np.empty(n, dtype=np.int32)
        seq[order] = seq_sorted
        return seq
