"""The PostgreSQL source (seed 003): one UTC day of a table at a time, streamed as Arrow record batches.

Rows of a day are those with ``day 00:00 UTC <= timestamp_column < next day 00:00 UTC`` (a row at exactly
midnight belongs to the new day) that pass the point set's filters. The table is described once from the
catalog (psycopg, every name and value bound), which refuses what cannot work before any row is read: unknown
columns, a naive timestamp column without ``timezone``, LIKE on a non-text column, a filter value that is not
of its column's type, a comparison PostgreSQL has no operator for (the day's query is EXPLAINed).

Rows are read with the ADBC PostgreSQL driver: binary COPY straight into Arrow in C, batches of about 16 MiB,
each converted to the point set's shape whole, then sliced without copying into ``batch_rows`` rows. The day's values are bound as session settings first (see
:mod:`naia_backfill.connectors.postgres_sql`). Stopping early (a cancelled run, a failing sink: closing the
generator) closes the reader, the cursor and the connection at once, which ends the server's query.

The DSN comes from the environment only and appears in no message: every driver error is redacted.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fnmatch
import re
from collections.abc import Iterator, Sequence

import pyarrow as pa

from naia_backfill.connectors import postgres_plan as plan
from naia_backfill.connectors import postgres_sql as q
from naia_backfill.connectors.base import Credentials, Estimate, Source
from naia_backfill.connectors.postgres_types import to_schema
from naia_backfill.errors import CredentialsError, PointSetError, SourceError
from naia_backfill.schema import SAMPLE_SCHEMA
from naia_backfill.settings.sources import PostgresSource

#: What libpq and the server say when they refuse who connects (SQLSTATE class 28, a missing database, pg_hba).
_REFUSED = re.compile(r"password authentication failed|no password supplied|role \".*\" does not exist|"
                      r"database \".*\" does not exist|pg_hba\.conf|authentication", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")
_KV_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def redact(text: str, dsn: str) -> str:
    """``text`` without the DSN or its password, whatever form they take in it."""
    from psycopg.conninfo import conninfo_to_dict

    secrets = {dsn}
    with contextlib.suppress(Exception):
        password = conninfo_to_dict(dsn).get("password")
        if password:
            secrets.add(str(password))
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return _KV_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", text))


def where(dsn: str) -> str:
    """host:port/database of ``dsn`` for messages (no user, no password)."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(dsn)
    except Exception:  # noqa: BLE001 - a DSN libpq cannot parse is reported when connecting
        return "the database"
    return f"{params.get('host') or 'localhost'}:{params.get('port') or 5432}/{params.get('dbname') or ''}"


class PostgresConnector(Source):
    """One table of one database, described from its catalog on first use."""

    def __init__(self, settings: PostgresSource, dsn: str) -> None:
        self.settings, self._dsn = settings, dsn
        self.description = f"PostgreSQL table {settings.table} at {where(dsn)}"
        self._info: q.TableInfo | None = None
        self._listing: list[str] | None = None
        self._stats: dict[str, int] = {}

    def _error(self, e: Exception, doing: str) -> Exception:
        message = redact(" ".join(str(e).split()), self._dsn)
        env = self.settings.dsn_env
        if getattr(e, "sqlstate", None) == "42501":
            return CredentialsError(f"{self.description}: the DSN's user may not read it ({env}): {message}")
        if _REFUSED.search(message) or str(getattr(e, "sqlstate", "") or "").startswith("28"):
            return CredentialsError(f"{self.description}: PostgreSQL refused the connection with the DSN in {env}: {message}")
        if "invalid connection option" in message or "invalid dsn" in message.lower() or "missing \"=\"" in message:
            return CredentialsError(f"the DSN in {env} is not valid: {message}")
        return SourceError(f"{self.description}: {doing} failed: {message}")

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        import adbc_driver_manager
        import psycopg

        try:
            yield
        except (psycopg.Error, adbc_driver_manager.Error) as e:
            raise self._error(e, doing) from None  # the driver's error may quote the DSN: never chained

    @contextlib.contextmanager
    def _catalog(self, doing: str) -> Iterator[object]:
        """A short-lived autocommit psycopg connection for catalog queries."""
        import psycopg

        with self._errors(doing), psycopg.connect(self._dsn, autocommit=True, connect_timeout=30,
                                                   application_name="naia_backfill") as conn:
            yield conn

    def table(self) -> q.TableInfo:
        """The table, described and checked against the point set once: raises :class:`PointSetError` saying
        what to change when a setting does not fit it."""
        if self._info is not None:
            return self._info
        s = self.settings
        with self._catalog("reading the catalog") as conn:
            info = q.describe(conn, s.table)
            if info is None:
                raise PointSetError(f"{self.description}: no such table or view (or the DSN's user cannot see it)")
            found = plan.problems(s, info)
            if found:
                raise PointSetError(f"{self.description}: " + "; ".join(found))
            self._check_query(conn, info)
        self._info = info
        return info

    def _check_query(self, conn, info: q.TableInfo) -> None:
        """Each filter value parses as its column's type, and PostgreSQL can plan the day's query."""
        import psycopg

        s = self.settings
        query = plan.day_query(s, info, [] if s.point_column else None)
        conn.execute(q.bind_sql(query.settings, "%s"), query.bound("2000-01-01T00:00:00+00:00", "2000-01-02T00:00:00+00:00"))
        for i, f in enumerate(s.filters, start=1):
            if f.op in ("IS NULL", "IS NOT NULL", "LIKE", "ILIKE"):
                continue
            try:
                conn.execute(f"SELECT {q.setting(f'naia.f{i}', info.cast_types[f.column])}")
            except psycopg.DataError as e:
                raise PointSetError(f"{self.description}: filter {i} ({f.column} {f.op} ...): the value is not a "
                                    f"valid {info.cast_types[f.column]}: {e.diag.message_primary or e}") from None
        try:
            conn.execute(f"EXPLAIN {query.sql}")
        except psycopg.errors.InsufficientPrivilege:
            raise
        except (psycopg.ProgrammingError, psycopg.DataError) as e:
            raise PointSetError(f"{self.description}: PostgreSQL cannot run the day's query for these settings: "
                                f"{e.diag.message_primary or e}") from None

    def schema(self) -> pa.Schema:
        """The sample schema, or for ``shape: rows`` the table's own columns (see postgres_types)."""
        return plan.rows_schema(self.table()) if self.settings.shape == "rows" else SAMPLE_SCHEMA

    def list_points(self, name_filter: str = "*") -> list[str]:
        """``shape: rows``: the table itself; a wide table: its value columns; else the distinct values of the
        point column among the rows that pass the filters (through its index when it has one)."""
        s, info = self.settings, self.table()
        if s.shape == "rows":
            names = [info.display]
        elif s.value_columns is not None:
            names = list(s.value_columns)
        else:
            names = self._distinct_points(info)
        return [n for n in names if fnmatch.fnmatchcase(n.upper(), (name_filter or "*").upper())]

    def _distinct_points(self, info: q.TableInfo) -> list[str]:
        if self._listing is None:
            s = self.settings
            condition, names, values = plan.where(s, info)
            with self._catalog("listing the points") as conn:
                conn.execute(q.bind_sql(names, "%s"), values)
                walk = not condition and q.has_leading_index(conn, info, s.point_column)
                sql = q.distinct_sql(info.qualified, q.quote_ident(s.point_column), condition, walk)
                self._listing = sorted(r[0] for r in conn.execute(sql).fetchall())
        return self._listing

    def fetch(self, points: Sequence[str], start: dt.datetime, end: dt.datetime) -> Iterator[pa.RecordBatch]:
        s, info = self.settings, self.table()
        subset = None
        if s.shape == "samples" and s.point_column is not None and set(points) != set(self._distinct_points(info)):
            subset = list(points)
        query = plan.day_query(s, info, subset)
        self._stats = {"dropped_null": 0} if s.value_columns is not None else {}
        good = plan.good_values(s)
        wide = [(i, c) for i, c in enumerate(s.value_columns or []) if c in set(points)]
        schema = self.schema()
        with contextlib.closing(self._stream(query, start, end)) as stream:  # closed with this generator, not by GC
            yield from self._batches(stream, schema, good, wide)

    def _batches(self, stream: Iterator[pa.RecordBatch], schema: pa.Schema, good: pa.Array | None,
                 wide: list[tuple[int, str]]) -> Iterator[pa.RecordBatch]:
        """The driver's batches in the point set's shape, sliced into ``batch_rows`` rows (converted whole first:
        a few calls per driver batch of ~16 MiB rather than per slice)."""
        s = self.settings
        for native in stream:
            if s.shape == "rows":
                converted = [to_schema(native, schema)]
            elif s.value_columns is None:
                converted = [plan.narrow_batch(native, good)]
            else:
                converted, dropped = plan.wide_batches(native, wide, good)
                self._stats["dropped_null"] += dropped
            for batch in converted:
                for offset in range(0, batch.num_rows, s.batch_rows):
                    yield batch.slice(offset, s.batch_rows)

    def _stream(self, query: plan.DayQuery, start: dt.datetime, end: dt.datetime) -> Iterator[pa.RecordBatch]:
        """The driver's batches of the day; leaving early ends the server's query at once (see :meth:`_release`)."""
        import adbc_driver_postgresql.dbapi as adbc

        conn = cursor = reader = None
        pid: int | None = None
        try:
            with self._errors("reading the day"):
                conn = adbc.connect(self._dsn, autocommit=True)
                cursor = conn.cursor()
                cursor.execute("SELECT pg_backend_pid()")
                pid = cursor.fetchone()[0]
                cursor.execute(q.bind_sql(query.settings), query.bound(start.isoformat(), end.isoformat()))
                cursor.fetchall()
                cursor.execute(query.sql)
                reader = cursor.fetch_record_batch()
            batches = iter(reader)
            while True:
                with self._errors("reading the day"):
                    native = next(batches, None)
                if native is None:
                    return
                yield native
        finally:
            self._release(reader, cursor, conn, pid)

    def _release(self, reader, cursor, conn, pid: int | None) -> None:
        """Close the reader, cursor and connection. Mid-COPY the server is blocked sending rows, where a cancel
        request takes no effect until it can send again; closing the socket ends its backend at once. Should the
        connection fail to close, the backend is terminated from a side connection instead."""
        for closeable in (reader, cursor):
            if closeable is not None:
                with contextlib.suppress(Exception):
                    closeable.close()
        if conn is None:
            return
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - whatever the driver raised, the socket may still be open
            if pid is not None:
                with contextlib.suppress(Exception), self._catalog("stopping the day's query") as side:
                    side.execute("SELECT pg_terminate_backend(%s)", (pid,))

    def estimate(self, points: int, days: int) -> Estimate:
        """One query a day; how many rows it returns is not known before."""
        return Estimate(samples=None, requests=days)

    def stats(self) -> dict[str, int]:
        """``dropped_null``: NULL cells of a wide table's value columns (not samples) in the last day."""
        return dict(self._stats)


def build(settings: PostgresSource, credentials: Credentials) -> PostgresConnector:
    """The connector; the DSN travels as the credentials' token (read from ``dsn_env``)."""
    if not credentials.token:
        raise CredentialsError(f"the PostgreSQL source needs a DSN: set the environment variable {settings.dsn_env}")
    return PostgresConnector(settings, credentials.token)
