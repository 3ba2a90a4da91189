"""The PI connector's pipelined fetch against the in-test fake server: requests sent ahead while the caller
holds a batch, at most ``concurrent_requests`` (and never more than ``pipeline_depth``) on the wire at once,
batches in request order, a point's events in time order, a retried request not reordered, the row budget
shared by the responses held."""

from __future__ import annotations

import threading
from urllib.parse import parse_qsl

import httpx
import pydantic
import pytest

from naia_backfill.connectors import http
from naia_backfill.connectors.base import Credentials
from naia_backfill.connectors.pi_web_api import DEFAULT_ROWS_IN_FLIGHT, PiWebApiConnector, rows_per_request_for
from naia_backfill_tests.unit.connectors.test_pi_web_api import DAY, NEXT, S, FakePI, fetched, series, settings, sleeps

WAIT = 30  # seconds a test waits for threads before it fails (never reached when the code is right)


class Concurrency:
    """Wraps FakePI's handler: counts streamsets requests being answered at once; the first ``hold`` of them
    wait for each other, so the test fails (barrier timeout) unless that many are in flight together."""

    def __init__(self, fake: FakePI, hold: int = 0) -> None:
        self.fake, self.lock = fake, threading.Lock()
        self.now = self.most = 0
        self.barrier = threading.Barrier(hold, timeout=WAIT) if hold > 1 else None
        self.held = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        if not request.url.path.endswith("streamsets/recorded"):
            return self.fake.handler(request)
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
            wait = self.barrier is not None and self.held < self.barrier.parties
            self.held += wait
        try:
            if wait:
                self.barrier.wait()
            return self.fake.handler(request)
        finally:
            with self.lock:
                self.now -= 1


def connector(fake: FakePI, handler=None, **kw) -> PiWebApiConnector:
    s = settings(**kw)
    client = http.build_client(s, Credentials(), transport=httpx.MockTransport(handler or fake.handler))
    return PiWebApiConnector(s, client, retrier=sleeps()[0])


def points_of(batches) -> list[list[str]]:
    return [sorted(set(b.column("point").to_pylist())) for b in batches]


@pytest.mark.parametrize("depth,concurrent", [(2, 2), (3, 3), (6, 6), (3, 16)])
def test_requests_overlap_up_to_the_limit_and_never_beyond(depth, concurrent):
    names = [f"P{i:02d}" for i in range(12)]
    fake = FakePI({n: series(4) for n in names})
    seen = Concurrency(fake, hold=min(depth, concurrent))
    conn = connector(fake, seen.handler, points_per_request=1, pipeline_depth=depth, concurrent_requests=concurrent)
    got = fetched(conn, names)
    assert all(got[n] == fake.truth(n) for n in names)
    assert seen.most == min(depth, concurrent)


def test_by_default_one_request_is_on_the_wire_while_the_caller_holds_a_batch():
    names = [f"P{i:02d}" for i in range(8)]
    fake = FakePI({n: series(4) for n in names})
    seen = Concurrency(fake)
    third_sent = threading.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        response = seen.handler(request)
        if sum(r.url.path.endswith("recorded") for r in fake.requests) >= 3:
            third_sent.set()
        return response

    conn = connector(fake, handler, points_per_request=2)
    batches = conn.fetch(names, DAY, NEXT)
    first = next(batches)
    # the caller still holds the first batch: the pipeline (depth 3) has asked for the next two meanwhile
    assert third_sent.wait(WAIT)
    rest = list(batches)
    assert points_of([first, *rest]) == [names[i:i + 2] for i in range(0, 8, 2)]
    assert seen.most == 1


def test_depth_one_reads_one_request_after_another():
    names = [f"P{i:02d}" for i in range(6)]
    fake = FakePI({n: series(12) for n in names})
    seen = Concurrency(fake)
    got = fetched(connector(fake, seen.handler, points_per_request=2, pipeline_depth=1), names)
    assert all(got[n] == fake.truth(n) for n in names)
    assert seen.most == 1


def test_batches_come_in_request_order_and_each_point_in_time_order():
    names = [f"P{i:02d}" for i in range(9)]
    fake = FakePI({n: series(12 + i, step=S * (i + 1)) for i, n in enumerate(names)})
    conn = connector(fake, points_per_request=3, max_count=5, pipeline_depth=4)
    batches = list(conn.fetch(names, DAY, NEXT))
    # the first pages go out in the order of the points, then each group's next page once its previous was read
    assert points_of(batches)[:3] == [names[0:3], names[3:6], names[6:9]]
    got = fetched(connector(fake, points_per_request=3, max_count=5, pipeline_depth=4), names)
    assert all(got[n] == fake.truth(n) for n in names)  # in yield order: each point's events in time order


class SecondFailsAfterThird:
    """The second request's first attempt waits until the third was answered, then fails with a 503."""

    def __init__(self, fake: FakePI) -> None:
        self.fake, self.lock = fake, threading.Lock()
        self.third_answered = threading.Event()
        self.failed = False

    def handler(self, request: httpx.Request) -> httpx.Response:
        if not request.url.path.endswith("streamsets/recorded"):
            return self.fake.handler(request)
        first = next(v for k, v in parse_qsl(request.url.query.decode()) if k == "webId")
        with self.lock:
            fail = first == self.fake.ids["P02"] and not self.failed
            self.failed |= fail
        if fail:
            assert self.third_answered.wait(WAIT)
            return httpx.Response(503, json={"Errors": ["busy"]})
        response = self.fake.handler(request)
        if first == self.fake.ids["P04"]:
            self.third_answered.set()
        return response


def test_a_retried_request_keeps_its_place_while_later_ones_finish():
    names = [f"P{i:02d}" for i in range(8)]
    fake = FakePI({n: series(4, first=100 * i) for i, n in enumerate(names)})
    fault = SecondFailsAfterThird(fake)
    conn = connector(fake, fault.handler, points_per_request=2, pipeline_depth=3, concurrent_requests=3)
    batches = list(conn.fetch(names, DAY, NEXT))
    assert fault.failed and fault.third_answered.is_set()
    assert points_of(batches) == [names[i:i + 2] for i in range(0, 8, 2)]
    for name in names:
        rows = [(t, v) for b in batches for p, t, v in zip(b.column("point").to_pylist(),
                                                           b.column("ts").cast("int64").to_pylist(),
                                                           b.column("value").to_pylist(), strict=True) if p == name]
        assert rows == fake.truth(name)
    assert sum(r.url.path.endswith("recorded") for r in fake.requests) == 4  # the failed attempt never reached it


def test_the_row_budget_is_shared_by_the_responses_in_flight():
    assert rows_per_request_for(1) == DEFAULT_ROWS_IN_FLIGHT
    assert rows_per_request_for(4) == DEFAULT_ROWS_IN_FLIGHT // 4
    fake = FakePI({n: series(3) for n in "ABCD"})
    for depth in (1, 4):
        conn = connector(fake, points_per_request=4, pipeline_depth=depth, max_count=10_000_000)
        assert conn.rows_per_request == rows_per_request_for(depth)
        fake.requests.clear()
        fetched(conn, list("ABCD"))
        first = next(r for r in fake.requests if r.url.path.endswith("recorded"))
        assert dict(parse_qsl(first.url.query.decode()))["maxCount"] == str(rows_per_request_for(depth) // 4)


def test_an_explicit_row_budget_is_used_as_given():
    fake = FakePI({"A": series(3)})
    s = settings(pipeline_depth=4)
    conn = PiWebApiConnector(s, http.build_client(s, Credentials(), transport=httpx.MockTransport(fake.handler)),
                             rows_per_request=40)
    assert conn.rows_per_request == 40


@pytest.mark.parametrize("depth", [0, 17])
def test_pipeline_depth_is_bounded(depth):
    with pytest.raises(pydantic.ValidationError, match="pipeline_depth"):
        settings(pipeline_depth=depth)


def test_pipeline_depth_has_a_default_that_pipelines():
    assert settings().pipeline_depth > 1
