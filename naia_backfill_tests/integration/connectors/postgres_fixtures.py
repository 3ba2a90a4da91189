"""Tables the PostgreSQL source tests read, in a schema of their own in the shared database, and a server that
speaks PostgreSQL's protocol only to refuse a password (the shared server trusts every local user)."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import uuid
from collections.abc import Iterator

import psycopg
from psycopg import sql

#: Filter values that must be treated as data: quotes, statement separators, comments, tautologies, unicode,
#: placeholders and setting names, a 10 kB string.
HOSTILE = ["it's", "a'; DROP TABLE edges; --", "/* x */ y", "' OR 1=1 --", '"; SELECT 1; "', "ünïcødé ✓ 日本 🙂",
           "back\\slash'", "50%_off", "$1", "current_setting('naia.lo')", "x" * 10_000, "'", "--", ";"]

_EDGES = """
CREATE TABLE {s}.edges (id int PRIMARY KEY, ts timestamptz, label text, amount numeric(12,4), free numeric,
  doc jsonb, js json, tags text[], nums int[], flag boolean, born date, uid uuid, span interval, naive timestamp,
  "Weird ""Col"" name" text, ch char(3));
INSERT INTO {s}.edges VALUES
 (1, '2024-01-02 00:00:00+00', 'midnight next', 1.5, 1e-30, '{{"a": [1, 2]}}', '{{"b": null}}', ARRAY['x', NULL],
     ARRAY[1, NULL, 3], true, '2024-01-02', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '1 day 02:03:04',
     '2024-01-02 00:00', 'w1', 'ab'),
 (2, '2024-01-01 23:59:59.999999+00', 'tick before', -99999999.9999, 'NaN', '[]', '[]', '{{}}', '{{}}', false,
     '0001-01-01', '00000000-0000-0000-0000-000000000000', '-3 months', '1999-12-31 23:59:59.999999', 'w2', ''),
 (3, '2024-01-01 12:00:00+00', 'equal', 0.0001, 123456789012345678901234567890.5, 'null', 'null', ARRAY['a b', 'c"d'],
     ARRAY[-1], true, '2024-02-29', NULL, '00:00:00.000001', '2024-01-01 12:00', NULL, 'xyz'),
 (4, '2024-01-01 12:00:00+00', 'equal', 2, -1, '{{"k": "v"}}', '{{}}', ARRAY[]::text[], NULL, NULL, NULL, NULL, NULL,
     NULL, 'w4', NULL),
 (5, '2024-01-01 06:00:00+00', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (6, '2024-01-01 00:00:00+00', 'midnight', 3, 3, '{{}}', '{{}}', ARRAY['m'], ARRAY[6], true, '2024-01-01', NULL,
     '1 year', '2024-01-01 00:00', 'w6', 'm'),
 (7, NULL, 'no time', 1, 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (8, '2024-01-03 00:00:00+00', 'day three', 8, 8, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
INSERT INTO {s}.edges (id, ts, label, amount)
SELECT 100 + i, '2024-01-01 08:00:00+00'::timestamptz + i * interval '1 second', v, i
FROM unnest(%(hostile)s::text[]) WITH ORDINALITY AS h(v, i);
"""
_SAMPLES = """
CREATE TABLE {s}.samples (ts timestamptz NOT NULL, point text, value double precision, quality smallint, note text);
INSERT INTO {s}.samples
SELECT '2024-01-01'::timestamptz + (g / 3) * interval '10 minutes' - interval '10 minutes',
       (ARRAY['p.a', 'p.b', 'p"c'])[g %% 3 + 1],
       CASE WHEN g %% 7 = 0 THEN NULL ELSE g END, CASE WHEN g %% 5 = 0 THEN 0 ELSE 192 END,
       CASE WHEN g %% 11 = 0 THEN 'n' || g END
FROM generate_series(0, 3 * 6 * 24 * 2 + 5) AS g;
INSERT INTO {s}.samples VALUES ('2024-01-01 12:00+00', 'p.a', 1, 192, 'dup 1'), ('2024-01-01 12:00+00', 'p.a', 2, 192,
  'dup 2'), ('2024-01-01 13:00+00', NULL, 5, 192, 'no point');
CREATE TABLE {s}.samples_indexed AS SELECT * FROM {s}.samples;
CREATE INDEX ON {s}.samples_indexed (point);
CREATE TABLE {s}.wide (ts timestamptz NOT NULL, "a" double precision, "b" integer, "c" numeric(8,2), ok boolean);
INSERT INTO {s}.wide SELECT '2024-01-01'::timestamptz + g * interval '1 hour', CASE WHEN g %% 4 = 0 THEN NULL ELSE g END,
  g * 10, g / 3.0, g %% 2 = 0 FROM generate_series(-2, 30) AS g;
"""
_NAIVE = """
CREATE TABLE {s}.naive (id int, ts timestamp, point text, value double precision);
INSERT INTO {s}.naive VALUES (1, '2024-01-01 00:30', 'n', 1), (2, '2024-01-01 01:00', 'n', 2),
  (3, '2024-01-02 00:59:59.999999', 'n', 3), (4, '2024-01-02 01:00', 'n', 4), (5, '2024-07-01 02:00', 'n', 5),
  (6, '2024-07-01 01:59:59', 'n', 6);
"""
_BIG = """
CREATE UNLOGGED TABLE {s}.big (id bigint, ts timestamptz NOT NULL, payload text);
INSERT INTO {s}.big SELECT g, '2024-01-01'::timestamptz + g * interval '250 milliseconds', repeat(md5(g::text), 3)
FROM generate_series(0, %(big)s - 1) AS g;
"""
BIG_ROWS = 300_000


@contextlib.contextmanager
def pg_test_schema(dsn: str) -> Iterator[str]:
    """A fresh schema holding every test table; dropped afterwards."""
    name = f"naia_pgtest_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        s = sql.Identifier(name)
        for script in (_EDGES, _SAMPLES, _NAIVE, _BIG):
            for statement in filter(str.strip, script.split(";\n")):
                params = {"hostile": HOSTILE, "big": BIG_ROWS} if "%" in statement else None
                conn.execute(sql.SQL(statement).format(s=s), params)
    try:
        yield name
    finally:
        drop_schema(dsn, name)


def drop_schema(dsn: str, name: str) -> None:
    """Drop schema ``name``, first ending any session still reading it (a test that failed mid-read), within
    bounded waits: a leaked reader makes the DROP fail instead of waiting for its lock for ever."""
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                     "AND datname = current_database() AND position(%s in query) > 0", (name,))
        conn.execute("SET lock_timeout = '20s'")
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


@contextlib.contextmanager
def refusing_server() -> Iterator[tuple[str, list[bytes]]]:
    """A server on 127.0.0.1 that asks for a password and refuses it like PostgreSQL (SQLSTATE 28P01); yields its
    DSN's host:port and the passwords it received."""
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn, contextlib.suppress(OSError):
                _refuse(conn, received)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}", received
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def _read(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise OSError("closed")
        data += chunk
    return data


def _refuse(conn: socket.socket, received: list[bytes]) -> None:
    while True:  # SSLRequest / GSSENCRequest are answered "N", then comes the startup message
        length, code = struct.unpack("!ii", _read(conn, 8))
        _read(conn, length - 8)
        if code in (80877103, 80877104):
            conn.sendall(b"N")
            continue
        break
    conn.sendall(b"R" + struct.pack("!ii", 8, 3))  # AuthenticationCleartextPassword
    _, length = struct.unpack("!ci", _read(conn, 5))
    received.append(_read(conn, length - 4).rstrip(b"\x00"))
    fields = b"SFATAL\x00VFATAL\x00C28P01\x00Mpassword authentication failed for user \"naia\"\x00\x00"
    conn.sendall(b"E" + struct.pack("!i", len(fields) + 4) + fields)
