"""A point set: a source, the points to copy from it, the first day of history and the sinks to write to.

Secrets never appear here: a point set names the environment variables that hold them.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from naia_backfill.errors import PointSetError
from naia_backfill.settings.combinations import sink_combination_problems
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
        problems = sink_combination_problems(self.sinks, self.source)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def secret_env(self) -> dict[str, str]:
        """The environment variables holding the source's secrets, by credential field
        (``username``/``password`` for basic auth, ``token`` for bearer auth)."""
        auth = getattr(self.source, "auth", None)
        if isinstance(auth, BasicAuth):
            return {"username": auth.username_env, "password": auth.password_env}
        if isinstance(auth, BearerAuth):
            return {"token": auth.token_env}
        token_env = getattr(self.source, "token_env", None)  # a token sent another way (WAQI: ?token=)
        token_env = token_env or getattr(self.source, "dsn_env", None)  # PostgreSQL: the DSN is the one secret
        return {"token": token_env} if token_env else {}

    def sink(self, kind: str) -> Any:
        return next((s for s in self.sinks if s.kind == kind), None)

    def point_file(self) -> Path:
        """``points.file``, which must lie in the point set's folder (or one named by ``$NAIA_POINT_FILE_DIRS``),
        so a point set cannot read files elsewhere on the machine."""
        assert self.points.file is not None
        base = (self.path.parent if self.path else Path.cwd()).resolve()
        path = (base / self.points.file).resolve()
        allowed = [base, *(Path(d).resolve() for d in os.environ.get("NAIA_POINT_FILE_DIRS", "").split(os.pathsep) if d)]
        if not any(path.is_relative_to(folder) for folder in allowed):
            raise PointSetError(
                f"{self.path or self.name}: points.file must be inside the point set's folder {base} "
                "(or a folder listed in NAIA_POINT_FILE_DIRS)"
            )
        return path

    def point_file_lines(self) -> dict[str, int]:
        """The point names of ``points.file`` (one per line; blank lines and ``#`` comments skipped) and the
        line each is first on."""
        path = self.point_file()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            reason = getattr(e, "strerror", None) or "not UTF-8 text"
            raise PointSetError(f"{self.path or self.name}: points.file {path} cannot be read: {reason}") from e
        lines: dict[str, int] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            name = line.strip()
            if name and not name.startswith("#"):
                lines.setdefault(name, number)
        if not lines:
            raise PointSetError(f"{self.path or self.name}: points.file {path} holds no point names")
        return lines

    def point_names_from_file(self) -> list[str]:
        return list(self.point_file_lines())


