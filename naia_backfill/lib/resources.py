"""Dagster resources: configuration only; clients are built when a run starts."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_aws.s3 import S3Resource
from dagster_duckdb import DuckDBResource
from pydantic import Field

from naia_backfill.connectors.base import Credentials
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


class SourceCredentials(dg.ConfigurableResource):
    """Secrets of one source, each given as ``dg.EnvVar(...)``; never logged."""

    username: str | None = None
    password: str | None = None
    token: str | None = None

    def credentials(self) -> Credentials:
        return Credentials(username=self.username, password=self.password, token=self.token)


def duckdb_resource(path: str | None = None) -> DuckDBResource:
    return DuckDBResource(database=path or os.environ.get("NAIA_DUCKDB_PATH") or DEFAULT_DUCKDB_PATH)


def duckdb_connect(resource: DuckDBResource) -> Any:
    """A connect() for the DuckDB sink that creates the database's folder first."""

    @contextmanager
    def connect() -> Any:
        Path(resource.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        with resource.get_connection() as conn:
            yield conn

    return connect


class KafkaResource(dg.ConfigurableResource):
    """Kafka brokers for the backfill topic; default $NAIA_KAFKA_BOOTSTRAP, else 127.0.0.1:9092."""

    bootstrap_servers: str | None = Field(default=None, description="host:port[,host:port]")

    def sink(self, settings: Any) -> Any:
        from naia_backfill.sinks.kafka import KafkaDaySink

        servers = self.bootstrap_servers or os.environ.get("NAIA_KAFKA_BOOTSTRAP") or DEFAULT_KAFKA
        return KafkaDaySink(settings, servers)


class QuestDBResource(dg.ConfigurableResource):
    """QuestDB's HTTP endpoint (ILP over HTTP and REST); default $NAIA_QUESTDB_HTTP, else 127.0.0.1:9000."""

    http_addr: str | None = Field(default=None, description="host:port of QuestDB's HTTP server")

    def sink(self, settings: Any) -> Any:
        from naia_backfill.sinks.questdb import QuestDBDaySink

        return QuestDBDaySink(settings, self.http_addr or os.environ.get("NAIA_QUESTDB_HTTP") or DEFAULT_QUESTDB_HTTP)
