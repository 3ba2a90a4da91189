"""The Parquet lake sink: one object per (point set, day[, point group]), streamed row group by row group."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from naia_backfill.errors import SinkError
from naia_backfill.schema import SAMPLE_SCHEMA, conform
from naia_backfill.settings import ParquetSink
from naia_backfill.sinks import layout
from naia_backfill.sinks.base import DayTarget, DayWriter, Sink, SinkResult
from naia_backfill.sinks.lake import Lake


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
        self.key = layout.object_key(target.point_set, target.day, target.group)
        self._upload = lake.open_upload(self.key)
        compression = None if settings.compression == "none" else settings.compression
        self._writer = pq.ParquetWriter(
            self._upload,
            SAMPLE_SCHEMA,
            compression=compression,
            compression_level=settings.compression_level,
            use_dictionary=["point", "text"],
            write_statistics=True,
        )
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self.rows = 0

    def write(self, batch: pa.RecordBatch) -> None:
        batch = conform(batch)
        if not batch.num_rows:
            return
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        self.rows += batch.num_rows
        if self._pending_rows >= self.settings.row_group_rows:
            self._flush(final=False)

    def _flush(self, final: bool) -> None:
        size = self.settings.row_group_rows
        table = pa.Table.from_batches(self._pending, schema=SAMPLE_SCHEMA)
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
            prefix = layout.day_prefix(self.target.point_set, self.target.day)
            for name in self.lake.list_names(prefix):
                if name != layout.FULL_DAY:
                    self.lake.delete(f"{prefix}/{name}")
        return SinkResult(sink="parquet", rows=self.rows, bytes=stored.size, uri=stored.uri)

    def abort(self) -> None:
        try:
            self._writer.close()
        except Exception:
            pass
        self._upload.abort()
