"""The Parquet lake sink: one object per (point set, day[, point group]), streamed row group by row group.

Where the object goes is the point set's :class:`~naia_backfill.sinks.layout.Layout` (hive by default, or the
sink's ``key_template``); what it holds is the canonical sample schema, or the sink's column mapping
(:mod:`naia_backfill.sinks.parquet_columns`). Either way the key depends on the point set and the day only,
and the object becomes visible only when the lake commits it.
"""

from __future__ import annotations

import posixpath

import pyarrow as pa
import pyarrow.parquet as pq

from naia_backfill.errors import SinkError
from naia_backfill.settings import ParquetSink
from naia_backfill.sinks.base import DayTarget, DayWriter, Sink, SinkResult
from naia_backfill.sinks.lake import Lake
from naia_backfill.sinks.layout import Layout
from naia_backfill.sinks.parquet_columns import ColumnMapping


class ParquetDaySink(Sink):
    kind = "parquet"

    def __init__(self, lake: Lake, settings: ParquetSink | None = None) -> None:
        self.lake = lake
        self.settings = settings or ParquetSink(kind="parquet")

    def open_day(self, target: DayTarget) -> DayWriter:
        return ParquetDayWriter(self.lake, target, self.settings)


class ParquetDayWriter(DayWriter):
    """Buffers at most one row group; everything before it is already in the upload."""

    def __init__(self, lake: Lake, target: DayTarget, settings: ParquetSink) -> None:
        self.lake, self.target, self.settings = lake, target, settings
        self.layout = Layout(target.point_set, settings.key_template)
        self.mapping = ColumnMapping(settings, target.point_set)
        self.key = self.layout.key(target.day, target.group)
        self._upload = lake.open_upload(self.key)
        compression = None if settings.compression == "none" else settings.compression
        # A table's own rows (target.schema) are written as they are; samples through the column mapping.
        self.schema = target.schema if target.schema is not None else self.mapping.schema
        self._writer = pq.ParquetWriter(
            self._upload,
            self.schema.with_metadata({**(self.schema.metadata or {}), **target.metadata}),
            compression=compression,
            compression_level=settings.compression_level,
            use_dictionary=self.mapping.dictionary if target.schema is None else True,
            write_statistics=True,
        )
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self.rows = 0

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
        for offset in range(0, full, size):
            self._writer.write_table(table.slice(offset, min(size, full - offset)), row_group_size=size)
        rest = table.slice(full)
        self._pending = rest.combine_chunks().to_batches() if rest.num_rows else []
        self._pending_rows = rest.num_rows

    def commit(self) -> SinkResult:
        try:
            if self._pending_rows:
                self._flush(final=True)
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
        try:
            self._writer.close()
        except Exception:
            pass
        self._upload.abort()
