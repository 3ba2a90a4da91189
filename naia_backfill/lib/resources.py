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
