"""What every sink offers. Sinks are plain Python: no Dagster import.

A day is written through a :class:`DayWriter`: ``write`` is called with each canonical batch as the
source yields it, then ``commit`` once, which returns only when the day is durably stored (object moved
into place and verified, every Kafka delivery report back, QuestDB flushed). On any error ``abort`` is
called instead and must leave what was stored before the day began untouched, or replaced whole.
"""

from __future__ import annotations

import abc
import dataclasses
import datetime as dt

import pyarrow as pa


@dataclasses.dataclass(frozen=True)
class DayTarget:
    """Which day of which point set a writer stores. ``group`` names a subset of the points (see layout)."""

    point_set: str
    day: dt.date
    run_id: str = ""
    group: str | None = None
    #: Key-value metadata the source gives the day (e.g. WAQI's attributions); the day's objects carry it.
    metadata: dict[str, str] = dataclasses.field(default_factory=dict, hash=False, compare=False)
    #: The rows' schema when it is not the sample schema (a source copying a table's own rows); None: samples.
    schema: pa.Schema | None = dataclasses.field(default=None, hash=False, compare=False)


@dataclasses.dataclass
class SinkResult:
    """What a committed day left in a sink."""

    sink: str
    rows: int = 0
    bytes: int = 0
    uri: str | None = None
    extra: dict[str, object] = dataclasses.field(default_factory=dict)


class DayWriter(abc.ABC):
    @abc.abstractmethod
    def write(self, batch: pa.RecordBatch) -> None:
        """Accept one canonical batch of the day."""

    @abc.abstractmethod
    def commit(self) -> SinkResult:
        """Make the day durable and visible; raise :class:`naia_backfill.errors.SinkError` if it is not."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Discard what this writer wrote; never raises."""


class Sink(abc.ABC):
    kind: str = "sink"

    @abc.abstractmethod
    def open_day(self, target: DayTarget) -> DayWriter:
        """Start writing one day."""

    def close(self) -> None:
        """Release connections."""
