"""What a PostgreSQL point set reads, decided from its settings and the table's catalog: the checks that refuse a
setting the table cannot satisfy, the text of the day's query, and how its batches become the sample schema.

The query text holds only quoted identifiers from the catalog and fixed fragments; every value (the day's
bounds, the zone, filter values, selected points) is a session setting bound beforehand (see
:mod:`naia_backfill.connectors.postgres_sql`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from naia_backfill import schema as samples
from naia_backfill.connectors import postgres_sql as q
from naia_backfill.connectors.postgres_sql import TableInfo, quote_ident
from naia_backfill.connectors.postgres_types import NUMERIC_TYPES, arrow_schema, select_expression
from naia_backfill.settings.sources import PostgresSource

TS_NS = pa.timestamp("ns", tz="UTC")


def problems(s: PostgresSource, info: TableInfo) -> list[str]:
    """Why the point set's settings do not fit the table, one sentence each (empty when they do)."""
    out: list[str] = []
    named = [s.timestamp_column, s.point_column, s.value_column, *(s.value_columns or []), s.text_column,
             s.quality_column, *(s.key_columns or []), *(f.column for f in s.filters)]
    unknown = sorted({c for c in named if c is not None and c not in info.columns})
    if unknown:
        out.append(f"{info.display} has no column {', '.join(map(repr, unknown))} (columns: "
                   f"{', '.join(info.columns)}; names are case-sensitive, as the catalog spells them)")
        return out
    ts = info.columns[s.timestamp_column]
    if ts.element is not None or ts.typname not in ("timestamptz", "timestamp"):
        out.append(f"timestamp_column {s.timestamp_column!r} is {info.cast_types[ts.name]}: it must be "
                   "timestamp with time zone (or timestamp without time zone and a timezone setting)")
    elif ts.typname == "timestamp" and s.timezone is None:
        out.append(f"timestamp_column {s.timestamp_column!r} is timestamp without time zone: set source.timezone to "
                   "the zone its values are local to (e.g. UTC, Europe/Paris)")
    elif ts.typname == "timestamptz" and s.timezone is not None:
        out.append(f"timestamp_column {s.timestamp_column!r} is timestamp with time zone: remove source.timezone "
                   "(it is for columns without a time zone)")
    for name in [s.value_column, *(s.value_columns or [])]:
        column = info.columns.get(name) if name else None
        if column is not None and (column.element is not None or column.typname not in NUMERIC_TYPES | {"bool"}):
            out.append(f"value column {name!r} is {info.cast_types[name]}: it must be numeric or boolean "
                       "(a text column goes in text_column)")
    quality = info.columns.get(s.quality_column) if s.quality_column else None
    if quality is not None and quality.typname != "bool" and s.good_quality is None:
        out.append(f"quality_column {s.quality_column!r} is {info.cast_types[quality.name]}: list its good values "
                   "in good_quality (e.g. [192])")
    for i, f in enumerate(s.filters, start=1):
        if f.op in ("LIKE", "ILIKE") and not info.columns[f.column].is_text:
            out.append(f"filter {i}: {f.op} compares text, and column {f.column!r} is {info.cast_types[f.column]}")
    return out


@dataclasses.dataclass(frozen=True)
class DayQuery:
    """The day's query, the session settings it reads (bound before it runs, in this order) and their values
    apart from the day's bounds."""

    sql: str
    settings: list[str]
    values: list[str]

    def bound(self, lo: str, hi: str) -> list[str]:
        """Every setting's value, the day's bounds (ISO text) first."""
        return [lo, hi, *self.values]


def _naive(s: PostgresSource, info: TableInfo) -> bool:
    return info.columns[s.timestamp_column].typname == "timestamp"


def where(s: PostgresSource, info: TableInfo) -> tuple[str, list[str], list[str]]:
    """The filters as one condition ('' without filters), the settings they read and their values."""
    parts, names, values = [], [], []
    for i, f in enumerate(s.filters, start=1):
        parts.append(q.filter_condition(quote_ident(f.column), f.op, info.cast_types[f.column], i))
        if f.op not in ("IS NULL", "IS NOT NULL"):
            names.append(f"naia.f{i}")
            values.append(f.text)
    return " AND ".join(parts), names, values


def day_query(s: PostgresSource, info: TableInfo, points: Sequence[str] | None) -> DayQuery:
    """The query of one day. ``points``: the narrow table's points to read (None: every point)."""
    ts = quote_ident(s.timestamp_column)
    naive = _naive(s, info)
    filters, names, values = where(s, info)
    settings = ["naia.lo", "naia.hi"] + (["naia.tz"] if naive else []) + names
    values = ([s.timezone or ""] if naive else []) + values
    conditions = [q.day_condition(ts, naive)] + ([filters] if filters else [])
    order = ""
    if s.shape == "rows":
        select = ", ".join(select_expression(info.columns[c], quote_ident(c)) for c in info.columns)
    else:
        select = _samples_select(s, info, q.local(ts) if naive else ts)
        order = f" ORDER BY {ts}"  # each point's events in time order, as the sample schema wants them
        if s.point_column is not None:
            point = quote_ident(s.point_column)
            conditions.append(f"{point} IS NOT NULL")
            if points is not None:
                conditions.append(f"{point}::text IN (SELECT unnest({q.setting('naia.points', 'text[]')}))")
                settings.append("naia.points")
                values.append(q.text_array(points))
    sql = f"SELECT {select} FROM {info.qualified} WHERE {' AND '.join(conditions)}{order}"
    return DayQuery(sql, settings, values)


def _number(s: PostgresSource, info: TableInfo, column: str) -> str:
    quoted = quote_ident(column)
    return f"{quoted}::int::float8" if info.columns[column].typname == "bool" else f"{quoted}::float8"


def _samples_select(s: PostgresSource, info: TableInfo, ts: str) -> str:
    parts = [f"{ts} AS ts"]
    if s.point_column is not None and s.value_column is not None:
        parts += [f"{quote_ident(s.point_column)}::text AS point", f"{_number(s, info, s.value_column)} AS value"]
        if s.text_column is not None:
            parts.append(f"{quote_ident(s.text_column)}::text AS text")
    else:
        parts += [f"{_number(s, info, c)} AS v{i}" for i, c in enumerate(s.value_columns or [])]
    if s.quality_column is not None:
        parts.append(f"{quote_ident(s.quality_column)}::text AS quality")
    return ", ".join(parts)


def rows_schema(info: TableInfo) -> pa.Schema:
    """The Arrow schema of ``shape: rows`` batches."""
    return arrow_schema(list(info.columns.values()))


def good_values(s: PostgresSource) -> pa.Array | None:
    """The text forms of quality_column's good values (None without a quality column)."""
    if s.quality_column is None:
        return None
    values = s.good_quality if s.good_quality is not None else [True]
    return pa.array([("true" if v else "false") if isinstance(v, bool) else str(v) for v in values], pa.string())


def _good(batch: pa.RecordBatch, good: pa.Array | None, mask: pa.Array | None = None) -> dict[str, pa.Array]:
    if good is None:
        return {}
    quality = batch.column("quality") if mask is None else batch.column("quality").filter(mask)
    return {"good": pc.fill_null(pc.is_in(quality, value_set=good), False)}


def narrow_batch(batch: pa.RecordBatch, good: pa.Array | None) -> pa.RecordBatch:
    """A batch of a point-per-row table as samples."""
    columns = {"point": batch.column("point"), "ts": batch.column("ts").cast(TS_NS), "value": batch.column("value")}
    if "text" in batch.schema.names:
        columns["text"] = batch.column("text")
    return samples.from_columns(**columns, **_good(batch, good))


def wide_batches(batch: pa.RecordBatch, points: Sequence[tuple[int, str]], good: pa.Array | None
                 ) -> tuple[list[pa.RecordBatch], int]:
    """A batch of a wide table as one sample batch per selected column (``points``: its position among
    value_columns and its name), NULL cells left out; also how many cells were NULL."""
    ts = batch.column("ts").cast(TS_NS)
    out, dropped = [], 0
    for i, name in points:
        value = batch.column(f"v{i}")
        mask = pc.is_valid(value)
        kept = value.filter(mask)
        dropped += len(value) - len(kept)
        if len(kept):
            point = pa.repeat(pa.scalar(name, pa.string()), len(kept))
            out.append(samples.from_columns(point=point, ts=ts.filter(mask), value=kept, **_good(batch, good, mask)))
    return out, dropped
