"""PI Web API ``/streamsets/recorded`` response bodies -> canonical Arrow columns, fast.

Bodies are decoded with msgspec into typed structs (the decode alone is about three times faster than
``orjson.loads`` into dicts), first with the common TimedValue type and again with the full one only for a page
that needs it (:mod:`naia_backfill.connectors.pi_web_api_values`); values and flags become columns there, and
timestamps one string array that Arrow's ISO 8601 cast reads (exact to 100 ns). No ``pa.array`` call, so no
pandas import (:mod:`~naia_backfill.connectors.pi_web_api_arrow`). ``naia-backfill bench pi-parse`` times the
whole path against msgspec's decode alone.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa

from naia_backfill.connectors.http import TransientError, status_error
from naia_backfill.connectors.pi_web_api_arrow import indices, repeated, strings
from naia_backfill.connectors.pi_web_api_values import (
    FullTimedValue,
    TimedValue,
    errors_text,
    needs_full,
    plain_values,
    read_odd,
    value_columns,
)
from naia_backfill.errors import SourceError
from naia_backfill.schema import SAMPLE_SCHEMA

__all__ = ["TS_TYPE", "StreamsPage", "errors_text", "iso", "parse_streamset", "to_ns"]

TS_TYPE = SAMPLE_SCHEMA.field("ts").type
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class _WebException(msgspec.Struct):
    StatusCode: int = 500
    Errors: list[Any] | None = None


def _decoder(timed_value: type) -> msgspec.json.Decoder:
    optional = [("WebId", str | None, None), ("Name", str | None, None), ("Items", list[timed_value] | None, None),
                ("Errors", list[Any] | None, None), ("WebException", _WebException | None, None)]
    stream = msgspec.defstruct("Stream", optional)
    return msgspec.json.Decoder(msgspec.defstruct("StreamSet", [("Items", list[stream] | None, None),
                                                               ("WebException", _WebException | None, None)]))


_DECODER = _decoder(TimedValue)
_FULL_DECODER = _decoder(FullTimedValue)


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
        counts = np.diff(self.offsets)
        columns = self.columns
        if rows is not None:
            take = indices(rows)
            columns = [c.take(take) for c in columns]
            stream_of_row = np.repeat(np.arange(len(points)), counts)[rows]
            if len(rows) and np.any(np.diff(stream_of_row) < 0):  # streams out of order: name row by row
                return pa.RecordBatch.from_arrays([repeated(points, counts).take(take), *columns],
                                                  schema=SAMPLE_SCHEMA)
            counts = np.bincount(stream_of_row, minlength=len(points))
        return pa.RecordBatch.from_arrays([repeated(points, counts), *columns], schema=SAMPLE_SCHEMA)


def _raise_web_exception(exc: _WebException | None, what: str) -> None:
    if exc is not None:
        raise status_error(exc.StatusCode, errors_text(exc.Errors or []), f"{what} (WebException in a 200)")


def _streams(body: bytes, what: str, full: bool) -> tuple[list[Any], bool]:
    """The decoded streams, and whether they were decoded with :class:`_FullTimedValue`."""
    try:
        doc = (_FULL_DECODER if full else _DECODER).decode(body)
    except msgspec.ValidationError as e:
        if not full:
            return _streams(body, what, True)
        raise SourceError(f"{what}: unexpected response: {e}") from e
    except msgspec.DecodeError as e:
        raise TransientError(f"{what}: cut-off or malformed response body ({e})") from e
    _raise_web_exception(doc.WebException, what)
    streams = doc.Items or []
    for s in streams:
        _raise_web_exception(s.WebException, f"{what}, stream {s.Name or s.WebId}")
        if s.Errors:
            raise SourceError(f"{what}, stream {s.Name or s.WebId}: {errors_text(s.Errors)}")
    return streams, full


def _timestamps(groups: list[Any], what: str) -> pa.Array:
    try:
        return strings([x.Timestamp for g in groups for x in g]).cast(TS_TYPE)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise SourceError(f"{what}: unreadable timestamp: {e}") from e


def parse_streamset(body: bytes, what: str = "PI Web API streamsets") -> StreamsPage:
    """Decode a streamsets response; cut-off bodies and WebExceptions raise :class:`TransientError`."""
    streams, full = _streams(body, what, False)
    groups = [s.Items or () for s in streams]
    value, odd = plain_values(groups, full)
    if not full and needs_full(odd):
        streams, full = _streams(body, what, True)
        groups = [s.Items or () for s in streams]
        value, odd = plain_values(groups, full)
    offsets = np.zeros(len(groups) + 1, np.int64)
    np.cumsum([len(g) for g in groups], out=offsets[1:])
    ts = _timestamps(groups, what)
    ts_ns = np.frombuffer(ts.buffers()[1], np.int64, len(ts), ts.offset * 8)
    back = np.flatnonzero(np.diff(ts_ns) < 0) + 1  # steps back in time, where no new stream starts
    if len(back) and len(back := back[~np.isin(back, offsets)]):
        s = streams[int(np.searchsorted(offsets, back[0], "right")) - 1]
        raise SourceError(f"{what}: events of stream {s.Name or s.WebId} are not in time order")
    return StreamsPage(
        web_ids=[s.WebId for s in streams],
        offsets=offsets,
        ts=ts_ns,
        columns=[ts, *value_columns(value, read_odd(value, odd, full))],
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
