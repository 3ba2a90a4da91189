"""Benchmark tables of `bench pg-readers`, generated server-side in PostgreSQL (generate_series, no row inserts).

- ``users_<n>``: seed 003's ``users`` shape, ``n`` rows with ``created_at`` spread over the benchmark day
  (2024-01-01 UTC) and NULLs in every nullable column now and then;
- ``samples_<n>``: ``n`` time-series rows (ts, point, value, quality), one sample a minute for
  ``ceil(n / 1440)`` points over the same day;
- ``types`` and ``types_edge``: a handful of rows covering each PostgreSQL type kind (and NULLs in every
  column; the edge table holds NaN/Infinity numerics and infinite timestamps) for the type-fidelity check.

Each day table also holds ``EDGE_ROWS`` rows on the neighbouring days, among them rows at the next midnight and
one microsecond before the day starts, so a reader that gets the day filter wrong returns a wrong count.
Tables are UNLOGGED: reads are the same and they are built without WAL traffic on the shared server.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Literal

import psycopg
from psycopg import sql

SCHEMA = "bench_pg"
DAY = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
EDGE_ROWS = 1_000
Shape = Literal["users", "samples"]

_USERS = """
INSERT INTO {t} (id, email, name, created_at, score, profile, tags, active)
SELECT g,
       CASE WHEN g %% 41 = 0 THEN NULL ELSE 'user' || g || '@example.com' END,
       CASE WHEN g %% 17 = 0 THEN NULL ELSE 'User ' || g END,
       %(day)s::timestamptz + (g - 1) * (86400.0 / %(n)s) * interval '1 second',
       CASE WHEN g %% 19 = 0 THEN NULL ELSE ((g * 7919) %% 100000000)::numeric / 10000 - 5000 END,
       CASE WHEN g %% 23 = 0 THEN NULL ELSE jsonb_build_object('plan', (ARRAY['free','pro','team'])[g %% 3 + 1],
            'logins', g %% 1000, 'ref', NULL, 'nested', jsonb_build_object('a', g %% 7)) END,
       CASE WHEN g %% 29 = 0 THEN NULL WHEN g %% 5 = 0 THEN '{{}}'::text[]
            ELSE ARRAY['t' || (g %% 10), 'group ' || (g %% 4)] END,
       CASE WHEN g %% 31 = 0 THEN NULL ELSE g %% 2 = 0 END
FROM generate_series(1::bigint, %(n)s::bigint) AS g
"""
_USERS_EDGE = """
INSERT INTO {t} (id, email, name, created_at, score, active)
SELECT -g, 'edge' || g || '@example.com', 'Edge',
       CASE WHEN g %% 2 = 0 THEN %(day)s::timestamptz - (g / 2) * interval '1 microsecond'
            ELSE %(day)s::timestamptz + interval '1 day' + (g / 2) * interval '1 second' END,
       0, true
FROM generate_series(1, %(edge)s) AS g
"""
_SAMPLES = """
INSERT INTO {t} (ts, point, value, quality)
SELECT %(day)s::timestamptz + (g / %(points)s) * interval '1 minute',
       'site1.p' || lpad((g %% %(points)s)::text, 5, '0'),
       CASE WHEN g %% 997 = 0 THEN NULL ELSE sin(g / 1000.0) * 100 + (g %% %(points)s) END,
       CASE WHEN g %% 1009 = 0 THEN NULL WHEN g %% 101 = 0 THEN 0 ELSE 192 END
FROM generate_series(0::bigint, %(n)s::bigint - 1) AS g
"""
_SAMPLES_EDGE = """
INSERT INTO {t} (ts, point, value, quality)
SELECT CASE WHEN g %% 2 = 0 THEN %(day)s::timestamptz - (g / 2) * interval '1 microsecond'
            ELSE %(day)s::timestamptz + interval '1 day' + (g / 2) * interval '1 minute' END,
       'site1.edge', g, 192
FROM generate_series(1, %(edge)s) AS g
"""
_TYPES_DDL = """
CREATE UNLOGGED TABLE {t} (
  id bigint, i2 smallint, i4 integer, i8 bigint, f4 real, f8 double precision, num numeric(12,4),
  num_wide numeric(38,10), num_free numeric, bool boolean, txt text, vc varchar(20), ch char(3),
  ts_tz timestamptz, ts_naive timestamp, d date, tm time, iv interval, u uuid, bin bytea, js json, jsb jsonb,
  arr_txt text[], arr_int integer[], arr_num numeric(12,4)[])
"""
_TYPES_ROWS = """
INSERT INTO {t} VALUES
 (1, -32768, 2147483647, 9223372036854775807, 1.5, 0.1, 12345678.1234, 1234567890123456789012345678.1234567891,
  0.000000000000000000000000000123, true, 'plain', 'vc', 'ab', '2024-01-01 00:00:00+00', '2024-01-01 00:00:00',
  '2024-01-01', '23:59:59.999999', '1 day 02:03:04', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\\x00ff',
  '{{"a": 1, "b": [1, 2]}}', '{{"a": 1, "b": [1, 2]}}', ARRAY['x', NULL, 'z'], ARRAY[1, NULL, 3], ARRAY[1.5, NULL]),
 (2, 0, 0, 0, -0.0, 1e308, -99999999.9999, -0.0000000001, 123456789012345678901234567890.5, false,
  'quote '' ; -- /* */ ünï ✓', '', '   ', '2023-12-31 23:59:59.999999+00', '1999-12-31 23:59:59.999999',
  '0001-01-01', '00:00', '-3 months', '00000000-0000-0000-0000-000000000000', '\\x', '[]', 'null', '{{}}', '{{}}',
  '{{}}'),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL)
"""
_TYPES_EDGE_DDL = "CREATE UNLOGGED TABLE {t} (id bigint, num numeric(12,4), num_free numeric, f8 double precision, " \
                  "ts_tz timestamptz, ts_naive timestamp, d date)"
_TYPES_EDGE_ROWS = """
INSERT INTO {t} VALUES (1, 'NaN', 'NaN', 'NaN', 'infinity', 'infinity', 'infinity'),
 (2, NULL, 'Infinity', '-Infinity', '-infinity', '-infinity', '-infinity'),
 (3, 1, 1e-300, 1, '294276-12-31 23:59:59+00', '4713-01-01 00:00 BC', '5874897-12-31')
"""


def samples_points(rows: int) -> int:
    """Points of a samples table with ``rows`` rows at one sample a minute over one day."""
    return max(1, math.ceil(rows / 1440))


def table_name(shape: Shape, rows: int) -> str:
    """The (unqualified) name of the ``shape`` table holding ``rows`` rows in the benchmark day."""
    return f"{shape}_{rows}"


def _filled(conn: psycopg.Connection, name: str) -> bool:
    """Whether the table exists and holds rows: crash recovery empties UNLOGGED tables, keeping them."""
    if not conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{SCHEMA}.{name}",)).fetchone()[0]:
        return False
    return conn.execute(sql.SQL("SELECT EXISTS (SELECT FROM {})").format(sql.Identifier(SCHEMA, name))).fetchone()[0]


def ensure_day_table(conn: psycopg.Connection, shape: Shape, rows: int, rebuild: bool = False) -> str:
    """Create ``bench_pg.<shape>_<rows>`` unless it exists with rows; returns its qualified name."""
    name = table_name(shape, rows)
    t = sql.Identifier(SCHEMA, name)
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(SCHEMA)))
    if rebuild or not _filled(conn, name):
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(t))
        _fill_day_table(conn, shape, rows, t)
        conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(t))  # hint bits set now, not during the first read
    return f"{SCHEMA}.{name}"


def _fill_day_table(conn: psycopg.Connection, shape: Shape, rows: int, t: sql.Identifier) -> None:
    with conn.transaction():  # a failed fill leaves no half-built table behind
        params = {"day": DAY, "n": rows, "points": samples_points(rows), "edge": EDGE_ROWS}
        if shape == "users":
            conn.execute(sql.SQL("CREATE UNLOGGED TABLE {} (id bigint PRIMARY KEY, email text, name text, "
                                 "created_at timestamptz NOT NULL, score numeric(12,4), profile jsonb, tags text[], "
                                 "active boolean)").format(t))
            fill, edge, ts = _USERS, _USERS_EDGE, "created_at"
        else:
            conn.execute(sql.SQL("CREATE UNLOGGED TABLE {} (ts timestamptz NOT NULL, point text NOT NULL, "
                                 "value double precision, quality smallint)").format(t))
            fill, edge, ts = _SAMPLES, _SAMPLES_EDGE, "ts"
        conn.execute(sql.SQL(fill).format(t=t), params)
        conn.execute(sql.SQL(edge).format(t=t), params)
        conn.execute(sql.SQL("CREATE INDEX ON {} ({})").format(t, sql.Identifier(ts)))


def ensure_type_tables(conn: psycopg.Connection) -> None:
    """Create ``bench_pg.types`` and ``bench_pg.types_edge`` unless they exist with rows."""
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(SCHEMA)))
    for name, ddl, rows in (("types", _TYPES_DDL, _TYPES_ROWS), ("types_edge", _TYPES_EDGE_DDL, _TYPES_EDGE_ROWS)):
        if not _filled(conn, name):
            t = sql.Identifier(SCHEMA, name)
            with conn.transaction():
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(t))
                conn.execute(sql.SQL(ddl).format(t=t))
                conn.execute(sql.SQL(rows).format(t=t))


def connect(dsn: str) -> psycopg.Connection:
    """An autocommit psycopg connection for building tables (VACUUM cannot run inside a transaction)."""
    conn = psycopg.connect(dsn)
    conn.autocommit = True
    return conn
