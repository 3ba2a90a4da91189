"""A point set: a source, the points to copy from it, the first day of history and the sinks to write to.

Secrets never appear here: a point set names the environment variables that hold them.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from naia_backfill.errors import PointSetError
from naia_backfill.settings.models import NAME_RE, BasicAuth, BearerAuth, Model
from naia_backfill.settings.sinks import ParquetSink, SinkSettings
from naia_backfill.settings.sources import SourceSettings


class PointsSpec(Model):
    """Exactly one of: an explicit list, a file of names (one per line), or a wildcard filter."""

    names: list[str] | None = Field(default=None, min_length=1, description="Point names.")
    file: str | None = Field(default=None, description="File of point names, relative to the point-set file.")
    name_filter: str | None = Field(default=None, min_length=1, description="Wildcard filter, * and ?.")

    @model_validator(mode="after")
    def _exactly_one(self) -> PointsSpec:
        given = [k for k in ("names", "file", "name_filter") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of names, file, name_filter (got {given or 'none'})")
        if self.names is not None:
            blank = [n for n in self.names if not n.strip()]
            if blank:
                raise ValueError("point names must not be blank")
            dupes = sorted({n for n in self.names if self.names.count(n) > 1})
            if dupes:
                raise ValueError(f"duplicate point names: {', '.join(dupes)}")
        return self

    def matches(self, name: str) -> bool:
        return self.name_filter is not None and fnmatch.fnmatchcase(name.upper(), self.name_filter.upper())


class ValueRange(Model):
    """Values of the points matching ``points`` (a name or a wildcard) must lie in [min, max]."""

    points: str = Field(min_length=1, description="Point name or wildcard (* and ?).")
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bounds(self) -> ValueRange:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class ChecksSpec(Model):
    """Data-quality checks run on every materialized day (Dagster asset checks and `naia-backfill validate`)."""

    max_gap_seconds: float | None = Field(
        default=None, gt=0,
        description="Largest allowed gap between a point's events; default 3x the source's sample interval "
        "where it has one, else unchecked.",
    )
    ranges: list[ValueRange] = Field(default_factory=list, description="Allowed value ranges per point pattern.")


class PointSet(Model):
    """One point set: one daily-partitioned asset."""

    name: str = Field(pattern=NAME_RE, description="Asset name; lower case, digits, underscores.")
    description: str = Field(default="", description="What these points are; shown in the Dagster UI.")
    source: SourceSettings
    points: PointsSpec = Field(default_factory=lambda: PointsSpec(name_filter="*"))
    start_date: dt.date = Field(description="First UTC day of history.")
    end_date: dt.date | None = Field(default=None, description="Last UTC day (inclusive); open-ended if unset.")
    sinks: list[SinkSettings] = Field(default_factory=lambda: [ParquetSink(kind="parquet")], min_length=1)
    chunk_days: int = Field(default=30, ge=1, le=366, description="Days per run of a backfill.")
    tags: dict[str, str] = Field(default_factory=dict, description="Extra Dagster tags of the asset.")
    checks: ChecksSpec = Field(default_factory=ChecksSpec, description="Data-quality checks per day.")
    schedule: Literal["daily", "monthly", "none"] = Field(
        default="daily",
        description="Which schedule keeps this point set current once its schedule is switched on: daily "
        "(the newest complete day, every day) or monthly (the previous month's missing days, on the 1st).",
    )
    path: Path | None = Field(default=None, exclude=True, description="File this point set was read from.")

    @field_validator("sinks", mode="before")
    @classmethod
    def _sink_shorthand(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [{"kind": s} if isinstance(s, str) else s for s in v]
        return v

    @model_validator(mode="after")
    def _check(self) -> PointSet:
        if self.end_date is not None and self.end_date < self.start_date:
            raise ValueError(f"end_date {self.end_date} is before start_date {self.start_date}")
        kinds = [s.kind for s in self.sinks]
        dupes = sorted({k for k in kinds if kinds.count(k) > 1})
        if dupes:
            raise ValueError(f"sink listed twice: {', '.join(dupes)}")
        if "duckdb" in kinds and "parquet" not in kinds:
            raise ValueError("the duckdb sink queries the Parquet lake: add the parquet sink too")
        return self

    def secret_env(self) -> dict[str, str]:
        """The environment variables holding the source's secrets, by credential field
        (``username``/``password`` for basic auth, ``token`` for bearer auth)."""
        auth = getattr(self.source, "auth", None)
        if isinstance(auth, BasicAuth):
            return {"username": auth.username_env, "password": auth.password_env}
        if isinstance(auth, BearerAuth):
            return {"token": auth.token_env}
        return {}

    def sink(self, kind: str) -> Any:
        return next((s for s in self.sinks if s.kind == kind), None)

    def point_names_from_file(self) -> list[str]:
        assert self.points.file is not None
        base = self.path.parent if self.path else Path.cwd()
        path = (base / self.points.file).resolve()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise PointSetError(f"{self.path or self.name}: points.file {path} cannot be read: {e.strerror}") from e
        names = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        if not names:
            raise PointSetError(f"{self.path or self.name}: points.file {path} holds no point names")
        return list(dict.fromkeys(names))


