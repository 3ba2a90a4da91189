"""The sinks a point set can write to, one settings model per kind, and the sink registry.

Adding a sink: its settings model here, its writer module in :mod:`naia_backfill.sinks`, and one
:data:`SINKS` entry: the model, the ``module:Class`` of its writer, the Dagster resource that holds its
connection settings, and its commit position. Writers are named by import path so that loading point
sets imports no client library.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from naia_backfill.settings import key_template
from naia_backfill.settings.models import Model


class ParquetSink(Model):
    """Parquet objects in the lake, one per point set and UTC day: by default under
    ``point_set=<name>/date=<day>/`` with the canonical sample schema; ``key_template`` and ``columns`` write
    the layout and columns a lake already has instead (see :mod:`naia_backfill.settings.key_template`)."""

    kind: Literal["parquet"]
    compression: Literal["zstd", "snappy", "gzip", "lz4", "brotli", "none"] = "zstd"
    compression_level: int | None = Field(default=None, description="Codec level; codec default if unset.")
    row_group_rows: int = Field(default=250_000, ge=1_000, le=10_000_000, description="Rows per row group.")
    key_template: str | None = Field(
        default=None, description="Object key of a day, e.g. 'timeseries/{yyyy}/{mm}/{dd}/{site}.parquet'; "
        "default: point_set={point_set}/date={date}/all.parquet.",
    )
    columns: dict[str, str] | None = Field(
        default=None, description="Canonical column -> name written, e.g. {ts: timestamp, point: point_name}: "
        "only these columns, in this order; default: every canonical column as is.",
    )
    constant_columns: dict[str, str] = Field(
        default_factory=dict, description="Extra text columns, the same value on every row, e.g. "
        "{site_name: '{site}'}; placeholders {point_set} and {site}.",
    )
    timestamp_unit: Literal["ns", "us", "ms"] = Field(default="ns", description="Unit of the written ts column.")
    timestamp_as: Literal["timestamp", "int64"] = Field(
        default="timestamp", description="ts as a UTC Parquet timestamp, or as int64 counts of timestamp_unit "
        "since the Unix epoch (e.g. seed 002's INT64 milliseconds).",
    )

    @model_validator(mode="after")
    def _layout(self) -> ParquetSink:
        if self.key_template is not None:
            key_template.check(self.key_template)
        written = list((self.columns or {}).values()) + list(self.constant_columns)
        if self.columns is not None:
            from naia_backfill.schema import COLUMNS

            unknown = sorted(set(self.columns) - set(COLUMNS))
            if unknown:
                raise ValueError(f"columns: unknown canonical column(s) {unknown}; they are {list(COLUMNS)}")
            if not {"point", "ts"} <= set(self.columns):
                raise ValueError("columns must keep point and ts (a sample is a point at a time)")
        blank = [c for c in written if not c.strip()]
        dupes = sorted({c for c in written if written.count(c) > 1})
        if blank or dupes:
            raise ValueError(f"column names must be unique and not blank (got {dupes or blank})")
        for name, value in self.constant_columns.items():
            try:
                key_template.check_text(value, key_template.CONSTANT_PLACEHOLDERS)
            except ValueError as e:
                raise ValueError(f"constant_columns.{name}: {e}") from None
        return self


class DuckDBSink(Model):
    """A DuckDB relation per point set, named after it: a view over its Parquet objects (``mode: view``, the
    default, needs the parquet sink), or a table each day replaces its rows in (``mode: table``)."""

    kind: Literal["duckdb"]
    mode: Literal["view", "table"] = Field(
        default="view",
        description="view: queries read the lake (one copy of the data); table: rows copied into the database, "
        "each day replaced in one transaction, queries independent of the lake.",
    )


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


class MongoDBSink(Model):
    """Documents in a MongoDB collection (any server speaking its wire protocol). ``document: samples``: one
    document per event, ``_id`` = ``<point>|<ts ns>|<seq>``, unique index (point, ts, ts_ns, seq);
    ``document: waqi``: seed 004's readings ``{ts, meta: {station_idx}, aqi, iaqi: {k: {v}}, time}``, unique index
    (meta.station_idx, ts). A re-run of a day writes the same keys again and changes nothing."""

    kind: Literal["mongodb"]
    uri_env: str = Field(
        default="NAIA_MONGODB_URI", pattern=r"^[A-Z_][A-Z0-9_]*$",
        description="Environment variable holding the connection string (it may carry a password).",
    )
    database: str = Field(default="naia", pattern=r"^[A-Za-z0-9_-]{1,63}$", description="Database name.")
    collection: str = Field(default="naia_samples", pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,119}$")
    document: Literal["samples", "waqi"] = Field(default="samples", description="Document shape (see above).")
    batch_documents: int = Field(default=1000, ge=1, le=100_000, description="Documents per insert_many request.")
    rerun: Literal["delete_insert", "replace"] = Field(
        default="delete_insert",
        description="How documents that exist already (a re-run) are written again: deleted by key in bounded "
        "batches and inserted (fastest on FerretDB), or replaced one by one by key (atomic per document: the "
        "choice for MongoDB itself).",
    )
    upsert_batch: int = Field(
        default=50, ge=1, le=1000,
        description="Replacements per update request on a re-run; FerretDB 1.x hangs on more than 100 (1000 "
        "suits MongoDB).",
    )


@dataclasses.dataclass(frozen=True)
class SinkKind:
    """A sink kind. Sinks of a day commit in ascending ``commit_order``: streams first, then the lake object
    (what marks the day as written), then what is derived from the lake (the DuckDB view)."""

    settings: type[Model]
    writer: str
    resource: str
    commit_order: int
    #: Whether it needs the lake (the Parquet sink) beside it.
    needs_lake: bool = False


SINKS: dict[str, SinkKind] = {
    "kafka": SinkKind(KafkaSink, "naia_backfill.sinks.kafka:KafkaDaySink", "kafka", 0),
    "mongodb": SinkKind(MongoDBSink, "naia_backfill.sinks.mongodb:MongoDBDaySink", "mongodb", 0),
    "questdb": SinkKind(QuestDBSink, "naia_backfill.sinks.questdb:QuestDBDaySink", "questdb", 1),
    "parquet": SinkKind(ParquetSink, "naia_backfill.sinks.parquet:ParquetDaySink", "lake", 2),
    "duckdb": SinkKind(DuckDBSink, "naia_backfill.sinks.duckdb:DuckDBViewSink", "duckdb", 3, needs_lake=True),
}

#: Any sink's settings, told apart by ``kind``.
SinkSettings = Annotated[Union[tuple(k.settings for k in SINKS.values())], Field(discriminator="kind")]  # noqa: UP007
