"""The sources a point set can read, one settings model per kind, and the source registry.

Adding a source: its settings model here, its connector module in :mod:`naia_backfill.connectors`, and one
:data:`SOURCES` entry naming both. The connector is named by import path so that loading point sets
imports no client library.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import zoneinfo
from typing import Annotated, Any, Literal, Union

from pydantic import Field, StrictBool, StrictFloat, StrictInt, model_validator

from naia_backfill.settings.models import ENV_RE, Auth, HttpSourceBase, Model, NoAuth, RateLimit, SourceBase


class SyntheticSource(SourceBase):
    """Deterministic generated history: numeric, digital and string points with system states,
    bad values and runs of equal timestamps. For demos, tests and benchmarks."""

    kind: Literal["synthetic"]
    points: int = Field(default=100, ge=1, le=1_000_000, description="How many points the source offers.")
    interval_seconds: float = Field(default=60.0, gt=0, le=86_400, description="Sample interval of every point.")
    seed: int = Field(default=0, ge=0, description="Changes every value; same seed, same data.")
    prefix: str = Field(default="SYN", pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$", description="Point name prefix.")


class PiWebApiSource(HttpSourceBase):
    """An AVEVA/OSIsoft PI Web API; recorded values of PI points on one data server."""

    kind: Literal["pi_web_api"]
    data_server: str = Field(description="Name of the PI Data Archive (data server) holding the points.")
    auth: Auth = Field(default_factory=lambda: NoAuth(kind="none"))
    max_count: int = Field(default=150_000, ge=1, le=10_000_000, description="maxCount per request and stream.")
    points_per_request: int = Field(default=50, ge=1, le=5000, description="Streams per streamsets request.")
    pipeline_depth: int = Field(
        default=3, ge=1, le=16,
        description="Responses held at once, each downloading, parsed or being written: with 3 the next request is "
        "in flight while the previous response parses and the one before is written. The default row budget per "
        "request is divided by it. 1 reads strictly one request after another.",
    )
    concurrent_requests: int = Field(
        default=1, ge=1, le=16,
        description="Requests sent at the same time (at most pipeline_depth). Raise it for a PI Web API that answers "
        "several requests in parallel; 1 keeps a server that works on one at a time busy without contention.",
    )


#: An ACE IoT site name as it appears in keys and asset names: no '/', not hidden.
SITE_RE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"


class AceIotSource(HttpSourceBase):
    """An ACE IoT API (ACE Cloud, seeds 001/002): raw samples of a site's points, read page by page from
    ``/sites/{site}/timeseries/paginated`` with a bearer token. ``sites`` (a list, or ``"*"`` for every site
    the token sees) makes one point set per site when the file loads, named ``<name>_<site>``."""

    kind: Literal["ace_iot"]
    auth: Auth = Field(default_factory=lambda: NoAuth(kind="none"), description="ACE wants {kind: bearer, token_env}.")
    site: str | None = Field(default=None, pattern=SITE_RE, description="The site whose points are read.")
    sites: list[Annotated[str, Field(pattern=SITE_RE)]] | Literal["*"] | None = Field(
        default=None, description='Several sites: one point set (asset) per site; "*" lists them when the file loads.'
    )
    page_size: int = Field(default=10_000, ge=1, le=500_000, description="Samples per time-series page.")
    list_page_size: int = Field(default=500, ge=1, le=10_000, description="per_page of the site and point lists.")
    points_from: Literal["configured", "all"] = Field(
        default="configured", description="What points.name_filter matches: the site's configured (collected) "
        "points, or every point it lists.",
    )
    rate_limit: RateLimit | None = Field(
        default_factory=lambda: RateLimit(requests=50, per_seconds=60.0),
        description="Client-side request-rate limit, shared by every point set reading this server.",
    )

    @model_validator(mode="after")
    def _one_site_setting(self) -> AceIotSource:
        if (self.site is None) == (self.sites is None):
            raise ValueError("give exactly one of site, sites")
        if isinstance(self.sites, list):
            if not self.sites:
                raise ValueError("sites must not be empty")
            dupes = sorted({s for s in self.sites if self.sites.count(s) > 1})
            if dupes:
                raise ValueError(f"site listed twice: {', '.join(dupes)}")
        return self

    def default_pool(self) -> str:
        """One pool per site: sites backfill in parallel (sharing the server's rate limit), a site's runs queue."""
        suffix = re.sub(r"[^A-Za-z0-9]+", "_", self.site).strip("_").lower() if self.site else ""
        return super().default_pool() + (f"_{suffix}" if suffix else "")


#: How often forward collection may poll: divisors of an hour, so every hour is polled at the same minutes.
POLL_MINUTES = (5, 10, 15, 20, 30, 60)


class WaqiSource(HttpSourceBase):
    """The World Air Quality Index API (aqicn.org, seed 004): each station's latest hourly reading. The API keeps
    no history, so a WAQI point set is collected forward: its ``<name>_collect`` schedule polls every station
    and stages each observation in the lake; a day is materialized from what was staged once it is over.
    Points are ``<station uid>/<key>`` (``aqi`` and each ``iaqi`` key)."""

    kind: Literal["waqi"]
    base_url: str = Field(default="https://api.waqi.info", description="Root URL of the API.")
    token_env: str = Field(pattern=ENV_RE, description="Environment variable holding the API token (sent as ?token=).")
    uids: list[int] | None = Field(default=None, min_length=1, description="Station uids (may be negative).")
    bounds: tuple[float, float, float, float] | None = Field(
        default=None, description="Stations inside the box [lat1, lng1, lat2, lng2], listed when a run starts."
    )
    keyword: str | None = Field(default=None, min_length=1, description="Stations found by /search/?keyword=.")
    poll_minutes: int = Field(
        default=15, description="Minutes between polls of the collect schedule (5, 10, 15, 20, 30 or 60).",
    )
    rate_limit: RateLimit | None = Field(
        default_factory=lambda: RateLimit(requests=1000, per_seconds=60.0),
        description="WAQI's quota: 1000 requests a minute, shared by every request to this API.",
    )
    timeout_seconds: float = Field(default=30.0, gt=0, description="Per-request timeout.")

    @model_validator(mode="after")
    def _one_station_selection(self) -> WaqiSource:
        given = [k for k in ("uids", "bounds", "keyword") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of uids, bounds, keyword (got {given or 'none'})")
        if self.uids is not None and len(set(self.uids)) != len(self.uids):
            raise ValueError("a station uid is listed twice")
        if self.poll_minutes not in POLL_MINUTES:
            raise ValueError(f"poll_minutes must be one of {POLL_MINUTES}")
        return self


#: A table name as PostgreSQL reads it: ``name`` or ``schema.name``, each part plain or a "quoted identifier".
PG_TABLE_RE = r'^(?:(?:[A-Za-z_][A-Za-z0-9_$]*|"(?:[^"\x00]|"")+")\.)?(?:[A-Za-z_][A-Za-z0-9_$]*|"(?:[^"\x00]|"")+")$'
#: A column as the catalog spells it (exact, case-sensitive); PostgreSQL keeps 63 bytes of a name.
PgColumnName = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[^\x00]+$")]
PG_OPS = ("=", "!=", ">", "<", ">=", "<=", "LIKE", "ILIKE", "IS NULL", "IS NOT NULL")


class PgFilter(Model):
    """One condition a row must meet, ``column op value``. The value is always sent as a bound parameter,
    never written into SQL; ``IS NULL`` and ``IS NOT NULL`` take none."""

    column: PgColumnName
    op: Literal["=", "!=", ">", "<", ">=", "<=", "LIKE", "ILIKE", "IS NULL", "IS NOT NULL"]
    value: StrictBool | StrictInt | StrictFloat | dt.datetime | dt.date | str | None = None

    @model_validator(mode="before")
    @classmethod
    def _op_upper(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("op"), str):
            return {**data, "op": " ".join(data["op"].split()).upper()}
        return data

    @model_validator(mode="after")
    def _value_matches_op(self) -> PgFilter:
        if self.op in ("IS NULL", "IS NOT NULL"):
            if self.value is not None:
                raise ValueError(f"{self.op} takes no value")
        elif self.value is None:
            raise ValueError(f"{self.op} needs a value")
        elif "\x00" in self.text:
            raise ValueError("a filter value cannot contain a NUL character")
        return self

    @property
    def text(self) -> str:
        """The value as PostgreSQL reads it as text (booleans ``true``/``false``, dates in ISO form)."""
        if isinstance(self.value, bool):
            return "true" if self.value else "false"
        if isinstance(self.value, dt.date):
            return self.value.isoformat()
        return str(self.value)


class PostgresSource(SourceBase):
    """A PostgreSQL table (seed 003), read one UTC day of ``timestamp_column`` at a time. ``shape: samples``
    maps rows to the sample schema (a point column and a value column, or one point per column of a wide
    table); ``shape: rows`` copies the rows as they are, with their own columns and types."""

    kind: Literal["postgres"]
    dsn_env: str = Field(pattern=ENV_RE, description="Environment variable holding the libpq DSN (may carry a password).")
    table: str = Field(pattern=PG_TABLE_RE, description='Table or view: name or schema.name; "Quoted" parts kept as is.')
    timestamp_column: PgColumnName = Field(description="timestamptz (or timestamp with timezone) deciding a row's day.")
    timezone: str | None = Field(default=None, description="Zone of a timestamp-without-time-zone column, e.g. UTC.")
    shape: Literal["samples", "rows"] = Field(description="samples: the sample schema; rows: the table as it is.")
    point_column: PgColumnName | None = Field(default=None, description="samples: the column naming the point.")
    value_column: PgColumnName | None = Field(default=None, description="samples: the numeric value column.")
    value_columns: list[PgColumnName] | None = Field(
        default=None, min_length=1, description="samples, wide table: each of these numeric columns is a point.")
    text_column: PgColumnName | None = Field(default=None, description="samples: a text value column.")
    quality_column: PgColumnName | None = Field(default=None, description="samples: a quality column (good or not).")
    good_quality: list[StrictBool | StrictInt | str] | None = Field(
        default=None, min_length=1, description="Values of quality_column meaning good (default: true).")
    key_columns: list[PgColumnName] | None = Field(
        default=None, min_length=1, description="rows: the columns identifying a row (the no_duplicates check).")
    filters: list[PgFilter] = Field(default_factory=list, max_length=5, description="At most 5 conditions, ANDed.")
    batch_rows: int = Field(default=10_000, ge=1, le=1_000_000, description="Rows per batch handed to the sinks.")

    @model_validator(mode="after")
    def _shape_columns(self) -> PostgresSource:
        samples_only = ("point_column", "value_column", "value_columns", "text_column", "quality_column", "good_quality")
        if self.shape == "rows":
            given = [k for k in samples_only if getattr(self, k) is not None]
            if given:
                raise ValueError(f"shape: rows copies whole rows; remove {', '.join(given)} (or use shape: samples)")
        else:
            if self.key_columns is not None:
                raise ValueError("key_columns is for shape: rows (samples are keyed by point and ts)")
            narrow, wide = self.point_column is not None or self.value_column is not None, self.value_columns is not None
            if narrow == wide or (narrow and (self.point_column is None or self.value_column is None)):
                raise ValueError("shape: samples needs point_column and value_column, or value_columns (a wide table)")
            if wide and self.text_column is not None:
                raise ValueError("text_column needs point_column (a wide table's points are its value_columns)")
            if wide and len(set(self.value_columns or [])) != len(self.value_columns or []):
                raise ValueError("a column is listed twice in value_columns")
        if self.good_quality is not None and self.quality_column is None:
            raise ValueError("good_quality needs quality_column")
        if self.timezone is not None:
            try:
                zoneinfo.ZoneInfo(self.timezone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"timezone {self.timezone!r} is not a known time zone (e.g. UTC, Europe/Paris)") from None
        return self

    def default_pool(self) -> str:
        """One pool per DSN variable: point sets reading one database queue behind each other."""
        return f"naia_postgres_{self.dsn_env.lower()}"


@dataclasses.dataclass(frozen=True)
class SourceKind:
    """A source kind: its settings model and the ``module:function`` building its connector from
    (settings, credentials)."""

    settings: type[SourceBase]
    connector: str
    #: ``module:function(settings) -> list[str]`` listing the source's sites, for ``sites: "*"`` (kinds with sites).
    list_sites: str | None = None


SOURCES: dict[str, SourceKind] = {
    "synthetic": SourceKind(SyntheticSource, "naia_backfill.connectors.synthetic:build"),
    "pi_web_api": SourceKind(PiWebApiSource, "naia_backfill.connectors.pi_web_api:build"),
    "ace_iot": SourceKind(
        AceIotSource, "naia_backfill.connectors.ace_iot:build",
        list_sites="naia_backfill.connectors.ace_iot_sites:list_sites",
    ),
    "waqi": SourceKind(WaqiSource, "naia_backfill.connectors.waqi:build"),
    "postgres": SourceKind(PostgresSource, "naia_backfill.connectors.postgres:build"),
}

#: Any source's settings, told apart by ``kind``.
SourceSettings = Annotated[Union[tuple(k.settings for k in SOURCES.values())], Field(discriminator="kind")]  # noqa: UP007
