"""The tables of the bundled PostgreSQL point sets ``pg_samples_demo`` and ``pg_rows_demo``, generated
server-side (generate_series) in the database of ``$NAIA_PG_DSN``, schema ``naia_demo``:

- ``naia_demo.sensor_samples`` (ts timestamptz, point, value, quality, note): 8 tags at one sample a minute
  from 2024-01-01 to 2024-01-07 UTC (80,640 rows, the first at exactly midnight), NULL values, bad quality
  codes and notes now and then, and a row one microsecond before the first day and one at the midnight after
  the last, which belong to no day of the point set;
- ``naia_demo.users`` (seed 003's ``users``: id, email, name, status, created_at, score numeric(12,4),
  profile jsonb, tags text[], active, last_login timestamp, country char(2)): 21,000 users created every
  28.8 s over the same week, NULLs in every nullable column, some banned and some outside example.com,
  which the point set's filters leave out.

    naia-backfill services pg-demo [--recreate]      (or: python -m naia_backfill.dev.pgdemo)
"""

from __future__ import annotations

import os

import click
import psycopg
from psycopg import sql

SCHEMA = "naia_demo"
FIRST_DAY, DAYS = "2024-01-01", 7

_SAMPLES_DDL = """CREATE TABLE {t} (ts timestamptz NOT NULL, point text NOT NULL, value double precision,
  quality smallint, note text)"""
_SAMPLES = """
INSERT INTO {t} (ts, point, value, quality, note)
SELECT %(first)s::timestamptz + (g / 8) * interval '1 minute',
       'plant.' || (ARRAY['boiler.temp', 'boiler.pressure', 'pump1.flow', 'pump1.running', 'pump2.flow',
                          'tank.level', 'feed.valve', 'stack.o2'])[g %% 8 + 1],
       CASE WHEN g %% 997 = 0 THEN NULL ELSE round((sin(g / 800.0) * 50 + (g %% 8) * 10)::numeric, 3) END,
       CASE WHEN g %% 1009 = 0 THEN NULL WHEN g %% 101 = 0 THEN 0 ELSE 192 END,
       CASE WHEN g %% 503 = 0 THEN 'calibrating' END
FROM generate_series(0, %(days)s * 1440 * 8 - 1) AS g
UNION ALL SELECT %(first)s::timestamptz - interval '1 microsecond', 'plant.boiler.temp', -1, 192, 'before'
UNION ALL SELECT %(first)s::timestamptz + %(days)s * interval '1 day', 'plant.boiler.temp', -1, 192, 'after'
"""
_USERS_DDL = """CREATE TABLE {t} (id bigint PRIMARY KEY, email text, name text, status text NOT NULL,
  created_at timestamptz NOT NULL, score numeric(12,4), profile jsonb, tags text[], active boolean,
  last_login timestamp, country char(2))"""
_USERS = """
INSERT INTO {t}
SELECT g,
       CASE WHEN g %% 41 = 0 THEN NULL WHEN g %% 7 = 0 THEN 'user' || g || '@example.org'
            ELSE 'user' || g || '@example.com' END,
       CASE WHEN g %% 17 = 0 THEN NULL ELSE 'User ' || g END,
       (ARRAY['active', 'active', 'inactive', 'banned'])[g %% 4 + 1],
       %(first)s::timestamptz + (g - 1) * interval '28.8 seconds',
       CASE WHEN g %% 19 = 0 THEN NULL ELSE ((g * 7919) %% 100000000)::numeric / 10000 - 5000 END,
       CASE WHEN g %% 23 = 0 THEN NULL ELSE jsonb_build_object('plan', (ARRAY['free', 'pro', 'team'])[g %% 3 + 1],
            'logins', g %% 1000, 'ref', NULL) END,
       CASE WHEN g %% 29 = 0 THEN NULL WHEN g %% 5 = 0 THEN '{{}}'::text[] ELSE ARRAY['t' || (g %% 10), 'group ' || (g %% 4)] END,
       CASE WHEN g %% 31 = 0 THEN NULL ELSE g %% 2 = 0 END,
       CASE WHEN g %% 37 = 0 THEN NULL ELSE '2024-02-01'::timestamp + g * interval '1 minute' END,
       CASE WHEN g %% 43 = 0 THEN NULL ELSE (ARRAY['FR', 'DE', 'US'])[g %% 3 + 1] END
FROM generate_series(1, %(days)s * 3000) AS g
"""
TABLES = {"sensor_samples": (_SAMPLES_DDL, _SAMPLES, "ts"), "users": (_USERS_DDL, _USERS, "created_at")}


def create_demo_tables(dsn: str, recreate: bool = False) -> dict[str, int]:
    """Create the demo tables that do not exist yet (all of them again with ``recreate``); rows per table."""
    counts = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(SCHEMA)))
        for name, (ddl, fill, ts) in TABLES.items():
            t = sql.Identifier(SCHEMA, name)
            exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{SCHEMA}.{name}",)).fetchone()[0]
            if exists and recreate:
                conn.execute(sql.SQL("DROP TABLE {}").format(t))
            if not exists or recreate:
                with conn.transaction():  # a failed fill leaves no half-filled table behind
                    conn.execute(sql.SQL(ddl).format(t=t))
                    conn.execute(sql.SQL(fill).format(t=t), {"first": FIRST_DAY, "days": DAYS})
                    conn.execute(sql.SQL("CREATE INDEX ON {} ({})").format(t, sql.Identifier(ts)))
                conn.execute(sql.SQL("ANALYZE {}").format(t))
            counts[name] = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(t)).fetchone()[0]
    return counts


@click.command("pg-demo")
@click.option("--dsn-env", default="NAIA_PG_DSN", show_default=True, help="Variable holding the database's DSN.")
@click.option("--recreate", is_flag=True, help="Drop and recreate the tables.")
def pg_demo(dsn_env: str, recreate: bool) -> None:
    """Create the tables of the pg_samples_demo and pg_rows_demo point sets (schema naia_demo)."""
    dsn = os.environ.get(dsn_env)
    if not dsn:
        raise click.UsageError(f"set {dsn_env} to the database's DSN (e.g. `source .services/env`)")
    for name, rows in create_demo_tables(dsn, recreate).items():
        click.echo(f"{SCHEMA}.{name}: {rows:,} rows")


if __name__ == "__main__":
    pg_demo()
