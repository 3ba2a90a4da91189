"""The QuestDB side of the consumer: a pipeline of two threads writing WriteJobs over ILP/HTTP in order.

The serialiser turns a job's frames (built by :mod:`.frames` on the consumer's thread) into ILP lines
(``Buffer.dataframe`` releases the GIL while it works), the sender flushes each buffer as one request, retrying an unreachable QuestDB under the RetryPolicy.
A job is acknowledged only after QuestDB accepted its request, and jobs are acknowledged in the order they were
put, so the caller may commit their offsets. Memory is bounded: ``depth`` jobs queued, two ILP buffers (one
being serialised while the other is in flight).
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from questdb import Sender
from tenacity import Retrying

from naia_backfill.core.consumer.batching import WriteJob
from naia_backfill.core.consumer.frames import SYMBOLS
from naia_backfill.core.consumer.options import QuestDBUnavailable, RetryPolicy, is_transient
from naia_backfill.errors import SinkError
from naia_backfill.sinks.questdb import _host_port

if TYPE_CHECKING:
    from questdb.ingress import Buffer  # the module warns when imported at run time

log = logging.getLogger("naia_backfill.core.consumer")

_DONE = None  # queue sentinel


class _Stopped(Exception):
    """The other thread failed: stop quietly (its error is the one reported)."""


def _connect(conf: str) -> Sender:
    sender = Sender.from_conf(conf)
    sender.establish()  # asks QuestDB for its ILP protocol version
    return sender


class QuestDBWriter:
    """Writes jobs to ``table`` at ``http_addr`` in order; see the module docstring. ``abort`` (set on
    SIGTERM) stops retrying: the rows not yet accepted stay uncommitted. ``connect`` makes the ILP sender from
    its configuration string (tests pass a stand-in)."""

    def __init__(self, http_addr: str, table: str, retry: RetryPolicy, abort: threading.Event, *, depth: int = 2,
                 conf: str = "", connect: Callable[[str], Sender] | None = None) -> None:
        self.addr = _host_port(http_addr)
        self.table = table
        self.retry = retry
        self.abort = abort
        # The client's own retries are off: every wait is ours, logged and bounded by the budget.
        self.conf = (f"http::addr={self.addr};auto_flush=off;retry_timeout=0;request_timeout=60000;"
                     f"max_buf_size=2147483648;{conf}")
        self.sender: Sender | None = None
        self._connect = connect or _connect
        self._jobs: queue.Queue[WriteJob | None] = queue.Queue(maxsize=max(1, depth))
        self._ready: queue.Queue[tuple[WriteJob, Buffer] | None] = queue.Queue(maxsize=1)
        self._buffers: queue.Queue[Buffer] = queue.Queue()
        self._acked: collections.deque[WriteJob] = collections.deque()
        self._idle = threading.Condition()
        self._outstanding = 0  # jobs put and not yet acknowledged
        self.error: BaseException | None = None
        self.retry_waits = 0
        self._threads = [threading.Thread(target=self._guard, args=(f,), name=f"questdb{f.__name__}", daemon=True)
                         for f in (self._serialise, self._send)]

    def start(self) -> None:
        """Connect (retrying like a write: QuestDB may still be starting) and start the threads."""
        self.sender = self._retrying("connecting to QuestDB ILP/HTTP")(self._connect, self.conf)
        for _ in range(2):  # one being serialised while the other is in flight
            self._buffers.put(self.sender.new_buffer())
        for t in self._threads:
            t.start()

    @property
    def full(self) -> bool:
        return self._jobs.full()

    @property
    def outstanding(self) -> int:
        with self._idle:
            return self._outstanding

    def put(self, job: WriteJob, timeout: float | None = None) -> bool:
        """Queue ``job``; False if the queue stayed full for ``timeout`` seconds (None or 0: do not wait)."""
        self.raise_error()
        with self._idle:
            self._outstanding += 1
        try:
            self._jobs.put(job, block=bool(timeout), timeout=timeout or None)
            return True
        except queue.Full:
            with self._idle:
                self._outstanding -= 1
            return False

    def acknowledged(self) -> list[WriteJob]:
        """Jobs QuestDB accepted since the last call, in the order they were put."""
        out = []
        while self._acked:
            out.append(self._acked.popleft())
        return out

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every job put was accepted (True) or failed or ``timeout`` passed (False)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._outstanding == 0 or self.error is not None, timeout) and \
                self.error is None

    def raise_error(self) -> None:
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        """Stop the threads (after the jobs already queued, unless failed or aborted) and the sender."""
        if self._threads[0].is_alive():
            try:
                self._put(self._jobs, _DONE)
            except _Stopped:
                pass
        for t in self._threads:
            if t.is_alive():
                t.join(timeout=5)
        try:
            if self.sender is not None:
                self.sender.close(flush=False)
        except Exception:  # closing never raises
            log.exception("closing the QuestDB sender failed")

    def _get(self, q: queue.Queue):
        while self.error is None:
            try:
                return q.get(timeout=0.2)
            except queue.Empty:
                continue
        raise _Stopped

    def _put(self, q: queue.Queue, item: object) -> None:
        while self.error is None:
            try:
                return q.put(item, timeout=0.2)
            except queue.Full:
                continue
        raise _Stopped

    def _retrying(self, what: str) -> Retrying:
        def counted(_wait: float) -> None:
            self.retry_waits += 1

        return self.retry.retrying(f"{what} at {self.addr}", self.abort, on_wait=counted)

    def _guard(self, body: Callable[[], None]) -> None:
        try:
            body()
        except _Stopped:
            pass
        except Exception as e:  # noqa: BLE001 - handed to the consumer's thread by raise_error()
            with self._idle:
                self.error = e if isinstance(e, SinkError) else SinkError(f"QuestDB writer failed: {e!r}")
                self._idle.notify_all()

    def _serialise(self) -> None:
        while (job := self._get(self._jobs)) is not _DONE:
            buf = self._get(self._buffers)
            if job.frames is not None:
                for frame in job.frames:
                    try:
                        buf.dataframe(frame, table_name=self.table, at="ts", symbols=[c for c in SYMBOLS if c in frame])
                    except Exception as e:
                        raise SinkError(f"QuestDB ILP: cannot serialise {job.rows} rows for {self.table!r}: {e}") from e
            job.frames = None  # the rows are in the buffer now
            self._put(self._ready, (job, buf))
        self._put(self._ready, _DONE)

    def _send(self) -> None:
        assert self.sender is not None
        while (item := self._get(self._ready)) is not _DONE:
            job, buf = item
            if len(buf):
                try:
                    self._retrying("sending rows to QuestDB ILP/HTTP")(self.sender.flush, buf, clear=False)
                except Exception as e:
                    raise self._failure(job, e) from e
                buf.clear()
            self._buffers.put(buf)
            with self._idle:
                self._acked.append(job)
                self._outstanding -= 1
                self._idle.notify_all()

    def _failure(self, job: WriteJob, e: Exception) -> SinkError:
        if self.abort.is_set():
            return SinkError(f"stopped while QuestDB at {self.addr} had not accepted {job.rows} rows ({e}); their "
                             f"offsets stay uncommitted and the messages will be consumed again")
        if is_transient(e):
            return QuestDBUnavailable(
                f"QuestDB at {self.addr} did not accept {job.rows} rows for {self.table!r} within the retry budget "
                f"of {self.retry.budget:.0f}s (--questdb-retry-seconds): {e}; offsets stay uncommitted")
        return SinkError(f"QuestDB at {self.addr} refused {job.rows} rows for {self.table!r}: {e}; offsets stay "
                         f"uncommitted")
