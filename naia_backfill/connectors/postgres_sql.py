"""The SQL of the PostgreSQL source: the catalog queries (every name and value bound, over psycopg) and the
text of the day's query, in which only quoted identifiers taken from the catalog and fixed fragments appear.

The ADBC driver streams a result with binary COPY only for a statement without bound parameters (with
parameters it reads the whole result into memory first). So the day's values (its bounds, the time zone, the
filter values, the selected points) are first stored with ``SELECT set_config('naia.lo', $1, false), ...`` on
the same connection, and the query reads them back with ``current_setting('naia.lo')::<type>``: no value ever
appears in SQL text, and the comparisons are still against stable expressions that indexes can use.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import psycopg

from naia_backfill.connectors.postgres_types import PgColumn

#: Session settings are set on our own connections only; these keep the text of timestamps and the parsing of
#: filter values on timestamptz columns independent of the server's defaults.
SESSION = (("TimeZone", "UTC"), ("DateStyle", "ISO, YMD"), ("IntervalStyle", "postgres"))
OPS_SQL = {"=": "=", "!=": "<>", ">": ">", "<": "<", ">=": ">=", "<=": "<=", "LIKE": "LIKE", "ILIKE": "ILIKE"}

_RELATION = """
SELECT c.oid, n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = to_regclass(%s) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
"""
_COLUMNS = """
SELECT a.attname, t.typname, a.atttypmod, e.typname, a.attnum, format_type(a.atttypid, NULL)
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type e ON e.oid = t.typelem AND t.typcategory = 'A'
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
"""
#: Types whose name alone means a length of 1 (``character`` is char(1)): a filter value cast to it would be
#: cut to its first character, so it is cast to the type of any length instead.
UNSIZED_CASTS = {"bpchar": "bpchar", "_bpchar": "bpchar[]", "bit": "varbit", "_bit": "varbit[]"}
_PRIMARY_KEY = """
SELECT a.attname FROM pg_index i, unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, pos)
JOIN pg_attribute a ON a.attnum = k.attnum
WHERE i.indrelid = %s AND i.indisprimary AND a.attrelid = i.indrelid ORDER BY k.pos
"""
_LEADING_INDEX = "SELECT EXISTS (SELECT 1 FROM pg_index WHERE indrelid = %s AND indkey[0] = %s)"


def quote_ident(name: str) -> str:
    """``name`` as a quoted SQL identifier (names come from the catalog; NUL cannot occur in them)."""
    return '"' + name.replace('"', '""') + '"'


@dataclasses.dataclass(frozen=True)
class TableInfo:
    """A table as the catalog describes it: its quoted qualified name, its columns in order (with the
    SQL spelling of each type, without modifiers, for casting filter values) and its primary key."""

    oid: int
    schema: str
    name: str
    columns: dict[str, PgColumn]
    cast_types: dict[str, str]
    primary_key: list[str]

    @property
    def qualified(self) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(self.name)}"

    @property
    def display(self) -> str:
        return f"{self.schema}.{self.name}"


def describe(conn: psycopg.Connection, table: str) -> TableInfo | None:
    """The table named ``table`` (as PostgreSQL parses a name: quoted parts kept, others folded to lower case,
    an unqualified name found through the search path), or None when there is no such table or view."""
    row = conn.execute(_RELATION, (table,)).fetchone()
    if row is None:
        return None
    oid, schema, name = row
    columns, casts = {}, {}
    for attname, typname, typmod, element, attnum, cast in conn.execute(_COLUMNS, (oid,)).fetchall():
        columns[attname] = PgColumn(attname, typname, typmod, element, attnum)
        casts[attname] = UNSIZED_CASTS.get(typname, cast)
    key = [r[0] for r in conn.execute(_PRIMARY_KEY, (oid,)).fetchall()]
    return TableInfo(oid, schema, name, columns, casts, key)


def has_leading_index(conn: psycopg.Connection, info: TableInfo, column: str) -> bool:
    """Whether an index of the table starts with ``column`` (distinct values can then be walked cheaply)."""
    return bool(conn.execute(_LEADING_INDEX, (info.oid, info.columns[column].attnum)).fetchone()[0])


def bind_sql(names: Sequence[str], placeholder: str = "$") -> str:
    """A SELECT storing one bound value in each session setting of ``names`` (ours, fixed), after the fixed
    :data:`SESSION` settings; ``placeholder`` is ``$`` ($1, $2, ... for ADBC) or ``%s`` (psycopg)."""
    fixed = [f"set_config('{k}', '{v}', false)" for k, v in SESSION]
    marks = [f"${i}" if placeholder == "$" else placeholder for i in range(1, len(names) + 1)]
    bound = [f"set_config('{name}', {mark}, false)" for name, mark in zip(names, marks, strict=True)]
    return "SELECT " + ", ".join(fixed + bound)


def setting(name: str, cast: str | None = None) -> str:
    """The value of session setting ``name`` in the query, cast to ``cast`` (an SQL type from the catalog)."""
    return f"current_setting('{name}')" + (f"::{cast}" if cast else "")


def local(expression: str) -> str:
    """A timestamptz expression as the naive local time of the point set's zone (``naia.tz``)."""
    return f"({expression} AT TIME ZONE {setting('naia.tz')})"


def day_condition(ts: str, naive: bool) -> str:
    """``ts`` (a quoted column) inside the day ``[naia.lo, naia.hi)``; for a column without time zone, the bounds
    are first turned into the local times of the zone, so the comparison still uses the column's index."""
    lo, hi = setting("naia.lo", "timestamptz"), setting("naia.hi", "timestamptz")
    if naive:
        lo, hi = local(lo), local(hi)
    return f"{ts} >= {lo} AND {ts} < {hi}"


def filter_condition(column: str, op: str, cast: str, number: int) -> str:
    """One filter: ``column`` (quoted) compared with the value in setting ``naia.f<number>`` cast to the
    column's type (LIKE and ILIKE compare text)."""
    if op in ("IS NULL", "IS NOT NULL"):
        return f"{column} {op}"
    value = setting(f"naia.f{number}", "text" if op in ("LIKE", "ILIKE") else cast)
    return f"{column} {OPS_SQL[op]} {value}"


def text_array(values: Sequence[str]) -> str:
    """``values`` as the text of a PostgreSQL ``text[]`` (bound as a value, parsed by the server)."""
    return "{" + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"


def distinct_sql(qualified: str, column: str, where: str, walk_index: bool) -> str:
    """The distinct non-null values of ``column``: walked through its index one value at a time (a few index
    probes per value instead of reading the table) when there is one and no filter, else ``SELECT DISTINCT``."""
    if walk_index and not where:
        return (f"WITH RECURSIVE p(v) AS (SELECT min({column}) FROM {qualified} UNION ALL "
                f"SELECT (SELECT min({column}) FROM {qualified} WHERE {column} > p.v) FROM p WHERE p.v IS NOT NULL) "
                "SELECT v::text FROM p WHERE v IS NOT NULL")
    condition = f"{column} IS NOT NULL" + (f" AND {where}" if where else "")
    return f"SELECT DISTINCT {column}::text FROM {qualified} WHERE {condition}"
