"""The columns a Parquet sink writes: the canonical sample schema, or the names, subset and timestamp form a
lake already has (``columns``, ``constant_columns``, ``timestamp_unit``, ``timestamp_as`` of the sink), e.g.
seed 002's ``timestamp`` (INT64 milliseconds), ``point_name``, ``value``, ``site_name``.

Timestamps coarser than the canonical nanoseconds are floored (a 1.9999 ms event is written as 1 ms).
:func:`canonical_select` reads such objects back as canonical columns in DuckDB (for views and checks).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

from naia_backfill.schema import SAMPLE_SCHEMA, conform
from naia_backfill.settings import ParquetSink, key_template

_NS_PER = {"ns": 1, "us": 1_000, "ms": 1_000_000}
_ANY_DAY = dt.date(2000, 1, 1)  # constant columns hold no date placeholder
#: Canonical columns a mapping leaves out, as DuckDB reads them back (the defaults of schema.from_columns).
_MISSING_SQL = {
    "value": "NULL::DOUBLE", "text": "NULL::VARCHAR", "state_code": "NULL::INTEGER", "is_system": "false",
    "good": "true", "questionable": "false", "substituted": "false", "annotated": "false",
}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def is_canonical(settings: ParquetSink) -> bool:
    """Whether the sink writes the canonical schema unchanged."""
    return (settings.columns is None and not settings.constant_columns and settings.timestamp_unit == "ns"
            and settings.timestamp_as == "timestamp")


class ColumnMapping:
    """Turns canonical batches into the batches a sink writes, for one point set."""

    def __init__(self, settings: ParquetSink, point_set: str) -> None:
        self.settings = settings
        self.identity = is_canonical(settings)
        self.columns = dict(settings.columns) if settings.columns is not None else {c: c for c in SAMPLE_SCHEMA.names}
        self.constants = {
            name: key_template.render(value, _ANY_DAY, {"point_set": point_set})
            for name, value in settings.constant_columns.items()
        }
        unit = settings.timestamp_unit
        ts_type = pa.int64() if settings.timestamp_as == "int64" else pa.timestamp(unit, tz="UTC")
        fields = [
            SAMPLE_SCHEMA.field(c).with_name(out).with_type(ts_type if c == "ts" else SAMPLE_SCHEMA.field(c).type)
            for c, out in self.columns.items()
        ]
        fields += [pa.field(name, pa.string(), nullable=False) for name in self.constants]
        self.schema = SAMPLE_SCHEMA if self.identity else pa.schema(fields)
        text_like = {"point", "text"}
        self.dictionary = [out for c, out in self.columns.items() if c in text_like] + list(self.constants)

    def apply(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The written form of one canonical batch."""
        batch = conform(batch)
        if self.identity:
            return batch
        arrays = [self._ts(batch.column("ts")) if c == "ts" else batch.column(c) for c in self.columns]
        index = pa.array(np.zeros(batch.num_rows, np.int32))
        arrays += [pa.array([v], pa.string()).take(index) for v in self.constants.values()]
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def _ts(self, ts: pa.Array) -> pa.Array:
        unit = self.settings.timestamp_unit
        ns = ts.cast(pa.int64()).to_numpy(zero_copy_only=False)
        counts = ns // _NS_PER[unit]
        return pa.array(counts, self.schema.field(self.columns["ts"]).type)


def canonical_select(settings: ParquetSink) -> str:
    """A DuckDB select list reading the sink's objects back as the canonical columns (``point``, ``ts`` as
    TIMESTAMPTZ, ``value``, ...), e.g. ``SELECT <this> FROM read_parquet([...])``."""
    columns = settings.columns if settings.columns is not None else {c: c for c in SAMPLE_SCHEMA.names}
    out = []
    for c in SAMPLE_SCHEMA.names:
        if c not in columns:
            out.append(f"{_MISSING_SQL[c]} AS {c}")
        elif c == "ts" and settings.timestamp_as == "int64":
            micros = {"ns": " // 1000", "us": "", "ms": " * 1000"}[settings.timestamp_unit]
            out.append(f"timezone('UTC', make_timestamp({_quote(columns[c])}{micros})) AS ts")
        else:
            out.append(f"{_quote(columns[c])} AS {c}")
    return ", ".join(out)
