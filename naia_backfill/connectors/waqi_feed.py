"""WAQI's wire format (SOURCES.md §3): the token on the query string without it reaching any log, feed answers
as observations, and staged observations as canonical sample rows.

An observation is what a station's feed says about one hour: ``time.iso`` is the observation instant (``time.v``
is the local wall clock encoded as if UTC, so it is never used), ``aqi`` is a number or ``"-"``, and ``iaqi``
holds one sub-index or weather value per key (keys come and go from hour to hour). The staged document is the
feed's ``data`` without its forecast.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ssl
from collections.abc import Iterable, Sequence
from typing import Any

import httpx
import numpy as np
import pyarrow as pa

from naia_backfill.errors import PointSetError, SourceError
from naia_backfill.schema import SAMPLE_SCHEMA, from_columns

#: The point of a station's overall index; every other point is an ``iaqi`` key.
AQI = "aqi"
#: Feed fields not staged: the forecast changes with every poll and is not an observation.
NOT_STAGED = ("forecast", "debug")


class TokenQuery(httpx.BaseTransport):
    """Adds ``token=`` to each request's query on its way to the network.

    The client, its logs (httpx logs every request URL at INFO) and its exceptions only ever see the request
    without the token: httpx logs and attaches the request it handed to the transport, not this copy.
    """

    def __init__(self, inner: httpx.BaseTransport, token: str) -> None:
        self._inner, self._token = inner, token

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        signed = httpx.Request(
            request.method, request.url.copy_merge_params({"token": self._token}),
            headers=request.headers, stream=request.stream, extensions=request.extensions,
        )
        return self._inner.handle_request(signed)

    def close(self) -> None:
        self._inner.close()


def network_transport(verify_tls: bool, ca_bundle: str | None) -> httpx.HTTPTransport:
    """What httpx would build itself, given the source's TLS settings (passing a transport replaces it)."""
    verify: ssl.SSLContext | bool = verify_tls
    if verify_tls and ca_bundle:
        try:
            verify = ssl.create_default_context(cafile=ca_bundle)
        except (OSError, ssl.SSLError) as e:
            raise PointSetError(f"cannot load the CA bundle {ca_bundle}: {e}") from e
    limits = httpx.Limits(max_connections=16, max_keepalive_connections=8, keepalive_expiry=60.0)
    return httpx.HTTPTransport(verify=verify, limits=limits)


def observed_at(data: dict[str, Any], what: str) -> dt.datetime:
    """The observation instant (UTC) of a feed's ``data``: ``time.iso``, else ``time.s`` with ``time.tz``."""
    t = data.get("time") if isinstance(data.get("time"), dict) else {}
    text = t.get("iso") or (f"{t['s'].replace(' ', 'T')}{t.get('tz') or '+00:00'}" if t.get("s") else None)
    try:
        at = dt.datetime.fromisoformat(str(text))
    except (TypeError, ValueError):
        raise SourceError(f"{what}: the answer has no usable observation time (time.iso {text!r})") from None
    if at.tzinfo is None:
        raise SourceError(f"{what}: observation time {text!r} has no UTC offset")
    return at.astimezone(dt.UTC)


def staged_document(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in NOT_STAGED}


@dataclasses.dataclass
class Counts:
    """Values of staged observations that were not numbers: ``dash`` (``"-"``, WAQI's "no reading") and
    ``missing`` (an ``aqi`` or ``iaqi`` entry that is absent, null or not a number)."""

    dash: int = 0
    missing: int = 0

    def add(self, other: Counts) -> None:
        self.dash += other.dash
        self.missing += other.missing


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def values(doc: dict[str, Any], counts: Counts) -> dict[str, float]:
    """Key -> number of one observation (``aqi`` and each ``iaqi`` key), counting what was skipped."""
    out: dict[str, float] = {}
    raw_aqi = doc.get(AQI)
    if _number(raw_aqi) is not None:
        out[AQI] = _number(raw_aqi)  # type: ignore[assignment]
    elif raw_aqi == "-":
        counts.dash += 1
    else:
        counts.missing += 1
    iaqi = doc.get("iaqi") if isinstance(doc.get("iaqi"), dict) else {}
    for key, entry in iaqi.items():
        v = entry.get("v") if isinstance(entry, dict) else None
        if _number(v) is not None:
            out[str(key)] = _number(v)  # type: ignore[assignment]
        elif v == "-":
            counts.dash += 1
        else:
            counts.missing += 1
    return out


def keys_of(doc: dict[str, Any]) -> list[str]:
    """The keys (points of the station) an observation reports, ``aqi`` first."""
    iaqi = doc.get("iaqi") if isinstance(doc.get("iaqi"), dict) else {}
    return [AQI, *sorted(str(k) for k in iaqi)]


def point_name(uid: int, key: str) -> str:
    return f"{uid}/{key}"


def split_point(point: str) -> tuple[int, str] | None:
    uid, _, key = point.partition("/")
    try:
        return (int(uid), key) if key else None
    except ValueError:
        return None


def samples_batch(
    points: Sequence[str], observations: Iterable[tuple[int, dt.datetime, dict[str, Any]]], counts: Counts
) -> pa.RecordBatch:
    """Canonical rows of ``points`` from staged observations: each point's values in time order, points in the
    order given. Values of keys that are not among ``points`` are left out."""
    by_point: dict[str, list[tuple[int, float]]] = {p: [] for p in points}
    for uid, at, doc in sorted(observations, key=lambda o: (o[0], o[1])):
        ns = int(at.timestamp()) * 1_000_000_000
        for key, value in values(doc, counts).items():
            rows = by_point.get(point_name(uid, key))
            if rows is not None:
                rows.append((ns, value))
    names = [p for p in points for _ in by_point[p]]
    ts = np.fromiter((t for p in points for t, _ in by_point[p]), dtype=np.int64, count=len(names))
    vals = np.fromiter((v for p in points for _, v in by_point[p]), dtype=np.float64, count=len(names))
    stamps = pa.array(ts, pa.int64()).cast(SAMPLE_SCHEMA.field("ts").type)
    return from_columns(point=names, ts=stamps, value=vals)
