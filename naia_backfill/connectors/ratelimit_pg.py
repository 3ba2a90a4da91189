"""A request-rate limit shared by every machine of a cluster: the log of booked slots lives in one PostgreSQL row
per source, locked (``SELECT ... FOR UPDATE``) while a slot is booked, and times come from the database's clock,
so pods whose clocks differ still agree. Set ``NAIA_RATE_LIMIT_DSN`` (for example Dagster's own PostgreSQL)
and every run of every pod shares each source's limit."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from naia_backfill.connectors.ratelimit import StoredRateLimiter
from naia_backfill.errors import SourceError

TABLE_SQL = "CREATE TABLE IF NOT EXISTS naia_rate_limits (key TEXT PRIMARY KEY, slots DOUBLE PRECISION[] NOT NULL)"


class PostgresRateLimiter(StoredRateLimiter):
    """At most ``requests`` slots in any ``per_seconds`` window across every process that reaches the database."""

    def __init__(self, key: str, requests: int, per_seconds: float, dsn: str,
                 *, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(requests, per_seconds, sleep=sleep)
        self.key, self._dsn = key, dsn
        self._conn: Any = None

    def _connection(self) -> Any:
        import psycopg

        if self._conn is None or self._conn.closed:
            try:
                self._conn = psycopg.connect(self._dsn, autocommit=True, connect_timeout=10)
                self._conn.execute(TABLE_SQL)
            except psycopg.Error as e:  # the message names host and database, never the password
                raise SourceError(f"the shared rate limit's database (NAIA_RATE_LIMIT_DSN) cannot be used: "
                                  f"{type(e).__name__}") from None
        return self._conn

    def _transact(self, change: Callable[[list[float], float], list[float]]) -> None:
        conn = self._connection()
        with conn.transaction():
            conn.execute("INSERT INTO naia_rate_limits (key, slots) VALUES (%s, '{}') ON CONFLICT (key) DO NOTHING",
                         [self.key])
            slots, now = conn.execute(
                "SELECT slots, extract(epoch FROM clock_timestamp())::float8 FROM naia_rate_limits "
                "WHERE key = %s FOR UPDATE", [self.key]).fetchone()
            conn.execute("UPDATE naia_rate_limits SET slots = %s WHERE key = %s", [change(list(slots), now), self.key])
