"""PostgreSQL column types to Arrow, for the PostgreSQL source's ``shape: rows``.

Each column is read either as the ADBC driver returns it, or cast to text in the query where Arrow, Parquet or
DuckDB have no faithful type for it; then each batch is brought to the column's Arrow type:

- integers, floats, bool, text/varchar/char/name, bytea, date, time: as read;
- ``timestamptz`` -> timestamp[us, UTC]; ``timestamp`` -> naive timestamp[us] (the point set's ``timezone``
  says where it is local; it only decides which day a row belongs to);
- ``numeric(p,s)`` with p <= 38 -> decimal128(p,s) (from the driver's exact text); unconstrained or wider
  ``numeric`` -> the server's exact text (no Arrow decimal holds every value, nor NaN and Infinity);
- json/jsonb -> their text; arrays of the types above -> lists; other arrays -> lists of text;
- everything else (uuid, interval, enums, ranges, network types, ...) -> its text form (``::text``).

The driver stores ``-infinity``/``infinity`` and timestamps or dates out of Arrow's range as wrapped numbers far
before year 1 without an error: such a value raises :class:`SourceError` instead of being written wrong.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc

from naia_backfill.errors import SourceError

NATIVE: dict[str, pa.DataType] = {
    "bool": pa.bool_(), "int2": pa.int16(), "int4": pa.int32(), "int8": pa.int64(), "float4": pa.float32(),
    "float8": pa.float64(), "text": pa.string(), "varchar": pa.string(), "bpchar": pa.string(), "name": pa.string(),
    "bytea": pa.binary(), "date": pa.date32(), "time": pa.time64("us"), "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", tz="UTC"), "json": pa.string(), "jsonb": pa.string(),
}
#: Element types whose arrays the driver reads into lists exactly.
LIST_ELEMENTS = frozenset(NATIVE) - {"json", "jsonb", "bytea"}
TEXT_TYPES = frozenset({"text", "varchar", "bpchar", "name"})
NUMERIC_TYPES = frozenset({"int2", "int4", "int8", "float4", "float8", "numeric"})
MAX_DECIMAL128_PRECISION = 38
#: Year 1 in the units Arrow stores: anything earlier is a value the driver wrapped.
_YEAR_ONE_US = -62_135_596_800_000_000
_YEAR_ONE_DAYS = (dt.date(1, 1, 1) - dt.date(1970, 1, 1)).days


@dataclasses.dataclass(frozen=True)
class PgColumn:
    """One column as the catalog describes it: ``typname`` (``_text`` for ``text[]``), the element type of an
    array, ``atttypmod`` (-1 when unconstrained) and its number in the table."""

    name: str
    typname: str
    typmod: int = -1
    element: str | None = None
    attnum: int = 0

    @property
    def is_text(self) -> bool:
        return self.element is None and self.typname in TEXT_TYPES


def numeric_precision_scale(typmod: int) -> tuple[int, int] | None:
    """``(precision, scale)`` of a ``numeric(p,s)`` column from its ``atttypmod``; None when unconstrained."""
    if typmod < 4:
        return None
    value = typmod - 4  # the catalog stores (precision << 16 | scale) + VARHDRSZ
    return (value >> 16) & 0xFFFF, value & 0xFFFF


def arrow_type(column: PgColumn) -> pa.DataType:
    """The Arrow type ``column`` is written as."""
    if column.element is not None:
        return pa.list_(NATIVE[column.element] if column.element in LIST_ELEMENTS else pa.string())
    if column.typname == "numeric":
        ps = numeric_precision_scale(column.typmod)
        if ps is None or ps[0] > MAX_DECIMAL128_PRECISION:
            return pa.string()
        return pa.decimal128(*ps)
    return NATIVE.get(column.typname, pa.string())


def select_expression(column: PgColumn, quoted: str) -> str:
    """How the day's query selects ``column`` (``quoted`` is its quoted identifier): as is, or as text."""
    if column.element is not None:
        return quoted if column.element in LIST_ELEMENTS else f"{quoted}::text[] AS {quoted}"
    if column.typname in NATIVE or (column.typname == "numeric" and arrow_type(column) != pa.string()):
        return quoted
    return f"{quoted}::text AS {quoted}"  # the server's own text (the driver writes NaN as 'nan')


def arrow_schema(columns: list[PgColumn]) -> pa.Schema:
    """The schema of the rows: every column nullable, in table order."""
    return pa.schema([pa.field(c.name, arrow_type(c)) for c in columns])


def _storage(array: pa.Array) -> pa.Array:
    """The driver's extension arrays (numeric as text, json) as their plain storage."""
    if isinstance(array.type, pa.BaseExtensionType):
        return array.storage
    if pa.types.is_list(array.type) and isinstance(array.type.value_type, pa.BaseExtensionType):
        return pa.ListArray.from_arrays(array.offsets, array.values.storage, mask=array.is_null())
    return array


def check_in_range(name: str, array: pa.Array) -> None:
    """Raise :class:`SourceError` when a timestamp or date of ``array`` lies before year 1 (the driver's wrapped
    ``infinity`` or out-of-range values)."""
    values = array.flatten() if pa.types.is_list(array.type) else array
    if pa.types.is_timestamp(values.type):
        floor, raw = _YEAR_ONE_US, values.cast(pa.int64())
    elif pa.types.is_date32(values.type):
        floor, raw = _YEAR_ONE_DAYS, values.cast(pa.int32())
    else:
        return
    low = pc.min(raw).as_py()
    if low is not None and low < floor:
        raise SourceError(
            f"column {name!r} holds a timestamp or date Arrow cannot store (infinity, or before year 1 or past "
            "year 294276): filter those rows out, or copy the column as text"
        )


def to_schema(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` as read by the driver, column by column in ``schema``'s types."""
    arrays = []
    for column, field in zip(batch.columns, schema, strict=True):
        column = _storage(column)
        if column.type != field.type:
            try:
                column = column.cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                raise SourceError(f"column {field.name!r} does not fit {field.type}: {e}") from None
        check_in_range(field.name, column)
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
