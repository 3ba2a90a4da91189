"""The PostgreSQL source without a server: its settings, what it refuses when a point set loads, the DSN kept out
of messages, and the SQL text it builds (values never in it)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from naia_backfill.connectors.base import Credentials
from naia_backfill.connectors.postgres import build, redact, where
from naia_backfill.connectors.postgres_plan import day_query, problems
from naia_backfill.connectors.postgres_sql import TableInfo, bind_sql, quote_ident, text_array
from naia_backfill.connectors.postgres_types import PgColumn
from naia_backfill.errors import CredentialsError, PointSetError
from naia_backfill.settings import load_point_set
from naia_backfill.settings.sources import PgFilter, PostgresSource

HOSTILE = ["it's", "a'; DROP TABLE users; --", "/* x */", "' OR 1=1 --", '"; SELECT 1; "', "ünïcødé ✓ 日本",
           "\\'\\\\", "%_", "x" * 10_000, "$1", "current_setting('naia.lo')"]


def source(**overrides: object) -> PostgresSource:
    doc: dict[str, object] = {"kind": "postgres", "dsn_env": "NAIA_PG_DSN", "table": "public.users",
                              "timestamp_column": "created_at", "shape": "rows"}
    doc.update(overrides)
    return PostgresSource.model_validate(doc)


def point_set_file(folder: Path, source_doc: dict, sinks: list | None = None) -> Path:
    doc = {"name": "pg", "source": {"kind": "postgres", "dsn_env": "NAIA_PG_DSN", "table": "users",
                                    "timestamp_column": "created_at", "shape": "rows", **source_doc},
           "start_date": "2024-01-01", "sinks": sinks or ["parquet", {"kind": "duckdb", "mode": "table"}]}
    path = folder / "pg.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def users_info() -> TableInfo:
    cols = [PgColumn("id", "int8", attnum=1), PgColumn("email", "text", attnum=2),
            PgColumn("created_at", "timestamptz", attnum=3), PgColumn("score", "numeric", 786440, attnum=4),
            PgColumn("tags", "_text", element="text", attnum=5), PgColumn("Odd \"name\"", "int4", attnum=6),
            PgColumn("naive_ts", "timestamp", attnum=7), PgColumn("q", "int2", attnum=8)]
    casts = {"id": "bigint", "email": "text", "created_at": "timestamp with time zone", "score": "numeric",
             "tags": "text[]", "Odd \"name\"": "integer", "naive_ts": "timestamp without time zone", "q": "smallint"}
    return TableInfo(1, "public", "users", {c.name: c for c in cols}, casts, ["id"])


@pytest.mark.parametrize("doc, message", [
    ({"filters": [{"column": f"c{i}", "op": "=", "value": i} for i in range(6)]}, "at most 5"),
    ({"filters": [{"column": "email", "op": "SIMILAR TO", "value": "x"}]}, "op"),
    ({"filters": [{"column": "email", "op": "IS NULL", "value": "x"}]}, "takes no value"),
    ({"filters": [{"column": "email", "op": "="}]}, "needs a value"),
    ({"filters": [{"column": "email", "op": "=", "value": "a\x00b"}]}, "NUL"),
    ({"filters": [{"column": "email", "op": "=", "value": "x", "sql": "1=1"}]}, "unknown field"),
    ({"dsn": "postgresql://u:pw@h/db"}, "unknown field"),
    ({"table": "users; DROP TABLE users"}, "table"),
    ({"point_column": "p"}, "shape: rows copies whole rows"),
    ({"shape": "samples", "point_column": "p"}, "point_column and value_column"),
    ({"shape": "samples", "value_column": "v", "point_column": "p", "value_columns": ["a"]}, "point_column and value_column"),
    ({"shape": "samples", "value_columns": ["a", "a"]}, "listed twice"),
    ({"shape": "samples", "value_columns": ["a"], "text_column": "t"}, "text_column needs point_column"),
    ({"timezone": "Mars/Olympus"}, "not a known time zone"),
    ({"good_quality": [192]}, "shape: rows"),
])
def test_point_sets_that_cannot_work_are_refused_when_they_load(tmp_path: Path, doc: dict, message: str):
    with pytest.raises(PointSetError, match=message):
        load_point_set(point_set_file(tmp_path, doc))


@pytest.mark.parametrize("sinks, message", [
    (["parquet", "kafka"], "remove kafka"), (["parquet", "questdb"], "remove questdb"),
    (["parquet", "mongodb"], "remove mongodb"),
    ([{"kind": "parquet", "columns": {"ts": "t", "point": "p"}}], "table's own columns"),
])
def test_rows_shape_refuses_sinks_that_store_samples_only(tmp_path: Path, sinks: list, message: str):
    with pytest.raises(PointSetError, match=message):
        load_point_set(point_set_file(tmp_path, {}, sinks))


def test_samples_shape_takes_every_sink_and_the_dsn_variable_is_the_secret(tmp_path: Path):
    ps = load_point_set(point_set_file(tmp_path, {"shape": "samples", "point_column": "p", "value_column": "v"},
                                       ["parquet", "kafka", "questdb", {"kind": "duckdb", "mode": "table"}]))
    assert ps.secret_env() == {"token": "NAIA_PG_DSN"}
    assert ps.source.pool_name == "naia_postgres_naia_pg_dsn"


def test_filter_operators_are_normalised_and_values_kept_as_text():
    assert PgFilter(column="a", op="is  not null").op == "IS NOT NULL"
    assert PgFilter(column="a", op="ilike", value="x%").op == "ILIKE"
    assert PgFilter(column="a", op="=", value=True).text == "true"
    assert PgFilter(column="a", op="=", value=dt.date(2024, 1, 2)).text == "2024-01-02"
    assert PgFilter(column="a", op="=", value=1.5).text == "1.5"


def test_a_missing_dsn_is_a_credentials_error_naming_the_variable():
    with pytest.raises(CredentialsError, match="NAIA_PG_DSN"):
        build(source(), Credentials())


@pytest.mark.parametrize("dsn, secret", [
    ("postgresql://naia:s3cr%40t@db.example.com:5432/naia", "s3cr%40t"),
    ("postgres://naia:hunter2@127.0.0.1/naia?sslmode=require", "hunter2"),
    ("host=db port=5432 user=naia password=hunter2 dbname=naia", "hunter2"),
    ("host=db user=naia password='two words' dbname=naia", "two words"),
])
def test_messages_never_show_the_dsn_or_its_password(dsn: str, secret: str):
    text = f"connection to {dsn} failed (password={secret}); url postgresql://x:{secret}@h/db"
    cleaned = redact(text, dsn)
    assert secret not in cleaned and dsn not in cleaned
    assert "password" not in where(dsn) and secret not in where(dsn)
    assert secret not in build(source(), Credentials(token=dsn)).description


def test_settings_are_checked_against_the_catalog():
    info = users_info()
    assert problems(source(filters=[{"column": "email", "op": "LIKE", "value": "%x"}]), info) == []
    assert "no column 'nope'" in problems(source(filters=[{"column": "nope", "op": "=", "value": 1}]), info)[0]
    assert "LIKE compares text" in problems(source(filters=[{"column": "id", "op": "LIKE", "value": "1%"}]), info)[0]
    assert "set source.timezone" in problems(source(timestamp_column="naive_ts"), info)[0]
    assert problems(source(timestamp_column="naive_ts", timezone="Europe/Paris"), info) == []
    assert "remove source.timezone" in problems(source(timezone="UTC"), info)[0]
    assert "must be timestamp" in problems(source(timestamp_column="id"), info)[0]
    samples = {"shape": "samples", "point_column": "email", "value_column": "tags"}
    assert "numeric or boolean" in problems(source(**samples), info)[0]
    quality = {"shape": "samples", "point_column": "email", "value_column": "score", "quality_column": "q"}
    assert "good_quality" in problems(source(**quality), info)[0]
    assert problems(source(**quality, good_quality=[192]), info) == []


def test_the_day_query_holds_no_value_only_quoted_identifiers_and_settings():
    filters = [{"column": "email", "op": "=", "value": v} for v in HOSTILE[:4]] + [
        {"column": 'Odd "name"', "op": "IS NULL"}]
    s = source(filters=filters)
    query = day_query(s, users_info(), None)
    for value in HOSTILE[:4]:
        assert value not in query.sql
    assert query.values == HOSTILE[:4]
    assert query.settings == ["naia.lo", "naia.hi", "naia.f1", "naia.f2", "naia.f3", "naia.f4"]
    assert '"Odd ""name""" IS NULL' in query.sql
    assert "\"created_at\" >= current_setting('naia.lo')::timestamptz" in query.sql
    assert "current_setting('naia.f1')::text" in query.sql
    assert "ORDER BY" not in query.sql  # rows come as the table gives them


def test_the_samples_query_orders_by_time_and_binds_the_selected_points():
    s = source(shape="samples", point_column="email", value_column="score", timestamp_column="naive_ts",
               timezone="Europe/Paris")
    query = day_query(s, users_info(), ["a'b", 'c"d'])
    assert query.sql.endswith('ORDER BY "naive_ts"')
    assert "AT TIME ZONE current_setting('naia.tz')" in query.sql
    assert query.settings == ["naia.lo", "naia.hi", "naia.tz", "naia.points"]
    assert query.values == ["Europe/Paris", text_array(["a'b", 'c"d'])]
    assert "a'b" not in query.sql


def test_bind_sql_and_identifiers():
    assert bind_sql(["naia.lo", "naia.hi"]).endswith("set_config('naia.lo', $1, false), set_config('naia.hi', $2, false)")
    assert bind_sql(["naia.lo"], "%s").endswith("set_config('naia.lo', %s, false)")
    assert quote_ident('a"b') == '"a""b"'
    assert text_array(['x"y', "a\\b", "plain"]) == '{"x\\"y","a\\\\b","plain"}'
