"""PI Web API: recorded values of PI points on one data server, as canonical Arrow batches.

Points are found by name on the configured data server and read many per request through
``/streamsets/recorded`` (boundaryType Inside, so ``start <= t <= end``; events at ``end`` are dropped because
they belong to the next window). The server silently truncates a stream at ``maxCount`` events: a stream
that came back full is asked again from its last timestamp, and the events already taken at that timestamp
are dropped by counting them, so runs of equal timestamps split across pages come out whole and in order.
A full page made of one timestamp is asked again alone, with the largest maxCount; if even that page is one
timestamp the run cannot be paged through and the fetch fails, naming the point and the timestamp.

Requests are pipelined (:mod:`naia_backfill.connectors.pi_web_api_pipeline`): up to ``pipeline_depth`` responses
are downloading, parsed or waiting while the caller writes the previous batch, ``concurrent_requests`` of them
on the wire at once (one by default: the next request is in flight while the previous response parses, and a
server that works on one request at a time is kept busy without contention). Batches still come in request
order, and a stream's next page is asked only after its previous one was read, so each point's events come in
time order.
Response bodies are turned into Arrow columns by :mod:`naia_backfill.connectors.pi_web_api_json`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
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
from naia_backfill.connectors.pi_web_api_json import StreamsPage, errors_text, iso, parse_streamset, to_ns
from naia_backfill.connectors.pi_web_api_pipeline import OrderedPipeline
from naia_backfill.errors import SourceError, UnknownPointsError
from naia_backfill.settings import PiWebApiSource

log = logging.getLogger(__name__)

#: Events the multi-stream requests of the pipeline may return at most, all together: each request gets
#: ``DEFAULT_ROWS_IN_FLIGHT // pipeline_depth`` (maxCount per stream is lowered to fit), which bounds the
#: responses held at once to ~150 MB of JSON. A single-stream request always uses the configured max_count.
DEFAULT_ROWS_IN_FLIGHT = 1_000_000
LIST_PAGE = 1000
#: Up to this many unknown names are looked up one by one (``/points?path=``); more are listed by prefix.
LOOKUP_BY_PATH_MAX = 100


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
        rows_per_request: int | None = None,
    ) -> None:
        self.settings, self.client = settings, client
        self.retrier = retrier or retrier_for(settings)
        self.rows_per_request = rows_per_request or rows_per_request_for(settings.pipeline_depth)
        self._parsing = threading.Lock()  # one page decoded at a time: the GIL serialises it anyway, memory not
        self.sending = threading.Semaphore(min(settings.concurrent_requests, settings.pipeline_depth))
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
            raise status_error(int(exc.get("StatusCode", 500)), errors_text(exc.get("Errors", [])), what)
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
        pages = OrderedPipeline(lambda group: self._page(group, end_ns), self.settings.pipeline_depth, "pi-web-api")
        pages.extend(self._groups([_Cursor(name, self._web_ids[name.upper()], start_ns) for name in points]))
        for batch, rest in pages:
            pages.extend(self._groups(rest))  # a stream's next page is queued once this one is read
            if batch.num_rows:
                yield batch
            del batch  # the pipeline's bound counts the batch the caller holds; let it go before the next

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

    @staticmethod
    def _params(group: list[_Cursor], max_count: int, end_ns: int) -> list[tuple[str, str]]:
        return [("webId", c.web_id) for c in group] + [
            ("startTime", iso(group[0].start)),
            ("endTime", iso(end_ns)),
            ("boundaryType", "Inside"),
            ("maxCount", str(max_count)),
        ]

    def first_requests(
        self, points: Sequence[str], start: dt.datetime, end: dt.datetime
    ) -> list[list[tuple[str, str]]]:
        """Query parameters of the ``streamsets/recorded`` requests :meth:`fetch` starts with, in its order (the
        pages after them depend on the answers). For benchmarks that replay naia's requests."""
        missing = self.missing_points(points)
        if missing:
            raise UnknownPointsError(missing, self.description)
        cursors = [_Cursor(name, self._web_ids[name.upper()], to_ns(start)) for name in points]
        return [self._params(g, self._max_count(len(g)), to_ns(end)) for g in self._groups(cursors)]

    def _read(self, group: list[_Cursor], max_count: int, end_ns: int) -> StreamsPage:
        label = group[0].name if len(group) == 1 else f"{len(group)} points"
        what = f"{self.description}: recorded values of {label} from {iso(group[0].start)}"
        params = self._params(group, max_count, end_ns)

        def attempt() -> StreamsPage:
            with self.sending:  # retries wait for their backoff outside it
                body = get_body(self.client, "streamsets/recorded", params, what)
            with self._parsing:
                return parse_streamset(body, what)

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


def rows_per_request_for(pipeline_depth: int) -> int:
    """The default row budget of one multi-stream request: the pipeline's budget shared by its responses."""
    return max(1, DEFAULT_ROWS_IN_FLIGHT // pipeline_depth)


def build(settings: PiWebApiSource, credentials: Credentials) -> PiWebApiConnector:
    """The connector with its client from the shared HTTP factory (rate limit, retries, auth)."""
    return PiWebApiConnector(settings, build_client(settings, credentials))
