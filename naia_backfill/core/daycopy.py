"""Copy one UTC day of a point set from its source into its sinks. Plain Python, used by the asset."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Sequence

from naia_backfill.connectors.base import Source
from naia_backfill.core.day_stats import DayStats
from naia_backfill.schema import SAMPLE_SCHEMA, conform_to
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


def copy_day(
    source: Source, points: Sequence[str], sinks: Sequence[Sink], target: DayTarget, stats: DayStats | None = None
) -> DayResult:
    """Stream the day from the source into every sink; all sinks commit, or the day fails and all abort.
    ``stats`` sees every batch too, so the day's checks need not read it back."""
    started = time.perf_counter()
    ordered = commit_order(sinks)
    writers: list = []
    start, end = day_window(target.day)
    schema = getattr(source, "schema", lambda: SAMPLE_SCHEMA)()  # sources not derived from Source yield samples
    rows = None if schema is SAMPLE_SCHEMA else schema  # a table's own columns: the sinks open with them
    target = dataclasses.replace(target, metadata={**target.metadata, **source.day_metadata(points, start, end)},
                                 schema=rows)
    try:
        for sink in ordered:  # one at a time: a sink refusing the day aborts the ones already opened
            writers.append(sink.open_day(target))
        samples = 0
        batches = source.fetch(points, start, end)
        try:
            for batch in batches:
                batch = conform_to(batch, schema)
                samples += batch.num_rows
                for w in writers:
                    w.write(batch)
                if stats is not None:
                    stats.add(batch)
        finally:  # a source stopped early (a failing sink, a cancelled run) lets go of its connection now
            getattr(batches, "close", lambda: None)()
        results = [w.commit() for w in writers]
    except BaseException:
        for w in writers:
            w.abort()
        raise
    seconds = time.perf_counter() - started
    return DayResult(target.day, len(points), samples, seconds, results, source.stats(), target.metadata)
