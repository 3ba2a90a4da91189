"""Type fidelity of the `bench pg-readers` readers: what each makes of ``bench_pg.types`` (one column per
PostgreSQL type kind, NULLs in every column) and ``bench_pg.types_edge`` (NaN/Infinity numerics, infinite and
extreme timestamps), compared value by value with psycopg's own Python values, and whether the result (as read,
and cast to the proposed mapping) goes into Parquet and into DuckDB."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from naia_backfill.dev.benchmarks.pg_readers_arrow import arrow_schema, conform
from naia_backfill.dev.benchmarks.pg_readers_child import catalog_columns
from naia_backfill.dev.benchmarks.pg_readers_tables import SCHEMA
from naia_backfill.dev.benchmarks.pg_readers_variants import READERS, TableRead

JSON_COLUMNS = ("js", "jsb")
RANK = {"exact": 0, "text": 1, "lossy": 2, "differs": 3}
MARK = {"exact": "[green]✓[/]", "text": "[cyan]text ✓[/]", "lossy": "[yellow]lossy[/]", "differs": "[red]✗[/]"}
_SHORT = [(r"extension<arrow\.opaque\[storage_type=(\w+), type_name=(\w+).*?\]>", r"opaque(\2 as \1)"),
          (r"extension<arrow\.(\w+)>", r"\1-ext"), (r"timestamp\[(\w+), tz=([^\]]+)\]", r"ts[\1,\2]"),
          (r"timestamp\[(\w+)\]", r"ts[\1]"), (r"decimal128", "dec"), (r"month_day_nano_interval", "mdn-interval"),
          (r"list<(?:item|element): ", "list<"), (r"large_", "L")]


def short_type(t: pa.DataType) -> str:
    """A short label of an Arrow type for a narrow table cell."""
    text = str(t)
    for pattern, repl in _SHORT:
        text = re.sub(pattern, repl, text)
    return text


def compare(ref: Any, got: Any) -> str:
    """How a reader's value ``got`` relates to psycopg's ``ref``: exact, text (the exact value as a string),
    lossy (a nearby value) or differs."""
    if ref is None or got is None:
        return "exact" if ref is None and got is None else "differs"
    if isinstance(ref, tuple) and isinstance(got, tuple):  # parsed JSON
        return "exact" if ref == got else "differs"
    if isinstance(ref, list):
        if not isinstance(got, list) or len(got) != len(ref):
            return "differs"
        return max((compare(a, b) for a, b in zip(ref, got, strict=True)), key=RANK.get, default="exact")
    if isinstance(ref, Decimal):
        return _compare_decimal(ref, got)
    if isinstance(ref, dt.datetime):
        aware = (ref.tzinfo is None) == (getattr(got, "tzinfo", None) is None)
        return "exact" if aware and got == ref else "differs"
    if isinstance(ref, dt.timedelta):
        return _compare_interval(ref, got)
    if isinstance(ref, uuid.UUID | bytes | float) and isinstance(got, str):
        return "text" if str(ref) == got else "differs"
    if isinstance(ref, float) and isinstance(got, float):
        return "exact" if ref == got else ("lossy" if abs(ref - got) <= 1e-6 * abs(ref) else "differs")
    return "exact" if got == ref and type(got) is type(ref) else "differs"


def _compare_decimal(ref: Decimal, got: Any) -> str:
    try:
        if isinstance(got, Decimal):
            return "exact" if got == ref else "lossy"
        if isinstance(got, str):
            return "text" if Decimal(got) == ref else "differs"
        if isinstance(got, float):
            return "exact" if Decimal(got) == ref else "lossy"
    except InvalidOperation:
        pass
    return "differs"


def _compare_interval(ref: dt.timedelta, got: Any) -> str:
    if isinstance(got, pa.MonthDayNano) or (isinstance(got, tuple) and len(got) == 3):
        months, days, nanos = got
        return "exact" if dt.timedelta(days=months * 30 + days, microseconds=nanos // 1000) == ref else "differs"
    return "exact" if got == ref else "differs"


def _reference(dsn: str, table: str) -> dict[str, list[Any]]:
    """Column values of ``table`` ordered by id as psycopg loads them (JSON kept as text)."""
    import psycopg
    from psycopg.types.json import set_json_loads

    with psycopg.connect(dsn) as conn:
        set_json_loads(lambda data: data if isinstance(data, str) else bytes(data).decode(), conn)
        cur = conn.execute(f'SELECT * FROM "{SCHEMA}"."{table}" ORDER BY id')
        rows = cur.fetchall()
        names = [d.name for d in cur.description]
    return {n: [row[i] for row in rows] for i, n in enumerate(names)}


def _read(variant: str, dsn: str, table: str, only: str | None = None) -> pa.Table:
    """All of ``table`` ordered by id, through ``variant``; with ``only``, just the id and that column."""
    columns = catalog_columns(dsn, SCHEMA, table)
    if only:
        columns = tuple(c for c in columns if c.name in ("id", only))
    r = TableRead(dsn=dsn, schema=SCHEMA, table=table, columns=columns)
    with READERS[variant](r) as batches:
        got = pa.Table.from_batches(list(batches))
    return got.sort_by("id")


def _read_columns(variant: str, dsn: str, names: list[str]) -> tuple[dict[str, pa.ChunkedArray | str], str]:
    """``bench_pg.types`` through ``variant``: whole, or column by column when the whole read fails (the
    failing columns then carry their error); also the whole read's error, if any."""
    try:
        got = _read(variant, dsn, "types")
        return {n: got.column(n) for n in names}, ""
    except BaseException as e:  # noqa: BLE001 - connectorx panics (pyo3 PanicException is a BaseException)
        _reraise_interrupts(e)
        whole = _why(e)
    out: dict[str, pa.ChunkedArray | str] = {}
    for n in names:
        try:
            out[n] = _read(variant, dsn, "types", only=n).column(n)
        except BaseException as e:  # noqa: BLE001
            _reraise_interrupts(e)
            out[n] = _why(e)
    return out, whole


def _reraise_interrupts(e: BaseException) -> None:
    if isinstance(e, KeyboardInterrupt | SystemExit):
        raise e


def _sinks(t: pa.Table) -> str:
    """Which columns of ``t`` Parquet and DuckDB refuse, one column at a time ("✓" when none)."""
    import duckdb

    refused: dict[str, list[str]] = {"pq": [], "duckdb": []}
    for name in t.column_names:
        one = t.select([name])
        try:
            pq.write_table(one, io.BytesIO())
        except Exception:  # noqa: BLE001 - the refusal is the finding
            refused["pq"].append(name)
        try:
            con = duckdb.connect()
            con.register("t", one)
            con.execute("CREATE TABLE x AS SELECT * FROM t")
        except Exception:  # noqa: BLE001
            refused["duckdb"].append(name)
    return " ".join(f"{k} ✗ {','.join(v)}" if v else f"{k} ✓" for k, v in refused.items())


def _why(e: Exception) -> str:
    return re.sub(r"\s+", " ", str(e))[:60]


def _json_value(value: Any) -> Any:
    """JSON text parsed, SQL NULL kept apart from JSON ``null``."""
    return value if value is None else ("json", json.loads(value) if isinstance(value, str | bytes) else value)


def _value_column(ref: list[Any], got: pa.ChunkedArray | str, is_json: bool) -> str:
    if isinstance(got, str):
        return f"[red]✗ {escape(got[:40])}[/]"
    values = got.to_pylist()
    if is_json:
        ref, values = [_json_value(v) for v in ref], [_json_value(v) for v in values]
    worst = max((compare(a, b) for a, b in zip(ref, values, strict=True)), key=RANK.get)
    return f"{escape(short_type(got.type))} {MARK[worst]}"


def _reader_cells(v: str, dsn: str, ref: dict[str, list[Any]], mapped: pa.Schema) -> dict[str, str]:
    columns, whole_error = _read_columns(v, dsn, list(ref))
    cells = {n: _value_column(ref[n], columns[n], n in JSON_COLUMNS) for n in ref}
    if whole_error:
        cells["as read"] = f"[red]whole read ✗ {escape(whole_error)}[/]"
        return cells | {"edge": _edge(v, dsn)}
    got = pa.table(columns)
    cells["as read"] = _sinks(got)
    try:
        cells["mapped"] = _sinks(pa.Table.from_batches([conform(b, mapped) for b in got.to_batches()], mapped))
    except Exception as e:  # noqa: BLE001 - the error is the finding
        cells["mapped"] = f"[red]cast ✗ {escape(_why(e))}[/]"
    return cells | {"edge": _edge(v, dsn)}


def fidelity_report(console: Console, dsn: str, variants: list[str]) -> None:
    """Print the per-column type table of ``bench_pg.types`` and the edge-value row per reader."""
    ref = _reference(dsn, "types")
    mapped = arrow_schema(catalog_columns(dsn, SCHEMA, "types"))
    title = "Type fidelity (bench_pg.types; ✓ = equal to psycopg's value)"
    table = Table("column", "mapping", *variants, title=title)
    cells = {v: _reader_cells(v, dsn, ref, mapped) for v in variants}
    for name in ref:
        table.add_row(name, escape(short_type(mapped.field(name).type)), *(cells[v].get(name, "") for v in variants))
    table.add_section()
    for row, label in (("as read", "→ sinks as read"), ("mapped", "→ sinks mapped"), ("edge", "types_edge")):
        table.add_row(label, "", *(cells[v].get(row, "") for v in variants))
    console.print(table)


def _edge(variant: str, dsn: str) -> str:
    """What the reader makes of NaN/Infinity numerics and infinite timestamps (or its error)."""
    try:
        got = _read(variant, dsn, "types_edge")
    except BaseException as e:  # noqa: BLE001
        _reraise_interrupts(e)
        return f"[red]✗ {escape(_why(e))}[/]"
    shown = {}
    for name in ("num_free", "ts_tz"):
        column = got.column(name).combine_chunks()
        if isinstance(column.type, pa.BaseExtensionType):
            column = column.storage
        if pa.types.is_timestamp(column.type):  # infinity does not fit a Python datetime: show the raw value
            column = column.cast(pa.int64())
        shown[name] = column.to_pylist()
    return escape(json.dumps(shown, default=str))
