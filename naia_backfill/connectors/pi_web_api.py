"""PI Web API: recorded values of PI points on one data server, as canonical Arrow batches.

Points are found by name on the configured data server and read many per request through
``/streamsets/recorded`` (boundaryType Inside, so ``start <= t <= end``; events at ``end`` are dropped because
they belong to the next window). The server silently truncates a stream at ``maxCount`` events: a stream
that came back full is asked again from its last timestamp, and the events already taken at that timestamp
are dropped by counting them, so runs of equal timestamps split across pages come out whole and in order.
A full page made of one timestamp is asked again alone, with the largest maxCount; if even that page is one
timestamp the run cannot be paged through and the fetch fails, naming the point and the timestamp.

Responses are decoded with msgspec into typed structs (the decode alone is about three times faster than
``orjson.loads`` into dicts, the whole bytes-to-Arrow path about twice: ``naia-backfill bench pi-parse
--compare``), then turned into columns: timestamps by Arrow's ISO 8601 cast (exact to 100 ns), numbers by one
``pa.array`` call; only values that are not plain numbers (states, strings, errors) take a per-value path.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
import os
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import msgspec
import numpy as np
import orjson
import pyarrow as pa

from naia_backfill.connectors.base import Credentials, Estimate, Source
from naia_backfill.connectors.http import (
    HttpStatusError,
    Retrier,
    TransientError,
    build_client,
    get_body,
    retrier_for,
    status_error,
)
from naia_backfill.errors import SourceError, UnknownPointsError
from naia_backfill.schema import SAMPLE_SCHEMA
from naia_backfill.settings import PiWebApiSource

log = logging.getLogger(__name__)

#: Events one multi-stream request may return at most (maxCount per stream is lowered to fit), which bounds
#: a response to ~150 MB of JSON. A single-stream request always uses the configured max_count.
DEFAULT_ROWS_PER_REQUEST = 1_000_000
LIST_PAGE = 1000
#: Up to this many unknown names are looked up one by one (``/points?path=``); more are listed by prefix.
LOOKUP_BY_PATH_MAX = 100
TS_TYPE = SAMPLE_SCHEMA.field("ts").type
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class _TimedValue(msgspec.Struct, gc=False):
    """Fields in the order PI writes them (Value last), which msgspec decodes fastest; any order works."""

    Timestamp: str
    Good: bool = True
    Questionable: bool = False
    Substituted: bool = False
    Annotated: bool = False
    Value: Any = None


class _TimedValueWithErrors(_TimedValue, gc=False):
    """A value PI could not read comes as ``"Value":null,"Errors":[{"FieldName","Message"}]``. Decoding this
    field costs ~10% for every value, so only pages holding a null Value are decoded again with it."""

    Errors: Any = None


class _WebException(msgspec.Struct):
    StatusCode: int = 500
    Errors: list[Any] | None = None


def _decoder(timed_value: type) -> msgspec.json.Decoder:
    optional = [("WebId", str | None, None), ("Name", str | None, None), ("Items", list[timed_value] | None, None),
                ("Errors", list[Any] | None, None), ("WebException", _WebException | None, None)]
    stream = msgspec.defstruct("Stream", optional)
    return msgspec.json.Decoder(msgspec.defstruct("StreamSet", [("Items", list[stream] | None, None),
                                                               ("WebException", _WebException | None, None)]))


_DECODER = _decoder(_TimedValue)
_DECODER_WITH_ERRORS = _decoder(_TimedValueWithErrors)


def _errors_text(errors: Any) -> str:
    """PI's error lists: strings, or objects such as ``{"FieldName": "Value", "Message": ["..."]}``."""
    parts = []
    for e in errors if isinstance(errors, list) else [errors]:
        if isinstance(e, dict) and "Message" in e:
            e = e["Message"]
        parts.extend(map(str, e) if isinstance(e, list) else [str(e)])
    return "; ".join(parts)


def _values(vals: list[Any]) -> tuple[pa.Array, pa.Array, pa.Array, pa.Array, list[int], bool]:
    """value, text, state_code, is_system columns, the rows holding an ``{"Errors": ...}`` value, and whether
    any value is a JSON null."""
    n = len(vals)
    try:
        value = pa.array(vals, type=pa.float64())  # numbers, booleans and nulls: the common page
        empty = pa.nulls(n, pa.string()), pa.nulls(n, pa.int32()), pa.array(np.zeros(n, bool))
        return value, *empty, [], value.null_count > 0
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    nulls = False
    nums = list(vals)
    text: list[str | None] = [None] * n
    code_at: list[int] = []
    codes: list[int] = []
    system: list[int] = []
    errors: list[int] = []
    for i in [i for i, v in enumerate(vals) if v.__class__ is not float]:
        v = vals[i]
        cls = v.__class__
        if cls is dict:
            nums[i] = None
            if "Errors" in v:
                text[i] = _errors_text(v["Errors"])
                errors.append(i)
            elif "Name" in v:
                text[i] = str(v["Name"])
                code = v.get("Value")
                if (code.__class__ is int or code.__class__ is float) and -(2**31) <= code < 2**31:
                    code_at.append(i)
                    codes.append(int(code))
                if v.get("IsSystem"):
                    system.append(i)
            else:
                text[i] = orjson.dumps(v).decode()
        elif cls is str:
            nums[i] = None
            text[i] = v
        elif cls is int or cls is bool:
            nums[i] = float(v)
        elif v is None:
            nulls = True
        else:
            nums[i] = None
            text[i] = orjson.dumps(v).decode()
    code_col = np.zeros(n, np.int32)
    code_mask = np.ones(n, bool)
    code_col[code_at] = codes
    code_mask[code_at] = False
    is_system = np.zeros(n, bool)
    is_system[system] = True
    return (
        pa.array(nums, type=pa.float64()),
        pa.array(text, type=pa.string()),
        pa.array(code_col, mask=code_mask, type=pa.int32()),
        pa.array(is_system),
        errors,
        nulls,
    )


@dataclasses.dataclass
class StreamsPage:
    """One ``/streamsets/recorded`` response as columns: every stream's events, concatenated in order."""

    web_ids: list[str | None]
    offsets: np.ndarray  # stream i holds rows offsets[i]:offsets[i+1]
    ts: np.ndarray  # int64 ns since the epoch, UTC
    columns: list[pa.Array]  # ts and the columns after it in SAMPLE_SCHEMA

    @property
    def num_rows(self) -> int:
        return len(self.ts)

    def batch(self, points: Sequence[str], rows: np.ndarray | None = None) -> pa.RecordBatch:
        """A canonical batch; ``points[i]`` names stream i; ``rows`` selects rows (all if None)."""
        stream_of_row = np.repeat(np.arange(len(points)), np.diff(self.offsets))
        columns = [pa.array(points, pa.string()).take(stream_of_row), *self.columns]
        batch = pa.RecordBatch.from_arrays(columns, schema=SAMPLE_SCHEMA)
        return batch if rows is None else batch.take(pa.array(rows, pa.int64()))


def _raise_web_exception(exc: _WebException | None, what: str) -> None:
    if exc is not None:
        raise status_error(exc.StatusCode, _errors_text(exc.Errors or []), f"{what} (WebException in a 200)")


def _streams(decoder: msgspec.json.Decoder, body: bytes, what: str) -> list[Any]:
    try:
        doc = decoder.decode(body)
    except msgspec.ValidationError as e:
        raise SourceError(f"{what}: unexpected response: {e}") from e
    except msgspec.DecodeError as e:
        raise TransientError(f"{what}: cut-off or malformed response body ({e})") from e
    _raise_web_exception(doc.WebException, what)
    streams = doc.Items or []
    for s in streams:
        _raise_web_exception(s.WebException, f"{what}, stream {s.Name or s.WebId}")
        if s.Errors:
            raise SourceError(f"{what}, stream {s.Name or s.WebId}: {_errors_text(s.Errors)}")
    return streams


def parse_streamset(body: bytes, what: str = "PI Web API streamsets") -> StreamsPage:
    """Decode a streamsets response; cut-off bodies and WebExceptions raise :class:`TransientError`."""
    streams = _streams(_DECODER, body, what)
    groups = [s.Items or () for s in streams]  # nested comprehensions below beat flattening first
    value, text, state, is_system, errors, nulls = _values([x.Value for g in groups for x in g])
    if nulls:
        streams = _streams(_DECODER_WITH_ERRORS, body, what)
        groups = [s.Items or () for s in streams]
        vals = [x.Value if x.Errors is None else {"Errors": x.Errors} for g in groups for x in g]
        value, text, state, is_system, errors, nulls = _values(vals)
    offsets = np.zeros(len(groups) + 1, np.int64)
    np.cumsum([len(g) for g in groups], out=offsets[1:])
    try:
        ts = pa.array([x.Timestamp for g in groups for x in g], pa.string()).cast(TS_TYPE)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise SourceError(f"{what}: unreadable timestamp: {e}") from e
    # One pass packing the four flags is measurably cheaper than four passes.
    packed = np.fromiter(
        [x.Good | x.Questionable << 1 | x.Substituted << 2 | x.Annotated << 3 for g in groups for x in g],
        np.uint8, int(offsets[-1]),
    )
    packed[errors] &= np.uint8(0b1110)  # a value that could not be read is not good
    flags = [pa.array((packed & np.uint8(bit)) != 0) for bit in (1, 2, 4, 8)]
    ts_ns = ts.view(pa.int64()).to_numpy()
    back = np.flatnonzero(np.diff(ts_ns) < 0) + 1
    back = back[~np.isin(back, offsets)]
    if len(back):
        s = streams[int(np.searchsorted(offsets, back[0], "right")) - 1]
        raise SourceError(f"{what}: events of stream {s.Name or s.WebId} are not in time order")
    return StreamsPage(
        web_ids=[s.WebId for s in streams],
        offsets=offsets,
        ts=ts_ns,
        columns=[ts, value, text, state, is_system, *flags],
    )


def to_ns(t: dt.datetime) -> int:
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    d = t - EPOCH
    return (d.days * 86_400 + d.seconds) * 1_000_000_000 + d.microseconds * 1000


def iso(ns: int) -> str:
    """ISO 8601 UTC with up to 7 fractional digits (9 if the time is not a whole number of 100 ns)."""
    sec, frac = divmod(ns, 1_000_000_000)
    text = (EPOCH + dt.timedelta(seconds=sec)).strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        digits = f"{frac:09d}"[: 7 if frac % 100 == 0 else 9].rstrip("0")
        text += "." + digits
    return text + "Z"


@dataclasses.dataclass
class _Cursor:
    name: str
    web_id: str
    start: int  # startTime of the next request, ns
    skip: int = 0  # events at ``start`` already yielded
    alone: bool = False  # the next request must hold this stream only


class PiWebApiConnector(Source):
    """Recorded values of points on one PI data server, read through an injected ``httpx.Client``."""

    def __init__(
        self,
        settings: PiWebApiSource,
        client: httpx.Client,
        *,
        retrier: Retrier | None = None,
        rows_per_request: int = DEFAULT_ROWS_PER_REQUEST,
    ) -> None:
        self.settings, self.client = settings, client
        self.retrier = retrier or retrier_for(settings)
        self.rows_per_request = rows_per_request
        self.description = f"PI Web API {settings.base_url} ({settings.data_server})"
        self._server: tuple[str, str] | None = None  # (WebId, Name)
        self._web_ids: dict[str, str] = {}  # upper-case point name -> WebId

    def _get_json(self, path: str, params: Any, what: str) -> Any:
        def attempt() -> Any:
            body = get_body(self.client, path, params, what)
            try:
                return orjson.loads(body)
            except orjson.JSONDecodeError as e:
                raise TransientError(f"{what}: cut-off or malformed response body ({e})") from e

        doc = self.retrier.call(attempt, what)
        if isinstance(doc, dict) and isinstance(doc.get("WebException"), dict):
            exc = doc["WebException"]
            raise status_error(int(exc.get("StatusCode", 500)), _errors_text(exc.get("Errors", [])), what)
        return doc

    def data_server(self) -> tuple[str, str]:
        """(WebId, Name) of the configured data server."""
        if self._server is None:
            what = f"{self.description}: list data servers"
            items = self._get_json("dataservers", None, what).get("Items") or []
            wanted = self.settings.data_server.upper()
            found = [it for it in items if str(it.get("Name", "")).upper() == wanted]
            if not found:
                names = ", ".join(str(it.get("Name")) for it in items) or "none"
                raise SourceError(f"{self.description}: no data server named {self.settings.data_server!r}; "
                                  f"the server offers: {names}")
            self._server = (found[0]["WebId"], found[0]["Name"])
        return self._server

    def list_points(self, name_filter: str = "*") -> list[str]:
        web_id, _server = self.data_server()
        names: list[str] = []
        seen: set[str] = set()
        while True:
            what = f"{self.description}: list points {name_filter!r} from #{len(names)}"
            params = {"nameFilter": name_filter, "startIndex": len(names), "maxCount": LIST_PAGE}
            items = self._get_json(f"dataservers/{web_id}/points", params, what).get("Items") or []
            fresh = [it for it in items if it["Name"].upper() not in seen]
            if items and not fresh:
                raise SourceError(f"{what}: the server repeats its first page (startIndex ignored?)")
            for it in fresh:
                seen.add(it["Name"].upper())
                self._web_ids[it["Name"].upper()] = it["WebId"]
                names.append(it["Name"])
            if len(items) < LIST_PAGE:
                return names

    def missing_points(self, names: Sequence[str]) -> list[str]:
        unknown = [n for n in names if n.upper() not in self._web_ids]
        if len(unknown) > LOOKUP_BY_PATH_MAX:
            prefix = os.path.commonprefix([n.upper() for n in unknown])
            prefix = prefix[: min([prefix.find(c) for c in "*?" if c in prefix] or [len(prefix)])]
            self.list_points(prefix + "*")
            unknown = [n for n in unknown if n.upper() not in self._web_ids]
        if not unknown:
            return []
        _, server = self.data_server()
        missing = []
        for name in unknown:
            what = f"{self.description}: look up point {name!r}"
            try:
                point = self._get_json("points", {"path": f"\\\\{server}\\{name}"}, what)
            except HttpStatusError as e:
                if e.status != 404:
                    raise
                missing.append(name)
                continue
            self._web_ids[name.upper()] = point["WebId"]
        return missing

    def estimate(self, points: int, days: int) -> Estimate:
        return Estimate(samples=None, requests=math.ceil(points / self.settings.points_per_request) * days)

    def fetch(self, points: Sequence[str], start: dt.datetime, end: dt.datetime) -> Iterator[pa.RecordBatch]:
        start_ns, end_ns = to_ns(start), to_ns(end)
        if not points or end_ns <= start_ns:
            return
        missing = self.missing_points(points)
        if missing:
            raise UnknownPointsError(missing, self.description)
        pending = [_Cursor(name, self._web_ids[name.upper()], start_ns) for name in points]
        while pending:
            after: list[_Cursor] = []
            for group in self._groups(pending):
                batch, rest = self._page(group, end_ns)
                after.extend(rest)
                if batch.num_rows:
                    yield batch
            pending = after

    def _groups(self, pending: list[_Cursor]) -> Iterator[list[_Cursor]]:
        """Streams that share a startTime go together, ``points_per_request`` at a time."""
        by_start: dict[tuple[int, int], list[_Cursor]] = {}
        for i, c in enumerate(pending):
            by_start.setdefault((c.start, i + 1 if c.alone else 0), []).append(c)
        size = self.settings.points_per_request
        for members in by_start.values():
            for i in range(0, len(members), size):
                yield members[i : i + size]

    def _max_count(self, streams: int) -> int:
        if streams == 1:
            return self.settings.max_count
        return min(self.settings.max_count, max(1, self.rows_per_request // streams))

    def _read(self, group: list[_Cursor], max_count: int, end_ns: int) -> StreamsPage:
        label = group[0].name if len(group) == 1 else f"{len(group)} points"
        what = f"{self.description}: recorded values of {label} from {iso(group[0].start)}"
        params = [("webId", c.web_id) for c in group] + [
            ("startTime", iso(group[0].start)),
            ("endTime", iso(end_ns)),
            ("boundaryType", "Inside"),
            ("maxCount", str(max_count)),
        ]

        def attempt() -> StreamsPage:
            return parse_streamset(get_body(self.client, "streamsets/recorded", params, what), what)

        page = self.retrier.call(attempt, what)
        if len(page.web_ids) != len(group):
            raise SourceError(f"{what}: asked for {len(group)} streams, got {len(page.web_ids)}")
        return page

    def _page(self, group: list[_Cursor], end_ns: int) -> tuple[pa.RecordBatch, list[_Cursor]]:
        """Read one page of ``group``; return its rows in [cursor, end) and the cursors still open."""
        max_count = self._max_count(len(group))
        page = self._read(group, max_count, end_ns)
        position = {w: i for i, w in enumerate(page.web_ids)}
        order = [position.get(c.web_id) for c in group]
        if None in order or len(set(order)) != len(order):
            order = list(range(len(group)))  # WebIds echoed in another form: trust the order
        # A server applying maxCount per request, not per stream, would return exactly maxCount rows in all;
        # then a short stream may be cut too, so it is read again alone, where both readings agree.
        ambiguous = len(group) > 1 and page.num_rows == max_count
        keep: list[np.ndarray] = []
        rest: list[_Cursor] = []
        for c, r in zip(group, order, strict=True):
            a, b = int(page.offsets[r]), int(page.offsets[r + 1])
            t = page.ts[a:b]
            lo = int(np.searchsorted(t, c.start, "left"))
            lo += min(c.skip, int(np.searchsorted(t, c.start, "right")) - lo)
            hi = int(np.searchsorted(t, end_ns, "left"))
            if hi > lo:
                keep.append(np.arange(a + lo, a + hi))
            full = b - a >= max_count
            if not full and not ambiguous:
                continue
            if b == a:
                rest.append(_Cursor(c.name, c.web_id, c.start, c.skip, alone=True))
                continue
            last = int(t[-1])
            if last >= end_ns:
                continue
            taken = b - a - int(np.searchsorted(t, last, "left"))
            if (last, taken) > (c.start, c.skip):
                rest.append(_Cursor(c.name, c.web_id, last, taken, alone=not full))
            elif len(group) > 1:
                rest.append(_Cursor(c.name, c.web_id, c.start, c.skip, alone=True))
            else:
                raise SourceError(
                    f"{self.description}: point {c.name!r} has at least {max_count} events at {iso(last)} and "
                    f"PI Web API pages by timestamp, so a page of max_count={max_count} cannot get past them: "
                    f"raise max_count (at most the server's MaxReturnedItemsPerCall, 150000 by default)"
                )
        names = [""] * len(group)
        for c, r in zip(group, order, strict=True):
            names[r] = c.name
        rows = np.concatenate(keep) if keep else np.zeros(0, np.int64)
        log.debug("%s: %d of %d rows kept, %d streams continue", self.description, len(rows), page.num_rows,
                  len(rest))
        return page.batch(names, None if len(rows) == page.num_rows else rows), rest

    def close(self) -> None:
        self.client.close()


def build_pi_web_api(settings: PiWebApiSource, credentials: Credentials) -> PiWebApiConnector:
    """The connector with its client from the shared HTTP factory (rate limit, retries, auth)."""
    return PiWebApiConnector(settings, build_client(settings, credentials))
