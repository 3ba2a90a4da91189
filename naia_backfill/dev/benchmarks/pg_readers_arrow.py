"""Pure helpers of `bench pg-readers`: PostgreSQL column types to Arrow, Python rows to Arrow batches, rechunking,
the day query with its filter values bound through session settings, and the summary ratios.

The type mapping is the one proposed for the PostgreSQL source's ``shape: rows``: exact where Arrow has an exact
type (``numeric(p,s)`` with p <= 38 is ``decimal128(p,s)``), text where it has none (unconstrained ``numeric``).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

_SIMPLE: dict[str, pa.DataType] = {
    "bool": pa.bool_(), "int2": pa.int16(), "int4": pa.int32(), "int8": pa.int64(), "oid": pa.uint32(),
    "float4": pa.float32(), "float8": pa.float64(), "text": pa.string(), "varchar": pa.string(),
    "bpchar": pa.string(), "name": pa.string(), "timestamptz": pa.timestamp("us", tz="UTC"),
    "timestamp": pa.timestamp("us"), "date": pa.date32(), "time": pa.time64("us"),
    "interval": pa.month_day_nano_interval(), "uuid": pa.uuid(), "bytea": pa.binary(),
    "json": pa.string(), "jsonb": pa.string(),
}
MAX_DECIMAL128_PRECISION = 38


@dataclass(frozen=True)
class PgColumn:
    """One column of a table as the catalog describes it: ``pg_type.typname`` (``_text`` for ``text[]``),
    the element type name for arrays, and ``atttypmod`` (-1 when unconstrained)."""

    name: str
    typname: str
    typmod: int = -1
    element: str | None = None


def numeric_precision_scale(typmod: int) -> tuple[int, int] | None:
    """``(precision, scale)`` of a ``numeric(p,s)`` column from its ``atttypmod``; None when unconstrained."""
    if typmod < 4:
        return None
    value = typmod - 4  # the catalog stores (precision << 16 | scale) + VARHDRSZ
    return (value >> 16) & 0xFFFF, value & 0xFFFF


def pg_arrow_type(typname: str, typmod: int = -1, element: str | None = None) -> pa.DataType:
    """The Arrow type a column of PostgreSQL type ``typname`` maps to; unknown types become text."""
    if element is not None:
        return pa.list_(pg_arrow_type(element, typmod))
    if typname == "numeric":
        ps = numeric_precision_scale(typmod)
        if ps is None or ps[0] > MAX_DECIMAL128_PRECISION or ps[1] > ps[0]:
            return pa.string()  # no Arrow decimal holds every value (and NaN/Infinity): keep the exact text
        return pa.decimal128(*ps)
    return _SIMPLE.get(typname, pa.string())


def arrow_schema(columns: Sequence[PgColumn]) -> pa.Schema:
    """The Arrow schema of a table's columns under :func:`pg_arrow_type`."""
    return pa.schema([pa.field(c.name, pg_arrow_type(c.typname, c.typmod, c.element)) for c in columns])


def rows_to_batch(rows: Sequence[Sequence[Any]], schema: pa.Schema) -> pa.RecordBatch:
    """A record batch from row tuples (as a DB-API driver returns them), column by column."""
    if not rows:
        return pa.RecordBatch.from_pylist([], schema=schema)
    columns = zip(*rows, strict=True)
    arrays = [_array(values, field.type) for values, field in zip(columns, schema, strict=True)]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _array(values: Sequence[Any], type_: pa.DataType) -> pa.Array:
    try:
        return pa.array(values, type=type_)
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        if type_ != pa.string():
            raise
        return pa.array([None if v is None else str(v) for v in values], type=type_)  # e.g. Decimal of numeric


def rechunk(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """Slices of at most ``rows`` rows (zero-copy) of each batch; smaller batches pass through unchanged."""
    for batch in batches:
        for offset in range(0, batch.num_rows, rows):
            yield batch.slice(offset, rows)


def setting_names(count: int, prefix: str = "naia.p") -> list[str]:
    """Names of the session settings that carry ``count`` bound filter values into a COPY statement."""
    return [f"{prefix}{i}" for i in range(1, count + 1)]


def bind_settings_sql(count: int, placeholder: str = "$") -> str:
    """A SELECT that stores ``count`` bound values in session settings named by :func:`setting_names`
    (COPY cannot take parameters, but it can read ``current_setting()``). ``placeholder`` is ``$`` for
    ``$1..$n`` (libpq, ADBC) or ``%s`` (psycopg)."""
    marks = [f"${i}" if placeholder == "$" else placeholder for i in range(1, count + 1)]
    calls = ", ".join(f"set_config('{name}', {mark}, false)" for name, mark in zip(setting_names(count), marks))
    return f"SELECT {calls}"


def day_where(ts_column: str, ts_typname: str, source: str) -> str:
    """The WHERE clause of one day, ``ts_column`` (already a quoted identifier) in ``[lo, hi)``; ``source`` is
    ``settings`` (read from :func:`setting_names`), ``$`` or ``%s`` (bound parameters)."""
    if source == "settings":
        lo, hi = (f"current_setting('{n}')::{ts_typname}" for n in setting_names(2))
    elif source == "$":
        lo, hi = "$1", "$2"
    else:
        lo, hi = source, source
    return f"{ts_column} >= {lo} AND {ts_column} < {hi}"


def summarise(rates: dict[str, list[float]]) -> dict[str, tuple[float, float]]:
    """Per variant the median rate and its ratio to the best median (1.0 for the best)."""
    medians = {name: statistics.median(values) for name, values in rates.items() if values}
    best = max(medians.values(), default=0.0)
    return {name: (m, m / best if best else 0.0) for name, m in medians.items()}


def conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` cast column by column to ``schema`` (a reader's extension types are unwrapped to their storage
    first, e.g. ADBC's numeric-as-text); raises ``pyarrow.ArrowInvalid`` where a value does not fit."""
    arrays = []
    for column, target in zip(batch.columns, schema, strict=True):
        if column.type != target.type:
            if isinstance(column.type, pa.BaseExtensionType):
                column = column.storage
            column = column.cast(target.type)
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
