"""QuestDB: the samples table, its DDL, and the Arrow -> ILP/HTTP writer shared by the direct sink and the consumer.

One row per event. ``DEDUP UPSERT KEYS(ts, point, seq)`` makes every write idempotent: re-running a day,
or re-consuming Kafka messages after a crash, replaces rows instead of adding them. ``seq`` numbers the
events of a point that share a timestamp (:class:`naia_backfill.schema.EventSeq`), so those are all kept.
"""

from __future__ import annotations

import logging
import re
import time
from concurrent.futures import Future, ThreadPoolExecutor

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from questdb import Sender

from naia_backfill.errors import SinkError
from naia_backfill.schema import EventSeq, conform
from naia_backfill.settings import QuestDBSink
from naia_backfill.sinks.base import DayTarget, DayWriter, Sink, SinkResult

log = logging.getLogger(__name__)

FLAGS = ("is_system", "good", "questionable", "substituted", "annotated")
#: Columns in table order; ``ts`` is the designated timestamp.
COLUMNS = ("ts", "point", "seq", "value", "text", "state_code", *FLAGS, "point_set")
DEDUP_KEYS = ("ts", "point", "seq")
OPTIONAL = ("value", "text", "state_code", "point_set")
TABLE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,126}$")


def create_table_sql(table: str, ts_type: str = "TIMESTAMP_NS") -> str:
    flags = ", ".join(f"{f} BOOLEAN" for f in FLAGS)
    return (
        f"CREATE TABLE IF NOT EXISTS {table} (ts {ts_type}, point SYMBOL CAPACITY 16384, seq INT, value DOUBLE, "
        f"text VARCHAR, state_code INT, {flags}, point_set SYMBOL CAPACITY 256) "
        f"TIMESTAMP(ts) PARTITION BY DAY WAL DEDUP UPSERT KEYS({', '.join(DEDUP_KEYS)})"
    )


def _host_port(addr: str) -> str:
    return re.sub(r"^[a-z]+://", "", addr).rstrip("/")


class QuestDBRest:
    """The few REST calls we need: DDL and small queries over ``/exec``."""

    def __init__(self, http_addr: str, timeout: float = 30.0) -> None:
        self.addr = _host_port(http_addr)
        self.client = httpx.Client(base_url=f"http://{self.addr}", timeout=timeout)

    def exec(self, sql: str) -> dict:
        try:
            r = self.client.get("/exec", params={"query": sql})
        except httpx.HTTPError as e:
            raise SinkError(f"QuestDB at {self.addr} is unreachable: {e}") from e
        body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {"error": r.text}
        if r.status_code != 200 or "error" in body:
            raise SinkError(f"QuestDB at {self.addr} refused {sql[:120]!r}: {body.get('error', r.status_code)}")
        return body

    def rows(self, sql: str) -> list[list]:
        return self.exec(sql).get("dataset", [])

    def count(self, table: str, where: str = "") -> int:
        return int(self.rows(f"SELECT count() FROM {table}" + (f" WHERE {where}" if where else ""))[0][0])

    def close(self) -> None:
        self.client.close()


def _columns(rest: QuestDBRest, table: str) -> dict[str, list]:
    if not rest.rows(f"SELECT count() FROM tables() WHERE table_name = '{table}'")[0][0]:
        return {}
    return {r[0]: r for r in rest.rows(f"SELECT \"column\", type, upsertKey FROM table_columns('{table}')")}


def ensure_table(rest: QuestDBRest, table: str) -> str:
    """Create the samples table unless it exists; return its timestamp type. Refuses a table without our dedup
    keys, where a re-run would duplicate rows."""
    if not TABLE_RE.match(table):
        raise SinkError(f"{table!r} is not a valid QuestDB table name (letters, digits, underscores)")
    existing = _columns(rest, table)
    if not existing:
        try:
            rest.exec(create_table_sql(table, "TIMESTAMP_NS"))
        except SinkError as e:
            if "TIMESTAMP_NS" not in str(e) and "type" not in str(e).lower():
                raise
            log.warning("QuestDB at %s has no TIMESTAMP_NS: ts is stored in microseconds (%s)", rest.addr, e)
            rest.exec(create_table_sql(table, "TIMESTAMP"))
        existing = _columns(rest, table)
    missing = [c for c in COLUMNS if c not in existing]
    not_keys = [k for k in DEDUP_KEYS if k in existing and not existing[k][2]]
    if missing or not_keys:
        raise SinkError(f"QuestDB table {table!r} at {rest.addr} exists but lacks columns {missing} or dedup upsert keys "
                        f"{not_keys}; drop it or choose another table name")
    return existing["ts"][1]


def wait_for_wal(rest: QuestDBRest, table: str, timeout: float = 120.0) -> None:
    """Block until every committed WAL transaction of ``table`` is applied (rows visible to queries)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = rest.rows(f"SELECT suspended, writerTxn, sequencerTxn FROM wal_tables() WHERE name = '{table}'")
        if rows and rows[0][0]:
            raise SinkError(f"QuestDB table {table!r} at {rest.addr} is suspended (WAL apply failed)")
        if rows and rows[0][1] >= rows[0][2]:
            return
        if time.monotonic() > deadline:
            raise SinkError(f"QuestDB table {table!r} at {rest.addr}: WAL not applied after {timeout:.0f}s: {rows}")
        time.sleep(0.1)


def samples_table(batch: pa.RecordBatch, seq: np.ndarray, point_set: str | None) -> pa.Table:
    """A canonical batch as the table's columns: ``point`` dictionary-encoded, ``seq`` and ``point_set`` added."""
    n = batch.num_rows
    cols = {
        "ts": batch.column("ts"),
        "point": pc.dictionary_encode(batch.column("point")),
        "seq": pa.array(seq, pa.int32()),
        **{c: batch.column(c) for c in ("value", "text", "state_code", *FLAGS)},
        "point_set": pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32), mask=np.full(n, point_set is None)),
                                                    pa.array([point_set or ""], pa.string())),
    }
    return pa.table(cols)


def to_frame(table: pa.Table) -> pd.DataFrame:
    """The pandas frame the ILP serializer reads fastest. Columns null in every row, and flags false in every
    row, are left out (QuestDB stores null and false for what a line omits); symbols are categoricals and
    nullable text/ints stay Arrow-backed."""
    data = {}
    for name in COLUMNS:
        col = table.column(name)
        if name in OPTIONAL and col.null_count == len(col):
            continue
        if name in FLAGS and not pc.any(col).as_py():
            continue
        if name in ("text", "state_code"):
            data[name] = pd.Series(pd.arrays.ArrowExtensionArray(col.combine_chunks()), copy=False)
        else:
            data[name] = col.to_pandas()
    return pd.DataFrame(data, copy=False)


def shapes(table: pa.Table) -> list[pa.Table]:
    """Split rows into those with default quality (no text, no state, only ``good`` possibly set) and the rest:
    the first, usually nearly all, become much shorter ILP lines, which QuestDB parses faster."""
    plain = pc.and_(pc.and_(table.column("text").is_null(), table.column("state_code").is_null()),
                    pc.invert(pc.or_(pc.or_(table.column("is_system"), table.column("questionable")),
                                     pc.or_(table.column("substituted"), table.column("annotated")))))
    n_plain = pc.sum(plain).as_py() or 0
    if n_plain in (0, table.num_rows):
        return [table]
    return [table.filter(plain), table.filter(pc.invert(plain))]


class IlpWriter:
    """Sends rows for one table over ILP/HTTP in requests of about ``flush_rows`` rows, one request in flight
    while the next is serialised. ``flush`` returns only when QuestDB acknowledged every row (in its WAL)."""

    def __init__(self, http_addr: str, table: str, *, flush_rows: int = 200_000, conf: str = "") -> None:
        self.addr = _host_port(http_addr)
        self.table = table
        self.flush_rows = flush_rows
        self.sender = Sender.from_conf(f"http::addr={self.addr};auto_flush=off;retry_timeout=20000;"
                                       f"request_timeout=60000;max_buf_size=1073741824;{conf}")
        try:
            self.sender.establish()
        except Exception as e:
            raise SinkError(f"QuestDB ILP/HTTP at {self.addr} is unreachable: {e}") from e
        self._spare = [self.sender.new_buffer(), self.sender.new_buffer()]
        self.buffer = self._spare.pop()
        self.buffered = 0
        self.submitted = 0  # rows handed to the sending thread, ever
        self.sent = 0  # rows QuestDB acknowledged, ever
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ilp-flush")
        self._inflight: tuple[Future, object, int] | None = None

    def write(self, table: pa.Table) -> None:
        for start in range(0, table.num_rows, self.flush_rows):
            chunk = table.slice(start, self.flush_rows)
            for part in shapes(chunk):
                frame = to_frame(part)
                try:
                    self.buffer.dataframe(frame, table_name=self.table, at="ts",
                                          symbols=[c for c in ("point", "point_set") if c in frame])
                except Exception as e:
                    raise SinkError(f"QuestDB ILP at {self.addr}: cannot serialise rows for {self.table!r}: {e}") from e
            self.buffered += chunk.num_rows
            if self.buffered >= self.flush_rows:
                self.submit()

    def submit(self) -> None:
        """Start sending what is buffered (after the request in flight is acknowledged); do not wait for it."""
        if not self.buffered:
            return
        self._wait()
        buf, rows = self.buffer, self.buffered
        self._inflight = (self._pool.submit(self.sender.flush, buf), buf, rows)
        self.buffer, self.buffered = self._spare.pop(), 0
        self.submitted += rows

    def poll(self) -> int:
        """Collect the request in flight if it finished (raising SinkError if it failed); return ``sent``."""
        if self._inflight is not None and self._inflight[0].done():
            self._wait()
        return self.sent

    def _wait(self) -> None:
        if self._inflight is None:
            return
        fut, buf, rows = self._inflight
        self._inflight = None
        try:
            fut.result()
        except Exception as e:
            raise SinkError(f"QuestDB ILP/HTTP at {self.addr} did not accept {rows} rows for {self.table!r}: {e}") from e
        finally:
            buf.clear()
            self._spare.append(buf)
        self.sent += rows

    def flush(self) -> int:
        """Send what is buffered and wait; return how many rows QuestDB accepted since the last call."""
        before = self.sent
        self.submit()
        self._wait()
        return self.sent - before

    def close(self) -> None:
        try:
            if self._inflight is not None:
                self._inflight[0].exception()
            self._pool.shutdown(wait=True)
            self.sender.close(flush=False)
        except Exception:
            log.exception("closing the QuestDB sender failed")


class QuestDBDaySink(Sink):
    """Writes each day straight to QuestDB over ILP/HTTP (no Kafka)."""

    kind = "questdb"

    def __init__(self, settings: QuestDBSink, http_addr: str, *, flush_rows: int = 200_000, conf: str = "") -> None:
        self.settings = settings
        self.http_addr = http_addr
        self.flush_rows = flush_rows
        self.conf = conf
        self.ts_type: str | None = None

    def open_day(self, target: DayTarget) -> DayWriter:
        if self.ts_type is None:
            rest = QuestDBRest(self.http_addr)
            try:
                self.ts_type = ensure_table(rest, self.settings.table)
            finally:
                rest.close()
        return QuestDBDayWriter(self, target)


class QuestDBDayWriter(DayWriter):
    def __init__(self, sink: QuestDBDaySink, target: DayTarget) -> None:
        self.sink, self.target = sink, target
        self.seq = EventSeq()
        self.writer = IlpWriter(sink.http_addr, sink.settings.table, flush_rows=sink.flush_rows, conf=sink.conf)
        self.rows = 0
        self.started = time.monotonic()

    def write(self, batch: pa.RecordBatch) -> None:
        batch = conform(batch)
        if batch.num_rows:
            self.writer.write(samples_table(batch, self.seq(batch), self.target.point_set))
            self.rows += batch.num_rows

    def commit(self) -> SinkResult:
        try:
            self.writer.flush()
        finally:
            self.writer.close()
        return SinkResult(sink="questdb", rows=self.rows, uri=f"questdb://{self.writer.addr}/{self.sink.settings.table}",
                          extra={"table": self.sink.settings.table, "ts_type": self.sink.ts_type,
                                 "seconds": round(time.monotonic() - self.started, 3)})

    def abort(self) -> None:
        self.writer.close()

