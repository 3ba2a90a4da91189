"""OrderedPipeline: results in queue order, at most ``depth`` results alive, errors at their turn, clean stops."""

from __future__ import annotations

import threading

import pytest

from naia_backfill.connectors.pi_web_api_pipeline import OrderedPipeline

WAIT = 30  # seconds a test waits for threads before it fails (never reached when the code is right)


class Tracker:
    """Counts results that exist: a task's result from its start until the consumer is done with it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.alive = 0
        self.most = 0
        self.started: list[int] = []

    def start(self, task: int) -> None:
        with self.lock:
            self.alive += 1
            self.most = max(self.most, self.alive)
            self.started.append(task)

    def done(self) -> None:
        with self.lock:
            self.alive -= 1


def test_results_come_in_queue_order_when_later_tasks_finish_first():
    finished: list[int] = []
    released = {i: threading.Event() for i in range(4)}

    def work(task: int) -> int:
        if task < 3:  # task 0 waits for 1, 1 for 2, 2 for 3: they finish in reverse order
            assert released[task + 1].wait(WAIT)
        finished.append(task)
        released[task].set()
        return task * 10

    pipeline = OrderedPipeline(work, depth=4)
    pipeline.extend(range(4))
    assert list(pipeline) == [0, 10, 20, 30]
    assert finished == [3, 2, 1, 0]


@pytest.mark.parametrize("depth", [1, 2, 3, 5])
def test_at_most_depth_results_exist_and_depth_tasks_do_run_at_once(depth):
    tracker = Tracker()
    together = threading.Barrier(depth, timeout=WAIT)  # breaks unless `depth` tasks run at the same time

    def work(task: int) -> int:
        tracker.start(task)
        if task < depth and depth > 1:
            together.wait()
        return task

    pipeline = OrderedPipeline(work, depth=depth)
    pipeline.extend(range(20))
    got = []
    for result in pipeline:
        got.append(result)
        tracker.done()  # the consumer is finished with this result before it asks for the next
    assert got == list(range(20))
    assert tracker.most == depth


def test_depth_one_runs_inline_and_never_ahead_of_the_consumer():
    consumer = threading.get_ident()
    seen: list[tuple[str, int]] = []

    def work(task: int) -> int:
        assert threading.get_ident() == consumer
        seen.append(("run", task))
        return task

    pipeline = OrderedPipeline(work, depth=1)
    pipeline.extend(range(3))
    for result in pipeline:
        seen.append(("took", result))
    assert seen == [("run", 0), ("took", 0), ("run", 1), ("took", 1), ("run", 2), ("took", 2)]


def test_tasks_queued_while_iterating_run_after_the_queued_ones_in_order():
    pipeline = OrderedPipeline(lambda task: task, depth=3)
    pipeline.extend(["a", "b"])
    got = []
    for result in pipeline:
        got.append(result)
        if len(result) < 3:  # each result queues its continuation, as a stream's next page is
            pipeline.extend([result + "+"])
    assert got == ["a", "b", "a+", "b+", "a++", "b++"]


def test_an_error_is_raised_at_its_turn_and_later_tasks_are_dropped():
    tracker = Tracker()

    def work(task: int) -> int:
        tracker.start(task)
        if task == 2:
            raise ValueError("task 2 failed")
        return task

    pipeline = OrderedPipeline(work, depth=2)
    pipeline.extend(range(10))
    got = []
    with pytest.raises(ValueError, match="task 2 failed"):
        for result in pipeline:
            got.append(result)
    assert got == [0, 1]
    assert max(tracker.started) <= 3  # at most `depth` tasks past the last one taken ever started


def test_stopping_early_waits_for_running_tasks_and_starts_no_more():
    tracker = Tracker()
    names_before = {t.name for t in threading.enumerate()}

    def work(task: int) -> int:
        tracker.start(task)
        return task

    pipeline = OrderedPipeline(work, depth=3, name="test-stop")
    pipeline.extend(range(100))
    results = iter(pipeline)
    assert next(results) == 0
    results.close()  # what a consumer that stops iterating (or fails) does to the generator
    assert len(tracker.started) <= 4
    assert not {t.name for t in threading.enumerate()} - names_before  # the worker threads are gone


def test_depth_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        OrderedPipeline(lambda task: task, depth=0)
