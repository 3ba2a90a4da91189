"""Copy one UTC day of a point set from its source into its sinks. Plain Python, used by the asset."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Sequence

from naia_backfill.connectors.base import Source
from naia_backfill.schema import conform
from naia_backfill.settings import SINKS
from naia_backfill.sinks.base import DayTarget, Sink, SinkResult


def commit_order(sinks: Sequence[Sink]) -> list[Sink]:
    """The sinks in the order they commit (``commit_order`` of their kind in the sink registry): streams
    first, then the lake object (what marks a day as written), then what reads the lake."""
    return sorted(sinks, key=lambda s: SINKS[s.kind].commit_order)


@dataclasses.dataclass
class DayResult:
    day: dt.date
    points: int
    samples: int
    seconds: float
    sinks: list[SinkResult]
    #: The source's counters of the day (``Source.stats``), e.g. ACE IoT's dropped_null and dropped_unconfigured.
    source_stats: dict[str, int] = dataclasses.field(default_factory=dict)
    #: The source's key-value metadata of the day (``Source.day_metadata``; also in the day's objects).
    metadata: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def bytes(self) -> int:
        return sum(s.bytes for s in self.sinks)

    @property
    def uris(self) -> list[str]:
        return [s.uri for s in self.sinks if s.uri]

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else 0.0


def day_window(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1)


def copy_day(source: Source, points: Sequence[str], sinks: Sequence[Sink], target: DayTarget) -> DayResult:
    """Stream the day from the source into every sink; all sinks commit, or the day fails and all abort."""
    started = time.perf_counter()
    ordered = commit_order(sinks)
    writers: list = []
    start, end = day_window(target.day)
    target = dataclasses.replace(target, metadata={**target.metadata, **source.day_metadata(points, start, end)})
    try:
        for sink in ordered:  # one at a time: a sink refusing the day aborts the ones already opened
            writers.append(sink.open_day(target))
        samples = 0
        for batch in source.fetch(points, start, end):
            batch = conform(batch)
            samples += batch.num_rows
            for w in writers:
                w.write(batch)
        results = [w.commit() for w in writers]
    except BaseException:
        for w in writers:
            w.abort()
        raise
    seconds = time.perf_counter() - started
    return DayResult(target.day, len(points), samples, seconds, results, source.stats(), target.metadata)
