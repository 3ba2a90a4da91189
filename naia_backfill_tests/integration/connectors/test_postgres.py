"""The PostgreSQL source against the real server: a day's rows equal a direct SELECT of that day (rows at exactly
midnight belong to the new day), types and NULLs survive, hostile filter values are data, naive timestamps are
read in their zone, samples keep every event, a day streams in many bounded batches, and stopping mid-day ends
the server's work at once."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
from collections.abc import Iterator

import psycopg
import pyarrow as pa
import pytest

from naia_backfill.connectors.base import Credentials
from naia_backfill.connectors.postgres import PostgresConnector, build
from naia_backfill.connectors.postgres_plan import day_query
from naia_backfill.schema import SAMPLE_SCHEMA
from naia_backfill.settings.sources import PostgresSource
from naia_backfill_tests.integration.connectors.postgres_fixtures import BIG_ROWS, HOSTILE, pg_test_schema

pytestmark = pytest.mark.integration
UTC = dt.UTC
DAY = dt.datetime(2024, 1, 1, tzinfo=UTC)
EDGE_COLUMNS = ('id, ts, label, amount, free::text, doc::text, js::text, tags, nums, flag, born, uid::text, '
                'span::text, naive, "Weird ""Col"" name", ch')


@pytest.fixture(scope="module")
def pg(services_env) -> Iterator[tuple[str, str]]:
    """(DSN, schema of the test tables)."""
    import os

    dsn = os.environ["NAIA_PG_DSN"]
    with pg_test_schema(dsn) as schema:
        yield dsn, schema


def connector(pg: tuple[str, str], table: str = "edges", **settings: object) -> PostgresConnector:
    dsn, schema = pg
    doc: dict[str, object] = {"kind": "postgres", "dsn_env": "NAIA_PG_DSN", "table": f"{schema}.{table}",
                              "timestamp_column": "ts", "shape": "rows"}
    doc.update(settings)
    return build(PostgresSource.model_validate(doc), Credentials(token=dsn))


def read_day(c: PostgresConnector, day: dt.datetime = DAY, points: list[str] | None = None) -> pa.Table:
    batches = list(c.fetch(points if points is not None else c.list_points(), day, day + dt.timedelta(days=1)))
    return pa.Table.from_batches(batches, c.schema())


def direct(pg: tuple[str, str], query: str, params: tuple | list = ()) -> list[tuple]:
    with psycopg.connect(pg[0]) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        return conn.execute(query.replace("{s}", f'"{pg[1]}"'), params).fetchall()


def day_params(day: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    return day, day + dt.timedelta(days=1)


def ids(table: pa.Table) -> list[int]:
    return sorted(table.column("id").to_pylist())


def test_each_day_holds_exactly_the_rows_a_direct_select_returns(pg):
    c = connector(pg)
    for offset in range(-1, 3):
        day = DAY + dt.timedelta(days=offset)
        got = sorted((tuple(r.values()) for r in read_day(c, day).to_pylist()), key=lambda r: r[0])
        want = direct(pg, f"SELECT {EDGE_COLUMNS} FROM {{s}}.edges WHERE ts >= %s AND ts < %s ORDER BY id",
                      day_params(day))
        assert got == [tuple(r) for r in want], day
    assert ids(read_day(c, DAY + dt.timedelta(days=1))) == [1]  # exactly midnight: the new day
    assert 2 in ids(read_day(c)) and 6 in ids(read_day(c))  # one tick before midnight, and midnight itself


def test_types_and_nulls_are_kept(pg):
    table = read_day(connector(pg))
    types = {f.name: str(f.type) for f in table.schema}
    assert types["amount"] == "decimal128(12, 4)" and types["free"] == "string" and types["doc"] == "string"
    assert types["tags"] == "list<item: string>" and types["nums"] == "list<item: int32>"
    assert types["ts"] == "timestamp[us, tz=UTC]" and types["naive"] == "timestamp[us]"
    rows = {r["id"]: r for r in table.to_pylist()}
    assert all(v is None for k, v in rows[5].items() if k not in ("id", "ts"))
    assert json.loads(rows[3]["doc"]) is None and rows[3]["tags"] == ["a b", 'c"d']
    assert rows[2]["free"] == "NaN" and rows[2]["born"] == dt.date(1, 1, 1) and rows[2]["tags"] == []
    assert [rows[3]["id"], rows[4]["id"]] == [3, 4] and rows[3]["ts"] == rows[4]["ts"]  # equal timestamps both kept


@pytest.mark.parametrize("op", ["=", "!=", ">", "LIKE", "ILIKE"])
def test_hostile_filter_values_are_data_and_never_change_the_query(pg, op: str):
    queries = set()
    for value in HOSTILE:
        c = connector(pg, filters=[{"column": "label", "op": op, "value": value}])
        queries.add(day_query(c.settings, c.table(), None).sql)
        sql_op = "<>" if op == "!=" else op
        want = direct(pg, f"SELECT id FROM {{s}}.edges WHERE ts >= %s AND ts < %s AND label {sql_op} %s ORDER BY id",
                      (*day_params(DAY), value))
        assert ids(read_day(c)) == [r[0] for r in want], value[:40]
    assert len(queries) == 1  # the same text whatever the value
    assert direct(pg, "SELECT count(*) FROM {s}.edges") == [(22,)]


@pytest.mark.parametrize("column, op, value", [
    ("amount", ">", 1.5), ("amount", "<=", "0.0001"), ("flag", "=", True), ("born", "<=", dt.date(2024, 1, 1)),
    ("ts", ">=", "2024-01-01 12:00"), ("label", "IS NULL", None), ("label", "IS NOT NULL", None),
    ('Weird "Col" name', "=", "w4"), ("tags", "=", "{x,NULL}"), ("tags", "=", '{"a b","c\\"d"}'),
    ("uid", "=", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
    ("ch", "=", "ab"), ("label", "ILIKE", "MID%"), ("doc", "=", '{"k": "v"}'), ("span", "<", "1 day"),
])
def test_every_operator_selects_what_a_direct_select_does(pg, column: str, op: str, value: object):
    c = connector(pg, filters=[{"column": column, "op": op, "value": value}])
    quoted = '"' + column.replace('"', '""') + '"'
    condition = f"{quoted} {'<>' if op == '!=' else op}" + ("" if value is None else " %s")
    text = c.settings.filters[0].text if value is not None else None
    days = (DAY, DAY + dt.timedelta(days=1))  # the first day and the one that starts with the midnight row
    want = direct(pg, f"SELECT id FROM {{s}}.edges WHERE ts >= %s AND ts < %s AND {condition} ORDER BY id",
                  (days[0], days[1] + dt.timedelta(days=1), *([text] if value is not None else [])))
    assert want, "the case selects something"
    assert sorted(i for day in days for i in ids(read_day(c, day))) == [r[0] for r in want]


def test_naive_timestamps_are_read_in_the_point_sets_zone(pg):
    c = connector(pg, "naive", timezone="Europe/Paris")
    by_day = {d: ids(read_day(c, dt.datetime.fromisoformat(d).replace(tzinfo=UTC)))
              for d in ("2023-12-31", "2024-01-01", "2024-01-02", "2024-06-30", "2024-07-01")}
    assert by_day == {"2023-12-31": [1], "2024-01-01": [2, 3], "2024-01-02": [4], "2024-06-30": [6], "2024-07-01": [5]}
    samples = connector(pg, "naive", timezone="Europe/Paris", shape="samples", point_column="point", value_column="value")
    got = read_day(samples).to_pylist()
    assert [(r["value"], r["ts"]) for r in got] == [
        (2.0, dt.datetime(2024, 1, 1, tzinfo=UTC)), (3.0, dt.datetime(2024, 1, 1, 23, 59, 59, 999999, tzinfo=UTC))]


def narrow(pg, table: str = "samples", **settings: object) -> PostgresConnector:
    return connector(pg, table, shape="samples", point_column="point", value_column="value", text_column="note",
                     quality_column="quality", good_quality=[192], **settings)


def test_samples_keep_every_event_in_time_order(pg):
    c = narrow(pg)
    got = read_day(c)
    assert got.schema == SAMPLE_SCHEMA
    want = direct(pg, "SELECT point, ts, value, note, quality = 192 FROM {s}.samples WHERE ts >= %s AND ts < %s "
                      "AND point IS NOT NULL", day_params(DAY))
    rows = [(r["point"], r["ts"], r["value"], r["text"], r["good"]) for r in got.to_pylist()]
    def order(row: tuple) -> tuple:  # pyarrow gives pandas Timestamps (ns), psycopg datetimes: compare instants
        return row[0], row[1].timestamp(), repr(row[2:])

    assert sorted(rows, key=order) == sorted((tuple(r) for r in want), key=order)
    assert sorted(r[3] for r in rows if r[3] and r[3].startswith("dup")) == ["dup 1", "dup 2"]  # same point and time
    for point in ("p.a", "p.b", 'p"c'):
        times = [r[1] for r in rows if r[0] == point]
        assert times == sorted(times)
    only = read_day(c, points=['p"c'])
    assert set(only.column("point").to_pylist()) == {'p"c'} and only.num_rows == sum(r[0] == 'p"c' for r in rows)


def test_points_are_the_distinct_values_with_or_without_an_index_and_filters(pg):
    want = [r[0] for r in direct(pg, "SELECT DISTINCT point FROM {s}.samples WHERE point IS NOT NULL ORDER BY 1")]
    assert narrow(pg).list_points() == narrow(pg, "samples_indexed").list_points() == sorted(want)
    assert narrow(pg, "samples_indexed").list_points("P.?") == ["p.a", "p.b"]
    filtered = narrow(pg, filters=[{"column": "note", "op": "LIKE", "value": "dup%"}])
    assert filtered.list_points() == ["p.a"]
    assert connector(pg).list_points() == [f"{pg[1]}.edges"]


def test_a_wide_table_gives_one_point_per_column(pg):
    c = connector(pg, "wide", shape="samples", value_columns=["a", "b", "c"], quality_column="ok")
    assert c.list_points() == ["a", "b", "c"]
    got = read_day(c, points=["a", "c"])
    want = direct(pg, "SELECT count(a), count(c) FROM {s}.wide WHERE ts >= %s AND ts < %s", day_params(DAY))[0]
    counts = {p: got.column("point").to_pylist().count(p) for p in ("a", "c")}
    assert (counts["a"], counts["c"]) == want and c.stats()["dropped_null"] == 24 - want[0]
    good = {(r["point"], r["ts"].hour): r["good"] for r in got.to_pylist()}
    assert good[("c", 2)] is True and good[("c", 3)] is False


def test_a_large_day_streams_in_many_bounded_batches(pg):
    c = connector(pg, "big", batch_rows=7_000)
    sizes = [b.num_rows for b in c.fetch(c.list_points(), DAY, DAY + dt.timedelta(days=1))]
    assert sum(sizes) == BIG_ROWS and max(sizes) <= 7_000 and len(sizes) >= BIG_ROWS // 7_000


def backends_reading(pg, table: str, clients_only: bool = False) -> int:
    """Server processes running a query on ``table`` of the test schema: the client sessions, or also their
    parallel workers (which a plan over the big table may use)."""
    kind = " AND backend_type = 'client backend'" if clients_only else ""
    return direct(pg, f"SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND query LIKE %s{kind}",
                  (f"%{pg[1]}%{table}%",))[0][0]


def test_stopping_mid_day_closes_the_connection_and_the_server_stops(pg):
    c = connector(pg, "big", batch_rows=1_000)
    batches = c.fetch(c.list_points(), DAY, DAY + dt.timedelta(days=1))
    try:
        taken = [next(batches) for _ in range(3)]
        assert backends_reading(pg, "big", clients_only=True) == 1
    finally:  # a failed assertion must not keep the reader (and the server's COPY) alive
        started = time.monotonic()
        batches.close()
        closing = time.monotonic() - started
    deadline = time.monotonic() + 10  # a bound for a loaded machine; it takes about 0.02 s
    while backends_reading(pg, "big") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert backends_reading(pg, "big") == 0, "the server still runs the day's query after the stream was closed"
    assert closing < 5 and [b.num_rows for b in taken] == [1_000] * 3


def test_a_connection_that_fails_to_close_is_ended_from_the_server_side(pg, monkeypatch):
    from adbc_driver_manager import dbapi

    leaked: list[dbapi.Connection] = []  # held, so that no finalizer closes them behind the test's back

    def refuse(self: dbapi.Connection) -> None:
        leaked.append(self)
        raise dbapi.InternalError("cannot close")

    c = connector(pg, "big", batch_rows=1_000)
    batches = c.fetch(c.list_points(), DAY, DAY + dt.timedelta(days=1))
    try:
        next(batches)
        monkeypatch.setattr(dbapi.Connection, "close", refuse)
    finally:
        batches.close()
        monkeypatch.undo()
    try:
        deadline = time.monotonic() + 10
        while backends_reading(pg, "big") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(leaked) == 1 and backends_reading(pg, "big") == 0
    finally:
        for conn in leaked:
            with contextlib.suppress(Exception):
                conn.close()
