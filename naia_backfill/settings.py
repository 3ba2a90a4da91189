"""Point sets: typed models of the YAML files in ``point_sets/`` and any file or folder a user adds.

A point set names a source, the points to copy from it, the first day of history, and the sinks to
write to. Secrets never appear here: a point set names the environment variables that hold them.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from naia_backfill.errors import PointSetError

BUNDLED_DIR = Path(__file__).parent / "point_sets"
NAME_RE = r"^[a-z][a-z0-9_]{0,62}$"
ENV_RE = r"^[A-Z_][A-Z0-9_]*$"


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RateLimit(Model):
    """At most ``requests`` requests in any window of ``per_seconds`` seconds, shared by the whole process."""

    requests: int = Field(gt=0, description="Requests allowed per window.")
    per_seconds: float = Field(default=60.0, gt=0, description="Window length in seconds.")

    @property
    def per_second(self) -> float:
        return self.requests / self.per_seconds


class SourceBase(Model):
    pool: str | None = Field(
        default=None,
        description="Dagster concurrency pool shared by every point set reading this source; "
        "defaults to one pool per source kind and address.",
    )
    rate_limit: RateLimit | None = Field(default=None, description="Client-side request-rate limit.")

    def default_pool(self) -> str:
        return f"naia_{self.kind}"  # type: ignore[attr-defined]

    @property
    def pool_name(self) -> str:
        return self.pool or self.default_pool()


class SyntheticSource(SourceBase):
    """Deterministic generated history: numeric, digital and string points with system states,
    bad values and runs of equal timestamps. For demos, tests and benchmarks."""

    kind: Literal["synthetic"]
    points: int = Field(default=100, ge=1, le=1_000_000, description="How many points the source offers.")
    interval_seconds: float = Field(default=60.0, gt=0, le=86_400, description="Sample interval of every point.")
    seed: int = Field(default=0, ge=0, description="Changes every value; same seed, same data.")
    prefix: str = Field(default="SYN", pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$", description="Point name prefix.")


class BasicAuth(Model):
    kind: Literal["basic"]
    username_env: str = Field(pattern=ENV_RE, description="Environment variable holding the user name.")
    password_env: str = Field(pattern=ENV_RE, description="Environment variable holding the password.")


class BearerAuth(Model):
    kind: Literal["bearer"]
    token_env: str = Field(pattern=ENV_RE, description="Environment variable holding the bearer token.")


class NoAuth(Model):
    kind: Literal["none"]


Auth = Annotated[BasicAuth | BearerAuth | NoAuth, Field(discriminator="kind")]


class HttpSourceBase(SourceBase):
    base_url: str = Field(description="Root URL of the API.")
    timeout_seconds: float = Field(default=60.0, gt=0, description="Per-request timeout.")
    max_retries: int = Field(default=6, ge=0, le=50, description="Retries of 429/5xx/timeouts per request.")
    verify_tls: bool = Field(default=True, description="Verify the server certificate.")
    ca_bundle: str | None = Field(default=None, description="Path of a CA bundle to verify the server with.")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not re.match(r"^https?://[^\s/]+", v):
            raise ValueError("must be an http:// or https:// URL")
        return v.rstrip("/")

    def default_pool(self) -> str:
        host = re.sub(r"^https?://", "", self.base_url).split("/")[0]
        return f"naia_{self.kind}_{re.sub(r'[^A-Za-z0-9]+', '_', host)}"  # type: ignore[attr-defined]


class PiWebApiSource(HttpSourceBase):
    """An AVEVA/OSIsoft PI Web API; recorded values of PI points on one data server."""

    kind: Literal["pi_web_api"]
    data_server: str = Field(description="Name of the PI Data Archive (data server) holding the points.")
    auth: Auth = Field(default_factory=lambda: NoAuth(kind="none"))
    max_count: int = Field(default=150_000, ge=1, le=10_000_000, description="maxCount per request and stream.")
    points_per_request: int = Field(default=50, ge=1, le=5000, description="Streams per streamsets request.")


Source = Annotated[SyntheticSource | PiWebApiSource, Field(discriminator="kind")]


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


class ParquetSink(Model):
    kind: Literal["parquet"]
    compression: Literal["zstd", "snappy", "gzip", "lz4", "brotli", "none"] = "zstd"
    compression_level: int | None = Field(default=None, description="Codec level; codec default if unset.")
    row_group_rows: int = Field(default=250_000, ge=1_000, le=10_000_000, description="Rows per row group.")


class DuckDBSink(Model):
    kind: Literal["duckdb"]


class KafkaSink(Model):
    """The backfill topic, kept apart from the realtime topic; a consumer moves both into QuestDB."""

    kind: Literal["kafka"]
    topic: str = Field(default="naia.datapoints.backfill", pattern=r"^[A-Za-z0-9._-]{1,249}$")
    samples_per_message: int = Field(default=1000, ge=1, le=100_000, description="Samples per Kafka message.")
    partitions: int = Field(default=12, ge=1, le=1000, description="Partitions when the topic is created.")


class QuestDBSink(Model):
    """Rows written straight to QuestDB over ILP/HTTP (no Kafka)."""

    kind: Literal["questdb"]
    table: str = Field(default="naia_samples", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,126}$")


Sink = Annotated[ParquetSink | DuckDBSink | KafkaSink | QuestDBSink, Field(discriminator="kind")]


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
    source: Source
    points: PointsSpec = Field(default_factory=lambda: PointsSpec(name_filter="*"))
    start_date: dt.date = Field(description="First UTC day of history.")
    end_date: dt.date | None = Field(default=None, description="Last UTC day (inclusive); open-ended if unset.")
    sinks: list[Sink] = Field(default_factory=lambda: [ParquetSink(kind="parquet")], min_length=1)
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


def _describe(err: ValidationError, path: Path) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"] if not (isinstance(p, str) and p in _UNION_TAGS)) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown field" + (" (secrets belong in environment variables: name them with *_env)"
                                     if re.search(r"pass|secret|token|key", loc, re.I) else "")
        lines.append(f"{path}: field '{loc}': {msg}")
    return "\n".join(lines)


_UNION_TAGS = {"synthetic", "pi_web_api", "basic", "bearer", "none", "parquet", "duckdb", "kafka", "questdb"}


def load_point_set(path: str | os.PathLike[str]) -> PointSet:
    """Read and validate one point-set YAML file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise PointSetError(f"{path}: cannot read: {e.strerror or e}") from e
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise PointSetError(f"{path}: invalid YAML{where}: {getattr(e, 'problem', None) or e}") from e
    if not isinstance(raw, dict):
        raise PointSetError(f"{path}: a point set is a YAML mapping (name, source, points, ...), got {type(raw).__name__}")
    try:
        ps = PointSet.model_validate({**raw, "path": path})
    except ValidationError as e:
        raise PointSetError(_describe(e, path)) from e
    if ps.points.file is not None:
        ps.point_names_from_file()
    return ps


def _yaml_files(location: Path) -> list[Path]:
    if location.is_dir():
        return sorted(p for p in location.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    if location.is_file():
        return [location]
    raise PointSetError(f"{location}: no such point-set file or folder")


def load_point_sets(locations: Iterable[str | os.PathLike[str]] | None = None) -> dict[str, PointSet]:
    """Every point set in the bundled folder plus ``locations`` (files or folders); names must be unique."""
    found: dict[str, PointSet] = {}
    for location in [BUNDLED_DIR, *(Path(p) for p in (locations or []))]:
        for file in _yaml_files(Path(location)):
            ps = load_point_set(file)
            if ps.name in found and found[ps.name].path != ps.path:
                raise PointSetError(f"{file}: point set name {ps.name!r} is already used by {found[ps.name].path}")
            found[ps.name] = ps
    return found


def extra_locations() -> list[str]:
    """Folders or files named by ``NAIA_POINT_SETS`` (separated by the OS path separator)."""
    return [p for p in os.environ.get("NAIA_POINT_SETS", "").split(os.pathsep) if p.strip()]
