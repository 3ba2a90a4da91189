"""Dagster resources: configuration only; clients are built when a run starts.

Every sink kind names one of these resources in :data:`naia_backfill.settings.SINKS`; each has
``sink(settings, lake)``, which builds that kind's writer for one run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_aws.s3 import S3Resource
from dagster_duckdb import DuckDBResource
from pydantic import Field

from naia_backfill.connectors.base import Credentials
from naia_backfill.sinks.base import Sink
from naia_backfill.sinks.duckdb import CONNECTION_CONFIG
from naia_backfill.sinks.lake import Lake, lake_from_url

DEFAULT_DUCKDB_PATH = "data/naia.duckdb"
DEFAULT_KAFKA = "127.0.0.1:9092"
DEFAULT_QUESTDB_HTTP = "127.0.0.1:9000"


class LakeResource(dg.ConfigurableResource):
    """The Parquet lake: a local folder or ``s3://bucket/prefix`` (credentials from the AWS environment)."""

    url: str | None = Field(default=None, description="Lake root; default $NAIA_LAKE_URL, else ./data/lake.")
    s3: S3Resource = Field(default_factory=S3Resource, description="S3 client settings for s3:// lakes.")

    def lake(self) -> Lake:
        url = self.url or os.environ.get("NAIA_LAKE_URL")
        client = self.s3.get_client() if (url or "").startswith("s3://") else None
        return lake_from_url(url, client)

    def sink(self, settings: Any, lake: Lake | None, point_set: Any = None) -> Sink:
        from naia_backfill.sinks.parquet import ParquetDaySink

        return ParquetDaySink(lake, settings)


class WarehouseResource(DuckDBResource):
    """The DuckDB database of the ``duckdb`` sink (dagster-duckdb's resource: a connection retries while another
    process holds the file; its folder is created on use). Sinks open it briefly, never for a whole run, so
    other runs and readers are not locked out."""

    connection_config: dict[str, Any] = Field(
        default=CONNECTION_CONFIG,
        description="DuckDB settings of the sink's connections: a memory cap and one thread keep a day's insert "
        "(mode: table) small beside the copy; DuckDB spills to <database>.tmp beyond the cap.",
    )

    @contextmanager
    def connect(self) -> Iterator[Any]:
        Path(self.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        with self.get_connection() as conn:
            try:
                yield conn
            finally:
                conn.close()  # also when the body raised: release the file lock now

    def sink(self, settings: Any, lake: Lake | None, point_set: Any = None) -> Sink:
        """The view or table sink; ``point_set`` tells it the layout and columns of the point set's objects."""
        from naia_backfill.sinks.duckdb import build

        parquet = point_set.sink("parquet") if point_set is not None else None
        return build(settings, lake, self.connect, self.database, parquet)


class KafkaResource(dg.ConfigurableResource):
    """Kafka brokers for the backfill topic; default $NAIA_KAFKA_BOOTSTRAP, else 127.0.0.1:9092."""

    bootstrap_servers: str | None = Field(default=None, description="host:port[,host:port]")

    def sink(self, settings: Any, lake: Lake | None, point_set: Any = None) -> Sink:
        from naia_backfill.sinks.kafka import KafkaDaySink

        return KafkaDaySink(settings, self.bootstrap_servers or os.environ.get("NAIA_KAFKA_BOOTSTRAP") or DEFAULT_KAFKA)


class QuestDBResource(dg.ConfigurableResource):
    """QuestDB's HTTP endpoint (ILP over HTTP and REST); default $NAIA_QUESTDB_HTTP, else 127.0.0.1:9000."""

    http_addr: str | None = Field(default=None, description="host:port of QuestDB's HTTP server")

    def sink(self, settings: Any, lake: Lake | None, point_set: Any = None) -> Sink:
        from naia_backfill.sinks.questdb import QuestDBDaySink

        return QuestDBDaySink(settings, self.http_addr or os.environ.get("NAIA_QUESTDB_HTTP") or DEFAULT_QUESTDB_HTTP)


class SourceCredentials(dg.ConfigurableResource):
    """Secrets of one source, each given as ``dg.EnvVar(...)``; never logged."""

    username: str | None = None
    password: str | None = None
    token: str | None = None

    def credentials(self) -> Credentials:
        return Credentials(username=self.username, password=self.password, token=self.token)


class MongoDBResource(dg.ConfigurableResource):
    """Connection strings of the ``mongodb`` sinks, keyed by the environment variable each sink names
    (``uri_env``), each given as ``dg.EnvVar``: Dagster reads them when a run starts and never shows them."""

    uris: dict[str, str] = Field(default_factory=dict, description="uri_env -> connection string (EnvVar).")

    def sink(self, settings: Any, lake: Lake | None, point_set: Any = None) -> Sink:
        from naia_backfill.errors import SinkError
        from naia_backfill.sinks.mongodb import MongoDBDaySink

        uri = self.uris.get(settings.uri_env)
        if not uri:
            raise SinkError(f"the mongodb sink needs a connection string: set the environment variable {settings.uri_env}")
        return MongoDBDaySink(settings, uri)


def mongodb_resource(point_sets: dict[str, Any] | None) -> MongoDBResource:
    """The connection strings every mongodb sink of ``point_sets`` names (NAIA_MONGODB_URI at least)."""
    names = {"NAIA_MONGODB_URI"} | {s.uri_env for ps in (point_sets or {}).values() for s in ps.sinks if s.kind == "mongodb"}
    return MongoDBResource(uris={name: dg.EnvVar(name) for name in sorted(names)})


def sink_resources(lake_url: str | None = None, point_sets: dict[str, Any] | None = None
                   ) -> dict[str, dg.ConfigurableResource]:
    """One resource per name used in :data:`naia_backfill.settings.SINKS`."""
    database = os.environ.get("NAIA_DUCKDB_PATH") or DEFAULT_DUCKDB_PATH
    return {
        "lake": LakeResource(url=lake_url),
        "duckdb": WarehouseResource(database=database),
        "kafka": KafkaResource(),
        "questdb": QuestDBResource(),
        "mongodb": mongodb_resource(point_sets),
    }
