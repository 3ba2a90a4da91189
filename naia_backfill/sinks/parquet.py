"""The Parquet lake sink: one object per (point set, day[, point group]), streamed row group by row group.

Where the object goes is the point set's :class:`~naia_backfill.sinks.layout.Layout` (hive by default, or the
sink's ``key_template``); what it holds is the canonical sample schema, or the sink's column mapping
(:mod:`naia_backfill.sinks.parquet_columns`). Either way the key depends on the point set and the day only,
and the object becomes visible only when the lake commits it.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import posixpath

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from naia_backfill.errors import SinkError
from naia_backfill.settings import ParquetSink
from naia_backfill.sinks.base import DayTarget, DayWriter, Sink, SinkResult
from naia_backfill.sinks.lake import Lake
from naia_backfill.sinks.layout import Layout
from naia_backfill.sinks.parquet_columns import ColumnMapping

#: A column of a table's own rows gets a dictionary when at most this share of the values in the day's first
#: DICTIONARY_SAMPLE_ROWS rows are distinct: building one for near-unique columns (ids, e-mails, JSON) costs
#: more than compressing the whole column, and Parquet then drops it anyway.
DICTIONARY_MAX_DISTINCT = 0.1
DICTIONARY_SAMPLE_ROWS = 16_384


def dictionary_columns(table: pa.Table) -> list[str]:
    """The Parquet column paths of ``table`` worth dictionary encoding: flat columns and lists of them (their
    elements) with few distinct values among its first rows."""
    out = []
    sample = table.slice(0, DICTIONARY_SAMPLE_ROWS)
    for field, column in zip(sample.schema, sample.columns, strict=True):
        path, values = field.name, column
        if pa.types.is_list(field.type) or pa.types.is_large_list(field.type):
            path, values = f"{field.name}.list.element", pc.list_flatten(column)
        if pa.types.is_nested(values.type) or pa.types.is_boolean(values.type):
            continue
        try:
            distinct = pc.count_distinct(values, mode="only_valid").as_py()
        except (pa.ArrowNotImplementedError, pa.ArrowTypeError):
            continue
        if distinct <= DICTIONARY_MAX_DISTINCT * max(1, len(values) - values.null_count):
            out.append(path)
    return out


class ParquetDaySink(Sink):
    kind = "parquet"

    def __init__(self, lake: Lake, settings: ParquetSink | None = None) -> None:
        self.lake = lake
        self.settings = settings or ParquetSink(kind="parquet")

    def open_day(self, target: DayTarget) -> DayWriter:
        return ParquetDayWriter(self.lake, target, self.settings)


class ParquetDayWriter(DayWriter):
    """Holds at most two row groups: the one filling, and the one before it while a thread of the writer encodes
    it (pyarrow lets go of the GIL), so that encoding overlaps waiting for the source; everything before them is
    already in the upload."""

    def __init__(self, lake: Lake, target: DayTarget, settings: ParquetSink) -> None:
        self.lake, self.target, self.settings = lake, target, settings
        self.layout = Layout(target.point_set, settings.key_template)
        self.mapping = ColumnMapping(settings, target.point_set)
        self.key = self.layout.key(target.day, target.group)
        self._upload = lake.open_upload(self.key)
        # A table's own rows (target.schema) are written as they are; samples through the column mapping. Which
        # of a table's columns get a dictionary is decided from its first row group, so its writer opens then.
        self.schema = target.schema if target.schema is not None else self.mapping.schema
        self._writer = self._open(self.mapping.dictionary) if target.schema is None else None
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self.rows = 0
        self._encoder: cf.ThreadPoolExecutor | None = None
        self._encoding: cf.Future | None = None

    def _open(self, dictionary: list[str]) -> pq.ParquetWriter:
        return pq.ParquetWriter(
            self._upload,
            self.schema.with_metadata({**(self.schema.metadata or {}), **self.target.metadata}),
            compression=None if self.settings.compression == "none" else self.settings.compression,
            compression_level=self.settings.compression_level,
            use_dictionary=dictionary,
            write_statistics=True,
        )

    def write(self, batch: pa.RecordBatch) -> None:
        batch = self.mapping.apply(batch) if self.target.schema is None else batch
        if not batch.num_rows:
            return
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        self.rows += batch.num_rows
        if self._pending_rows >= self.settings.row_group_rows:
            self._flush(final=False)

    def _flush(self, final: bool) -> None:
        size = self.settings.row_group_rows
        table = pa.Table.from_batches(self._pending, schema=self.schema)
        full = (table.num_rows // size) * size if not final else table.num_rows
        if self._writer is None:
            self._writer = self._open(dictionary_columns(table))
        self._wait()
        if full and not final:
            if self._encoder is None:
                self._encoder = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="naia-parquet")
            self._encoding = self._encoder.submit(self._encode, table, full, size)
        elif full:
            self._encode(table, full, size)
        rest = table.slice(full)
        self._pending = rest.combine_chunks().to_batches() if rest.num_rows else []
        self._pending_rows = rest.num_rows

    def _encode(self, table: pa.Table, rows: int, size: int) -> None:
        for offset in range(0, rows, size):
            self._writer.write_table(table.slice(offset, min(size, rows - offset)), row_group_size=size)

    def _wait(self) -> None:
        """Until the row group handed to the encoding thread is written; raises what writing it raised."""
        encoding, self._encoding = self._encoding, None
        if encoding is not None:
            encoding.result()

    def _stop_encoder(self) -> None:
        if self._encoder is not None:
            self._encoder.shutdown(wait=True)
            self._encoder = None

    def commit(self) -> SinkResult:
        try:
            if self._pending_rows or self._writer is None:
                self._flush(final=True)
            self._wait()
            self._stop_encoder()
            self._writer.close()
            stored = self._upload.commit()
        except SinkError:
            self.abort()
            raise
        except Exception as e:
            self.abort()
            raise SinkError(f"writing {self.lake.uri(self.key)} failed: {e}") from e
        if self.target.group is None:
            # A full day replaces the whole day, including objects of points added to it later.
            folder = self.layout.folder(self.target.day)
            for name in self.layout.group_names(self.target.day, self.lake.list_names(folder)):
                self.lake.delete(posixpath.join(folder, name))
        return SinkResult(sink="parquet", rows=self.rows, bytes=stored.size, uri=stored.uri)

    def abort(self) -> None:
        with contextlib.suppress(Exception):  # the day is dropped: what writing it raised no longer matters
            self._wait()
        self._stop_encoder()
        with contextlib.suppress(Exception):
            if self._writer is not None:
                self._writer.close()
        self._upload.abort()
