"""What every source connector offers. Connectors are plain Python: no Dagster import."""

from __future__ import annotations

import abc
import dataclasses
import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Self

import pyarrow as pa

from naia_backfill.errors import NoMatchingPointsError, SourceError, UnknownPointsError
from naia_backfill.schema import SAMPLE_SCHEMA


@dataclasses.dataclass(frozen=True)
class Credentials:
    """Secrets resolved from the environment at run time. Never printed."""

    username: str | None = dataclasses.field(default=None, repr=False)
    password: str | None = dataclasses.field(default=None, repr=False)
    token: str | None = dataclasses.field(default=None, repr=False)


@dataclasses.dataclass(frozen=True)
class Estimate:
    """What fetching ``days`` days of ``points`` points is expected to cost; None where unknown."""

    samples: int | None
    requests: int | None


class Source(abc.ABC):
    """A system that holds history of named points.

    ``fetch`` yields record batches with :data:`naia_backfill.schema.SAMPLE_SCHEMA` for the half-open UTC
    window ``[start, end)``, each point's events in time order and equal timestamps in source order. It
    streams: a batch is yielded as soon as it is parsed, never a whole day at once. Any failure raises
    :class:`SourceError`; a connector never ends a window early without raising.
    """

    #: Shown in messages and metadata, e.g. "PI Web API https://pi/piwebapi (PISRV1)".
    description: str = "source"

    def list_points(self, name_filter: str = "*") -> list[str]:
        """Names of the points matching a wildcard filter (``*``, ``?``), in the source's order."""
        raise SourceError(f"{self.description} cannot list its points; name them with points.names or points.file")

    def missing_points(self, names: Sequence[str]) -> list[str]:
        """The names among ``names`` that do not exist at the source."""
        known = set(self.list_points("*"))
        return [n for n in names if n not in known]

    def resolve(self, names: Sequence[str] | None = None, name_filter: str | None = None) -> list[str]:
        """Explicit names (checked to exist) or the points matching a filter (at least one)."""
        if names is not None:
            missing = self.missing_points(names)
            if missing:
                raise UnknownPointsError(list(missing), self.description)
            return list(names)
        found = self.list_points(name_filter or "*")
        if not found:
            raise NoMatchingPointsError(f"no point at {self.description} matches the filter {name_filter!r}")
        return found

    @abc.abstractmethod
    def fetch(self, points: Sequence[str], start: dt.datetime, end: dt.datetime) -> Iterator[pa.RecordBatch]:
        """Stream the recorded events of ``points`` in ``[start, end)``."""

    def schema(self) -> pa.Schema:
        """The schema of the batches ``fetch`` yields: the sample schema, unless the source copies rows of its
        own shape (a table's columns), which only sinks storing any schema accept."""
        return SAMPLE_SCHEMA

    def day_metadata(self, points: Sequence[str], start: dt.datetime, end: dt.datetime) -> dict[str, str]:
        """Key-value metadata of the window's objects (attributions, coverage); none by default."""
        return {}

    def estimate(self, points: int, days: int) -> Estimate:
        """Expected samples and requests; ``None`` fields where the source cannot tell."""
        return Estimate(samples=None, requests=None)

    def stats(self) -> dict[str, int]:
        """Counters of the last ``fetch`` (e.g. samples dropped and why), added to that day's metadata."""
        return {}

    def close(self) -> None:
        """Release connections."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
