"""The readers `bench pg-readers` compares: each opens its own connection and yields the rows of one table (one
UTC day of it, or all of it) as Arrow record batches of the size the driver makes (the caller slices them);
leaving the ``with`` block early stops the read.

Filter values reach the server as bound parameters (or as bound session settings that the constant query text
reads with ``current_setting()``), except where the reader has no way to bind them (connectorx): there the
benchmark's own values are rendered as literals, which is noted in the report.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pyarrow as pa

from naia_backfill.dev.benchmarks.pg_readers_arrow import (
    PgColumn,
    arrow_schema,
    bind_settings_sql,
    day_where,
    rows_to_batch,
)

Batches = Iterator[pa.RecordBatch]


@dataclass(frozen=True)
class TableRead:
    """What to read: ``schema.table`` (plain names), its columns from the catalog, and optionally the day
    ``[lo, hi)`` of ``ts_column``."""

    dsn: str
    schema: str
    table: str
    columns: tuple[PgColumn, ...]
    ts_column: str | None = None
    lo: dt.datetime | None = None
    hi: dt.datetime | None = None
    batch_rows: int = 10_000
    options: dict[str, str] = field(default_factory=dict)

    @property
    def qualified(self) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(self.table)}"

    @property
    def column_list(self) -> str:
        return ", ".join(quote_ident(c.name) for c in self.columns)

    @property
    def ts_typname(self) -> str:
        return next(c.typname for c in self.columns if c.name == self.ts_column)

    def select(self, source: str) -> str:
        """``SELECT`` of the table's columns, filtered to the day when there is one (see :func:`day_where`)."""
        query = f"SELECT {self.column_list} FROM {self.qualified}"
        if self.ts_column:
            query += " WHERE " + day_where(quote_ident(self.ts_column), self.ts_typname, source)
        return query

    @property
    def window(self) -> tuple[dt.datetime, dt.datetime] | tuple[()]:
        return (self.lo, self.hi) if self.ts_column and self.lo and self.hi else ()


def quote_ident(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


@contextlib.contextmanager
def adbc_copy(r: TableRead) -> Iterator[Batches]:
    """ADBC PostgreSQL driver, binary COPY into Arrow (in C); day bounds bound into session settings first,
    because the driver reads results with COPY only for parameterless statements."""
    import adbc_driver_postgresql.dbapi as adbc

    conn = adbc.connect(r.dsn, autocommit=True)
    cur = conn.cursor()
    try:
        if "hint_bytes" in r.options:
            cur.adbc_statement.set_options(**{"adbc.postgresql.batch_size_hint_bytes": r.options["hint_bytes"]})
        if r.window:
            cur.execute(bind_settings_sql(2), tuple(v.isoformat() for v in r.window))
            cur.fetchall()
        cur.execute(r.select("settings"))
        reader = cur.fetch_record_batch()
        yield iter(reader)
        reader.close()
    finally:
        cur.close()
        conn.close()


@contextlib.contextmanager
def adbc_bound(r: TableRead) -> Iterator[Batches]:
    """ADBC with the day bounds as bound parameters ($1, $2): the driver cannot COPY and reads the result whole."""
    import adbc_driver_postgresql.dbapi as adbc

    conn = adbc.connect(r.dsn, autocommit=True)
    cur = conn.cursor()
    try:
        cur.execute(r.select("$"), r.window or None)
        reader = cur.fetch_record_batch()
        yield iter(reader)
        reader.close()
    finally:
        cur.close()
        conn.close()


def _psycopg_connect(r: TableRead, autocommit: bool):  # noqa: ANN202 - psycopg is imported lazily
    import psycopg
    from psycopg.types.json import set_json_loads

    conn = psycopg.connect(r.dsn, autocommit=autocommit)
    set_json_loads(lambda data: data if isinstance(data, str) else bytes(data).decode(), conn)  # keep JSON text
    return conn


def _psycopg_type(c: PgColumn) -> str:
    return f"{c.element}[]" if c.element else c.typname


@contextlib.contextmanager
def psycopg_copy(r: TableRead) -> Iterator[Batches]:
    """psycopg 3 ``COPY (SELECT ...) TO STDOUT (FORMAT BINARY)``, rows loaded by psycopg and packed into Arrow;
    the day bounds are bound into session settings (COPY takes no parameters)."""
    conn = _psycopg_connect(r, autocommit=True)
    schema = arrow_schema(r.columns)
    finished = False
    try:
        if r.window:
            conn.execute(bind_settings_sql(2, "%s"), tuple(v.isoformat() for v in r.window))
        with conn.cursor() as cur, cur.copy(f"COPY ({r.select('settings')}) TO STDOUT (FORMAT BINARY)") as copy:
            copy.set_types([_psycopg_type(c) for c in r.columns])

            def batches() -> Batches:
                nonlocal finished
                rows: list[tuple] = []
                for row in copy.rows():
                    rows.append(row)
                    if len(rows) == r.batch_rows:
                        yield rows_to_batch(rows, schema)
                        rows = []
                if rows:
                    yield rows_to_batch(rows, schema)
                finished = True

            yield batches()
            if not finished:
                conn.cancel_safe()  # the server stops sending; psycopg then drains what is in flight
                raise _Stopped
    except _Stopped:
        pass
    finally:
        conn.close()


class _Stopped(Exception):
    """Raised inside psycopg's COPY block so that it cancels the COPY instead of leaving it half read."""


@contextlib.contextmanager
def psycopg_cursor(r: TableRead) -> Iterator[Batches]:
    """psycopg 3 server-side (named) cursor in binary mode, ``fetchmany(batch_rows)`` packed into Arrow;
    the day bounds are bound parameters of the DECLARE (extended protocol)."""
    conn = _psycopg_connect(r, autocommit=False)
    schema = arrow_schema(r.columns)
    try:
        cur = conn.cursor(name="naia_bench_day", binary=True)
        cur.execute(r.select("%s"), r.window or None)

        def batches() -> Batches:
            while rows := cur.fetchmany(r.batch_rows):
                yield rows_to_batch(rows, schema)

        yield batches()
        cur.close()
        conn.rollback()
    finally:
        conn.close()


def _duckdb_extension() -> str:
    """The postgres extension shipped by ``duckdb-extension-postgres``, under the file name LOAD expects."""
    import duckdb_extension_postgres

    root = os.path.dirname(duckdb_extension_postgres.__file__)
    shipped = next(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.endswith(".duckdb_extension"))
    target = os.path.join(tempfile.gettempdir(), "naia-duckdb-ext", "postgres_scanner.duckdb_extension")
    if not os.path.exists(target):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(shipped, target)
    return target


@contextlib.contextmanager
def duckdb_scan(r: TableRead) -> Iterator[Batches]:
    """DuckDB's postgres scanner over an ATTACHed database; the day bounds are DuckDB prepared parameters
    (the scanner renders pushed-down filters as literals in the COPY it sends to PostgreSQL)."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute(f"LOAD '{_duckdb_extension()}'")
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"ATTACH '{r.dsn}' AS pg (TYPE postgres, READ_ONLY)")  # ATTACH takes no parameters
        query = f"SELECT {r.column_list} FROM pg.{r.qualified}"
        if r.ts_column:
            query += " WHERE " + day_where(quote_ident(r.ts_column), "TIMESTAMPTZ", "?")
        reader = con.execute(query, list(r.window)).to_arrow_reader(r.batch_rows)
        yield iter(reader)
        reader.close()  # without it the scanner's PostgreSQL connections stay open and the server keeps sending
        con.interrupt()
    finally:
        con.close()


def _literal(value: dt.datetime) -> str:
    return f"'{value.isoformat()}'::timestamptz"  # the benchmark's own datetimes: no quote can occur


def _connectorx_query(r: TableRead) -> str:
    query = f"SELECT {r.column_list} FROM {r.qualified}"
    if r.ts_column and r.lo and r.hi:
        column = quote_ident(r.ts_column)
        query += f" WHERE {column} >= {_literal(r.lo)} AND {column} < {_literal(r.hi)}"
    return query


@contextlib.contextmanager
def connectorx_stream(r: TableRead) -> Iterator[Batches]:
    """connectorx ``return_type="arrow_stream"`` (batches of ``batch_size`` rows); no bound parameters."""
    import connectorx as cx

    reader = cx.read_sql(r.dsn, _connectorx_query(r), return_type="arrow_stream", batch_size=r.batch_rows)
    yield iter(reader)
    reader.close()  # does not stop connectorx's producer: the server runs the query to its end regardless


@contextlib.contextmanager
def connectorx_table(r: TableRead) -> Iterator[Batches]:
    """connectorx ``return_type="arrow"``: the whole result as one Arrow table, then sliced."""
    import connectorx as cx

    table = cx.read_sql(r.dsn, _connectorx_query(r), return_type="arrow")
    yield iter(table.to_batches())


MODULES = {"adbc-copy": "adbc_driver_postgresql.dbapi", "adbc-bound": "adbc_driver_postgresql.dbapi",
           "psycopg-copy": "psycopg", "psycopg-cursor": "psycopg", "duckdb": "duckdb",
           "connectorx-stream": "connectorx", "connectorx-table": "connectorx", "dlt": "dlt"}
READERS: dict[str, Callable[[TableRead], contextlib.AbstractContextManager[Batches]]] = {
    "adbc-copy": adbc_copy,
    "adbc-bound": adbc_bound,
    "psycopg-copy": psycopg_copy,
    "psycopg-cursor": psycopg_cursor,
    "duckdb": duckdb_scan,
    "connectorx-stream": connectorx_stream,
    "connectorx-table": connectorx_table,
}
