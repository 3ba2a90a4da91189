"""The sinks a point set can write to, one settings model per kind, and the sink registry.

Adding a sink: its settings model here, its writer module in :mod:`naia_backfill.sinks`, and one
:data:`SINKS` entry: the model, the ``module:Class`` of its writer, the Dagster resource that holds its
connection settings, and its commit position. Writers are named by import path so that loading point
sets imports no client library.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Literal, Union

from pydantic import Field

from naia_backfill.settings.models import Model


class ParquetSink(Model):
    """Parquet objects in the lake, one per point set and UTC day."""

    kind: Literal["parquet"]
    compression: Literal["zstd", "snappy", "gzip", "lz4", "brotli", "none"] = "zstd"
    compression_level: int | None = Field(default=None, description="Codec level; codec default if unset.")
    row_group_rows: int = Field(default=250_000, ge=1_000, le=10_000_000, description="Rows per row group.")


class DuckDBSink(Model):
    """A DuckDB view per point set over its Parquet objects."""

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
    "questdb": SinkKind(QuestDBSink, "naia_backfill.sinks.questdb:QuestDBDaySink", "questdb", 1),
    "parquet": SinkKind(ParquetSink, "naia_backfill.sinks.parquet:ParquetDaySink", "lake", 2),
    "duckdb": SinkKind(DuckDBSink, "naia_backfill.sinks.duckdb:DuckDBViewSink", "duckdb", 3, needs_lake=True),
}

#: Any sink's settings, told apart by ``kind``.
SinkSettings = Annotated[Union[tuple(k.settings for k in SINKS.values())], Field(discriminator="kind")]  # noqa: UP007
