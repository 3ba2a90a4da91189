"""MongoDB sink: a day of samples as documents, written so that a re-run of the day changes nothing.

``document: samples`` (any point set): one document per event, ``_id`` = ``<point>|<ts ns>|<seq>`` (``seq`` from
:class:`naia_backfill.schema.EventSeq`), fields ``point, ts`` (BSON date, milliseconds), ``ts_ns`` (the exact
nanoseconds), ``seq, value, text, state_code`` (absent when null), the five flags and ``point_set``; unique
index ``(point, ts, ts_ns, seq)``.

``document: waqi`` (points ``<station uid>/<key>``, seed 004's ``waqi_station_readings``): one document per
station and observation, ``{_id: "<uid>|<epoch s>", ts, meta: {station_idx}, aqi, iaqi: {k: {v}}, time: {s, tz,
v, iso}}``; unique index ``(meta.station_idx, ts)``. The local ``time`` comes from the day's
``waqi.utc_offsets`` metadata (UTC when absent). A day's readings are grouped in memory (stations x hours).

Write path, chosen by measurement (README, "MongoDB"): unordered ``insert_many`` of at most ``batch_documents``
documents; documents whose key already exists (duplicate-key errors, i.e. a re-run) are written again either by
deleting them by key in bounded batches and inserting them (``rerun: delete_insert``, the default: on FerretDB
per-key replacements ran at tens of documents a second) or by unordered bulks of ``upsert_batch``
``ReplaceOne(upsert=True)`` (``rerun: replace``: atomic per document, the choice on MongoDB itself). A first
write costs an insert, a re-run writes the same content again. ``commit`` returns only when every write was acknowledged; any other write
error fails the day. Documents already written by a failed day stay: they carry the keys a re-run replaces.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import orjson
import pyarrow as pa
import pymongo
from bson.datetime_ms import DatetimeMS
from pymongo.errors import BulkWriteError, PyMongoError

from naia_backfill.errors import SinkError
from naia_backfill.schema import EventSeq, conform
from naia_backfill.settings.sinks import MongoDBSink
from naia_backfill.sinks.base import DayTarget, DayWriter, Sink, SinkResult

DUPLICATE_KEY = 11000
FLAGS = ("is_system", "good", "questionable", "substituted", "annotated")
SAMPLES_INDEX = [("point", 1), ("ts", 1), ("ts_ns", 1), ("seq", 1)]
WAQI_INDEX = [("meta.station_idx", 1), ("ts", 1)]


def safe_address(uri: str) -> str:
    """The hosts of a connection string, without user, password or options."""
    try:
        nodes = pymongo.uri_parser.parse_uri(uri, validate=False)["nodelist"]
    except (pymongo.errors.InvalidURI, ValueError):
        return "the configured server"
    return ",".join(f"{h}:{p}" for h, p in nodes)


def sample_documents(batch: pa.RecordBatch, seq: Any, point_set: str) -> list[dict[str, Any]]:
    """Canonical rows as ``document: samples`` documents."""
    cols = {name: batch.column(name).to_pylist() for name in ("point", "value", "text", "state_code", *FLAGS)}
    ns = batch.column("ts").cast(pa.int64()).to_pylist()
    docs = []
    for i, (p, t, s) in enumerate(zip(cols["point"], ns, seq.tolist(), strict=True)):
        doc: dict[str, Any] = {"_id": f"{p}|{t}|{s}", "point": p, "ts": DatetimeMS(t // 1_000_000), "ts_ns": t, "seq": s}
        for name in ("value", "text", "state_code"):
            if cols[name][i] is not None:
                doc[name] = cols[name][i]
        for name in FLAGS:
            doc[name] = cols[name][i]
        doc["point_set"] = point_set
        docs.append(doc)
    return docs


def _js(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def local_time(epoch_s: int, offsets: dict[str, int]) -> dict[str, Any]:
    """WAQI's ``time`` object of an instant: the offset in force (the latest whose first use is not after it)."""
    tz = max(((first, off) for off, first in offsets.items() if first <= epoch_s), default=(0, "+00:00"))[1]
    sign = -1 if tz.startswith("-") else 1
    hours, _, minutes = tz.lstrip("+-").partition(":")
    delta = dt.timedelta(hours=int(hours or 0), minutes=int(minutes or 0)) * sign
    local = dt.datetime.fromtimestamp(epoch_s, dt.UTC).astimezone(dt.timezone(delta))
    wall = local.replace(tzinfo=None)
    return {"s": f"{wall:%Y-%m-%d %H:%M:%S}", "tz": tz, "v": int((wall - dt.datetime(1970, 1, 1)).total_seconds()),
            "iso": local.isoformat()}  # fmt: skip


class WaqiDocuments:
    """Groups a day's canonical rows of points ``<uid>/<key>`` into one reading document per (station, ts)."""

    def __init__(self, offsets: dict[str, dict[str, int]]) -> None:
        self.offsets = offsets
        self.docs: dict[tuple[int, int], dict[str, Any]] = {}

    def add(self, batch: pa.RecordBatch) -> None:
        points = batch.column("point").to_pylist()
        ns = batch.column("ts").cast(pa.int64()).to_pylist()
        for p, t, v in zip(points, ns, batch.column("value").to_pylist(), strict=True):
            uid_text, _, key = p.partition("/")
            try:
                uid = int(uid_text)
            except ValueError:
                raise SinkError(f"document: waqi needs points named <station uid>/<key> (a waqi source), got {p!r}") from None
            if v is None or not key:
                continue
            epoch = t // 1_000_000_000
            doc = self.docs.get((uid, epoch))
            if doc is None:
                doc = self.docs[(uid, epoch)] = {
                    "_id": f"{uid}|{epoch}", "ts": DatetimeMS(t // 1_000_000), "meta": {"station_idx": uid},
                    "time": local_time(epoch, self.offsets.get(str(uid), {})),
                }
            if key == "aqi":
                doc["aqi"] = _js(v)
            else:
                doc.setdefault("iaqi", {})[key] = {"v": _js(v)}

    def take(self) -> list[dict[str, Any]]:
        docs = [self.docs[k] for k in sorted(self.docs)]
        self.docs = {}
        return docs


class MongoDBDaySink(Sink):
    kind = "mongodb"

    def __init__(self, settings: MongoDBSink, uri: str, *, client: Callable[..., Any] = pymongo.MongoClient) -> None:
        self.settings = settings
        self.address = safe_address(uri)
        # A bounded socket timeout: a server that stops answering fails the day instead of blocking the run.
        self.client = client(uri, appname="naia-backfill", serverSelectionTimeoutMS=20_000, socketTimeoutMS=300_000,
                             tz_aware=True)
        self.collection = self.client[settings.database][settings.collection]
        self._indexed = False

    def ensure_index(self) -> None:
        """The unique index on the document key (creating an existing index is a no-op)."""
        if self._indexed:
            return
        keys = WAQI_INDEX if self.settings.document == "waqi" else SAMPLES_INDEX
        name = "naia_reading_key" if self.settings.document == "waqi" else "naia_event_key"
        try:
            self.collection.create_index(keys, unique=True, name=name)
        except PyMongoError as e:
            raise SinkError(f"MongoDB at {self.address}: cannot create the unique index {name} on "
                            f"{self.settings.database}.{self.settings.collection}: {e}") from e
        self._indexed = True

    def open_day(self, target: DayTarget) -> DayWriter:
        self.ensure_index()
        return MongoDBDayWriter(self, target)

    def close(self) -> None:
        self.client.close()


class MongoDBDayWriter(DayWriter):
    def __init__(self, sink: MongoDBDaySink, target: DayTarget) -> None:
        self.sink, self.target, self.settings = sink, target, sink.settings
        self.seq = EventSeq()
        offsets = (getattr(target, "metadata", None) or {}).get("waqi.utc_offsets")
        self.waqi = WaqiDocuments(orjson.loads(offsets) if offsets else {}) if self.settings.document == "waqi" else None
        self.pending: list[dict[str, Any]] = []
        self.inserted = self.replaced = self.samples = 0
        self.started = time.monotonic()

    def write(self, batch: pa.RecordBatch) -> None:
        batch = conform(batch)
        if not batch.num_rows:
            return
        self.samples += batch.num_rows
        if self.waqi is not None:
            self.waqi.add(batch)
            return
        docs = sample_documents(batch, self.seq(batch), self.target.point_set)
        size = self.settings.batch_documents
        self.pending += docs
        while len(self.pending) >= size:
            self._send(self.pending[:size])
            del self.pending[:size]

    def _where(self) -> str:
        return f"MongoDB at {self.sink.address} ({self.settings.database}.{self.settings.collection})"

    def _send(self, docs: list[dict[str, Any]]) -> None:
        """Insert ``docs``; replace by key those that exist already. Raises unless every write is acknowledged."""
        try:
            result = self.sink.collection.insert_many(docs, ordered=False)
            if not result.acknowledged:
                raise SinkError(f"{self._where()}: the insert was not acknowledged (write concern w=0?)")
            self.inserted += len(result.inserted_ids)
            return
        except BulkWriteError as e:
            errors = e.details.get("writeErrors", [])
            other = [err for err in errors if err.get("code") != DUPLICATE_KEY]
            if other:
                raise SinkError(f"{self._where()}: {len(other)} of {len(docs)} inserts failed: {other[0].get('errmsg')}") from e
            self.inserted += e.details.get("nInserted", 0)
            existing = [docs[err["index"]] for err in errors]
            if self.settings.rerun == "replace":
                self._replace(existing)
            else:
                self._delete_insert(existing)
        except PyMongoError as e:
            raise SinkError(f"{self._where()}: insert failed: {e}") from e

    def _delete_insert(self, docs: list[dict[str, Any]]) -> None:
        """Write existing documents again: delete them by key (``$in`` of at most ``batch_documents`` ids, or
        ``$or`` of at most ``upsert_batch`` reading keys), then insert them."""
        natural = self.waqi is not None
        step = self.settings.upsert_batch if natural else self.settings.batch_documents
        for start in range(0, len(docs), step):
            chunk = docs[start:start + step]
            if natural:
                keys = [{"meta.station_idx": d["meta"]["station_idx"], "ts": d["ts"]} for d in chunk]
                where: dict[str, Any] = {"$or": keys}
            else:
                where = {"_id": {"$in": [d["_id"] for d in chunk]}}
            try:
                self.sink.collection.delete_many(where)
                result = self.sink.collection.insert_many(chunk, ordered=False)
            except PyMongoError as e:  # a duplicate now means another writer got in between: fail, a re-run fixes it
                raise SinkError(f"{self._where()}: writing {len(chunk)} existing documents again failed: {e}") from e
            if not result.acknowledged:
                raise SinkError(f"{self._where()}: a re-insert was not acknowledged")
            self.replaced += len(chunk)

    def _replace(self, docs: list[dict[str, Any]]) -> None:
        """Replace existing documents by key, in unordered bulks: events by ``_id`` (``upsert_batch`` a bulk),
        readings by their natural key (station, ts), keeping the ``_id`` a document has (it may predate this
        sink), in bulks of a quarter of that (FerretDB 1.x hangs on fewer such updates per request)."""
        natural = self.waqi is not None
        step = max(1, self.settings.upsert_batch // 4) if natural else self.settings.upsert_batch
        for start in range(0, len(docs), step):
            ops = [pymongo.ReplaceOne(*self._key_and_body(d, natural), upsert=True) for d in docs[start:start + step]]
            try:
                result = self.sink.collection.bulk_write(ops, ordered=False)
            except BulkWriteError as e:
                errors = e.details.get("writeErrors", [])
                raise SinkError(f"{self._where()}: replacing {len(ops)} existing documents failed: "
                                f"{errors[0].get('errmsg') if errors else e}") from e  # fmt: skip
            except PyMongoError as e:
                raise SinkError(f"{self._where()}: replacing {len(ops)} existing documents failed: {e}") from e
            if not result.acknowledged:
                raise SinkError(f"{self._where()}: a replacement was not acknowledged")
            self.replaced += len(ops)

    def _key_and_body(self, doc: dict[str, Any], by_natural_key: bool) -> tuple[dict[str, Any], dict[str, Any]]:
        """The filter and replacement of an existing document: by its ``_id``, or a reading by its natural key,
        keeping the ``_id`` it has."""
        if not by_natural_key:
            return {"_id": doc["_id"]}, doc
        body = {k: v for k, v in doc.items() if k != "_id"}
        return {"meta.station_idx": doc["meta"]["station_idx"], "ts": doc["ts"]}, body

    def commit(self) -> SinkResult:
        docs = self.waqi.take() if self.waqi is not None else self.pending
        self.pending = []
        size = self.settings.batch_documents
        for start in range(0, len(docs), size):
            self._send(docs[start:start + size])
        s = self.settings
        return SinkResult(
            sink="mongodb", rows=self.inserted + self.replaced, uri=f"mongodb://{self.sink.address}/{s.database}.{s.collection}",
            extra={"collection": f"{s.database}.{s.collection}", "documents_inserted": self.inserted,
                   "documents_replaced": self.replaced, "seconds": round(time.monotonic() - self.started, 3)},
        )  # fmt: skip

    def abort(self) -> None:
        self.pending = []
        if self.waqi is not None:
            self.waqi.take()
