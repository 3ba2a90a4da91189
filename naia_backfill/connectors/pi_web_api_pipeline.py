"""An ordered, bounded pipeline of blocking work on threads: the PI connector's requests.

The PI connector reads a day as a sequence of requests, each one downloaded, parsed and trimmed into a batch
(:meth:`~naia_backfill.connectors.pi_web_api.PiWebApiConnector._page`). Done one after another, the server
waits while the client parses and the client waits while the server answers. :class:`OrderedPipeline` keeps
the next requests going on worker threads while the consumer (the day copy writing the previous batch) works,
and hands results back strictly in the order the work was queued.

Threads, because everything a request touches is blocking and thread-safe already: the ``httpx.Client`` (its
connection pool is shared and locked), the rate limiter its request hook waits on (shared by the threads and
processes of a source), and the retrier (one tenacity loop per call, so retries stay per request). Socket reads,
Parquet encoding and Arrow's casts release the GIL; msgspec's decode does not, so the connector parses one page
at a time, and by default sends one request at a time too (``concurrent_requests``): with three results in the
pipeline, one response downloads while the one before parses and the one before that is written.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class OrderedPipeline(Generic[T, R]):
    """Runs ``work(task)`` for queued tasks on up to ``depth`` threads; iterating yields the results in the
    order the tasks were queued.

    Bounded: at most ``depth`` tasks are running or finished-but-not-taken while the consumer handles a result,
    so at most ``depth`` results exist at once, the consumer's included. A task starts only when the consumer
    asks for its next result (or at the start), never ahead of that. With ``depth`` 1 the work runs inline, one
    task after another, on the consumer's thread.

    Tasks may be queued while iterating (:meth:`extend`), e.g. the continuation of a stream read from the result
    just taken. An exception in ``work`` is raised when its result's turn comes; tasks not started are then
    dropped and running ones waited for, as they are when the consumer stops early.
    """

    def __init__(self, work: Callable[[T], R], depth: int, name: str = "pipeline") -> None:
        if depth < 1:
            raise ValueError(f"depth must be at least 1, not {depth}")
        self._work, self.depth, self._name = work, depth, name
        self._queue: collections.deque[T] = collections.deque()

    def extend(self, tasks: Iterable[T]) -> None:
        self._queue.extend(tasks)

    def __iter__(self) -> Iterator[R]:
        if self.depth == 1:
            while self._queue:
                yield self._work(self._queue.popleft())
            return
        window: collections.deque[Future[R]] = collections.deque()
        with ThreadPoolExecutor(max_workers=self.depth, thread_name_prefix=self._name) as pool:
            try:
                while self._queue or window:
                    while self._queue and len(window) < self.depth:
                        window.append(pool.submit(self._work, self._queue.popleft()))
                    yield window.popleft().result()  # not kept here: the consumer holds the only reference
            finally:
                for future in window:
                    future.cancel()
                self._queue.clear()
