"""ACE IoT API response bodies -> columns, fast.

A time-series page ``{"point_samples":[{"name","value","time"}...],"next_cursor","has_more"}`` is decoded by
msgspec into small structs; names become indices into the wanted points with one dict lookup each, values and
times become Arrow arrays parsed in one call each (Arrow parses decimal text to the correctly rounded float64,
exactly as Python's ``float`` does, and ISO 8601 times with ``Z`` or an offset to UTC nanoseconds). Values
are strings on the wire ("45.5", "nan", "inf", "" and null occur); JSON numbers and booleans are taken too.
A text that is not a number is kept as text. Unknown keys are ignored.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from naia_backfill.connectors.http import TransientError
from naia_backfill.errors import SourceError
from naia_backfill.schema import SAMPLE_SCHEMA

TS_TYPE = SAMPLE_SCHEMA.field("ts").type
#: What Arrow's string -> float64 cast accepts (after trimming), so texts outside it are kept as text.
NUMBER_RE = r"^[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity|nan)$"


class _Sample(msgspec.Struct, gc=False):
    name: str
    time: str
    value: Any = None


class _SeriesPage(msgspec.Struct, gc=False):
    point_samples: list[_Sample] | None = None
    next_cursor: str | None = None
    has_more: bool = False


class ListItem(msgspec.Struct, gc=False):
    """A site or point of a list endpoint (only what the connector uses)."""

    name: str
    collect_interval: float | None = None


class ListPage(msgspec.Struct, gc=False):
    page: int | None = None
    pages: int | None = None
    items: list[ListItem] | None = None


_SERIES = msgspec.json.Decoder(_SeriesPage)
_LIST = msgspec.json.Decoder(ListPage)


def _decode(decoder: msgspec.json.Decoder, body: bytes, what: str) -> Any:
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as e:
        raise SourceError(f"{what}: unexpected response: {e}") from e
    except msgspec.DecodeError as e:
        raise TransientError(f"{what}: cut-off or malformed response body ({e})") from e


def parse_list(body: bytes, what: str) -> ListPage:
    """One page of ``/sites/``, ``/sites/{site}/points`` or ``/configured_points``."""
    return _decode(_LIST, body, what)


@dataclasses.dataclass
class SeriesPage:
    """One time-series page as columns, in served order."""

    index: np.ndarray  # int64: the sample's point as a position in the wanted names, -1 for any other point
    ts: np.ndarray  # int64 ns since the epoch, UTC
    value: pa.Array  # float64; null where the value is no number
    text: pa.Array | None  # string: values that are not numbers (None when there are none)
    number: np.ndarray  # bool: the value is a finite number
    next_cursor: str | None
    has_more: bool

    def __len__(self) -> int:
        return len(self.ts)


def _as_text(v: Any) -> str | None:
    """A value that is not a string, as the text it stands for (numbers exactly: repr round-trips)."""
    if v is None or v.__class__ is str:
        return v
    if v.__class__ is bool:
        return "1" if v else "0"
    if v.__class__ in (int, float):
        return repr(float(v))
    return orjson.dumps(v).decode()


def parse_values(raw: list[Any]) -> tuple[pa.Array, pa.Array | None]:
    """float64 values (null where empty, null or not a number) and the texts that are not numbers."""
    try:
        texts = pa.array(raw, pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        texts = pa.array([_as_text(v) for v in raw], pa.string())
    texts = pc.if_else(pc.equal(texts, ""), pa.scalar(None, pa.string()), texts)
    try:
        return texts.cast(pa.float64()), None
    except pa.ArrowInvalid:
        pass
    trimmed = pc.utf8_trim_whitespace(texts)
    numeric = pc.fill_null(pc.match_substring_regex(trimmed, NUMBER_RE, ignore_case=True), False)
    values = pc.if_else(numeric, trimmed, pa.scalar(None, pa.string())).cast(pa.float64())
    return values, pc.if_else(numeric, pa.scalar(None, pa.string()), texts)


def parse_times(raw: list[str], what: str) -> np.ndarray:
    """ISO 8601 times as int64 ns UTC; a time without offset is taken as UTC."""
    text = pa.array(raw, pa.string())
    try:
        ts = text.cast(TS_TYPE)
    except pa.ArrowInvalid:
        try:
            ts = text.cast(pa.timestamp("ns")).cast(TS_TYPE)
        except pa.ArrowInvalid as e:
            raise SourceError(f"{what}: unreadable sample time: {e}") from e
    return ts.cast(pa.int64()).to_numpy(zero_copy_only=False)


def parse_series(body: bytes, index: dict[str, int], what: str) -> SeriesPage:
    """Decode a ``/timeseries/paginated`` page; a cut-off body raises :class:`TransientError` (retried)."""
    page = _decode(_SERIES, body, what)
    samples = page.point_samples or []
    n = len(samples)
    get = index.get
    idx = np.fromiter([get(s.name, -1) for s in samples], np.int64, n)
    ts = parse_times([s.time for s in samples], what)
    value, text = parse_values([s.value for s in samples])
    number = pc.fill_null(pc.is_finite(value), False).to_numpy(zero_copy_only=False)
    return SeriesPage(idx, ts, value, text, number, page.next_cursor, page.has_more)
