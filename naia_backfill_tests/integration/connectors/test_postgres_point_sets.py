"""The bundled PostgreSQL point sets end to end through the CLI against the real server: every day's rows, in
the lake and in the DuckDB table, equal a direct SELECT of that day with the point set's filters, the asset
checks pass, and a forced re-run changes nothing. Bad input (an unknown column or operator, six filters, a
missing DSN variable, refused credentials) exits 2 with a message that names the problem and not the password,
and writes nothing."""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import dagster as dg
import duckdb
import psycopg
import psycopg.conninfo
import psycopg.rows
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from naia_backfill.cli import cli
from naia_backfill.dev.pgdemo import create_demo_tables
from naia_backfill.settings import BUNDLED_DIR
from naia_backfill_tests.integration.connectors.postgres_fixtures import refusing_server

pytestmark = pytest.mark.integration

DAYS = [dt.date(2024, 1, 1), dt.date(2024, 1, 2)]  # the first day starts with a row at exactly midnight
#: The users' columns as psycopg reads them like the lake stores them (jsonb as its text, not parsed).
USERS = "id, email, name, status, created_at, score, profile::text AS profile, tags, active, last_login, country"
#: Each demo's direct SELECT of one day (bounds lo, hi), its filters' values bound.
DIRECT = {
    "pg_rows_demo": (
        (f"SELECT {USERS} FROM naia_demo.users WHERE created_at >= %(lo)s AND created_at < %(hi)s "
         "AND status <> %(status)s AND email LIKE %(email)s"),
        {"status": "banned", "email": "%@example.com"},
    ),
    "pg_samples_demo": (
        ("SELECT point, ts, value, note AS text, coalesce(quality = 192, false) AS good "
         "FROM naia_demo.sensor_samples WHERE ts >= %(lo)s AND ts < %(hi)s AND point LIKE 'plant.%%'"),
        {},
    ),
}
CHECKS = {"pg_rows_demo": ["no_duplicates", "samples_present"],
          "pg_samples_demo": ["gaps", "no_duplicates", "samples_present"]}
SECRET = "s3cr3t-Pw-do-not-print"


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def demo_tables(services_env) -> str:
    """The demo tables (schema naia_demo: created when missing, never changed after) and the DSN."""
    dsn = os.environ["NAIA_PG_DSN"]
    create_demo_tables(dsn)
    return dsn


def direct(dsn: str, name: str, day: dt.date) -> list[dict]:
    sql, params = DIRECT[name]
    lo = dt.datetime.combine(day, dt.time(), dt.UTC)
    with psycopg.connect(dsn) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        conn.execute("SET TimeZone = 'UTC'")
        return cur.execute(sql, {**params, "lo": lo, "hi": lo + dt.timedelta(days=1)}).fetchall()


def in_order(rows: list[dict], name: str) -> list[dict]:
    key = (lambda r: r["id"]) if name == "pg_rows_demo" else (lambda r: (r["point"], r["ts"]))
    return sorted(rows, key=key)


def lake_rows(workdir: Path, name: str, day: dt.date, columns: list[str]) -> list[dict]:
    table = pq.read_table(workdir / f"lake/point_set={name}/date={day}/all.parquet", columns=columns)
    return in_order([{k: (v.to_pydatetime() if hasattr(v, "to_pydatetime") else v) for k, v in r.items()}
                     for r in table.to_pylist()], name)


def table_rows(workdir: Path, name: str, day: dt.date, columns: list[str]) -> list[dict]:
    with duckdb.connect(str(workdir / "naia.duckdb"), read_only=True) as con:
        quoted = ", ".join(f'"{c}"' for c in columns)
        table = con.execute(f'SELECT {quoted} FROM "{name}" WHERE date = ?', [day]).to_arrow_table()
    return in_order(table.to_pylist(), name)


def snapshot(workdir: Path, name: str) -> tuple[dict, list]:
    objects = {p.relative_to(workdir): pq.read_table(p) for p in sorted((workdir / "lake").rglob("*.parquet"))}
    with duckdb.connect(str(workdir / "naia.duckdb"), read_only=True) as con:
        rows = con.execute(f'SELECT * FROM "{name}" ORDER BY ALL').fetchall()
    return objects, rows


def check_status(name: str) -> dict[str, dict[str, tuple[str, bool]]]:
    instance = dg.DagsterInstance.get()
    out = {}
    for check in CHECKS[name]:
        infos = instance.event_log_storage.get_asset_check_partition_info([dg.AssetCheckKey(dg.AssetKey(name), check)])
        out[check] = {i.partition_key: (i.latest_execution_status.value, i.is_current) for i in infos}
    return out


@pytest.mark.parametrize("name", ["pg_rows_demo", "pg_samples_demo"])
def test_bundled_point_set_days_equal_a_direct_select_and_a_forced_rerun_changes_nothing(
        workdir: Path, demo_tables: str, name: str):
    args = ["run", name, "--start", str(DAYS[0]), "--end", str(DAYS[-1])]
    res = invoke(*args)
    assert res.exit_code == 0, res.output
    for day in DAYS:
        want = in_order(direct(demo_tables, name, day), name)
        columns = list(want[0])
        assert want and lake_rows(workdir, name, day, columns) == want, day
        assert table_rows(workdir, name, day, columns) == want, day
    assert check_status(name) == {c: {str(d): ("SUCCEEDED", True) for d in DAYS} for c in CHECKS[name]}

    before = snapshot(workdir, name)
    res = invoke(*args, "--force")
    assert res.exit_code == 0, res.output
    after = snapshot(workdir, name)
    assert list(after[0]) == list(before[0]) and all(after[0][k].equals(before[0][k]) for k in before[0])
    assert after[1] == before[1] and len(after[1]) == sum(len(direct(demo_tables, name, d)) for d in DAYS)
    runs = dg.DagsterInstance.get().get_run_records(dg.RunsFilter(job_name=f"{name}_job"))
    assert len(runs) == 2 and all(r.dagster_run.is_success for r in runs)


def rows_demo_copy(folder: Path, **source: object) -> Path:
    """The bundled pg_rows_demo, renamed (the bundled name is taken), its source changed."""
    doc = yaml.safe_load((BUNDLED_DIR / "pg_rows_demo.yaml").read_text())
    doc["name"] = "pg_rows_bad"
    doc["source"].update(source)
    path = folder / "pg_rows_bad.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


BAD = {
    "unknown column": ({"filters": [{"column": "nope", "op": "=", "value": "x"}]},
                       r"naia_demo\.users has no column 'nope' \(columns: id, email"),
    "unknown operator": ({"filters": [{"column": "status", "op": "<>", "value": "banned"}]},
                         r"filters.*op.*=.*!=.*IS NOT NULL"),
    "six filters": ({"filters": [{"column": "status", "op": "!=", "value": str(i)} for i in range(6)]},
                    r"filters.*at most 5"),
    "missing DSN variable": ({"dsn_env": "NAIA_PG_NO_SUCH_DSN"},
                             r"needs the environment variable\(s\) NAIA_PG_NO_SUCH_DSN"),
    "wrong password": ({"dsn_env": "NAIA_PG_BAD_DSN"},
                       r"refused the connection with the DSN in NAIA_PG_BAD_DSN.*password authentication failed"),
    "unknown user": ({"dsn_env": "NAIA_PG_BAD_DSN"}, r"refused the connection .*role \"naia_nobody\" does not exist"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_exits_2_names_the_problem_and_writes_nothing(workdir: Path, demo_tables: str, monkeypatch, case: str):
    source, message = BAD[case]
    dsn = psycopg.conninfo.conninfo_to_dict(demo_tables)
    with refusing_server() as (address, received):
        if case == "wrong password":  # the development server trusts local users: a server that refuses stands in
            monkeypatch.setenv("NAIA_PG_BAD_DSN", f"postgresql://naia:{SECRET}@{address}/naia?sslmode=disable")
        elif case == "unknown user":
            monkeypatch.setenv("NAIA_PG_BAD_DSN", f"postgresql://naia_nobody:{SECRET}@{dsn['host']}:{dsn['port']}/naia")
        res = invoke("run", str(rows_demo_copy(workdir, **source)), "--start", "2024-01-01", "--end", "2024-01-02")
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    assert re.search(message, text), text
    assert SECRET not in res.output and (case != "wrong password" or received == [SECRET.encode()])
    assert not list(workdir.rglob("*.parquet")) and not dg.DagsterInstance.get().get_run_records()
    if (workdir / "naia.duckdb").exists():
        with duckdb.connect(str(workdir / "naia.duckdb"), read_only=True) as con:
            assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'pg_rows_bad'").fetchone() == (0,)
