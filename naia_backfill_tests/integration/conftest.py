"""Addresses and credentials of the real servers the integration tier talks to.

The session starts the development servers (Kafka, QuestDB, SeaweedFS S3, PostgreSQL, FerretDB) on 127.0.0.1
when they are not running (:func:`naia_backfill.dev.services.ensure`, the same code as `naia-backfill services
up`) and exports their variables. ``NAIA_SERVICES=external`` uses the variables already exported instead (your
own servers). A missing variable fails the test that needs it: integration tests are never skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import pytest

from naia_backfill.dev.services import ensure

HINT = "run `scripts/services.sh up` (or set NAIA_SERVICES=external and export the variables of your own servers)"


@dataclass(frozen=True)
class ServiceEnv:
    """Typed view of the service variables; each property fails the calling test when its variable is unset."""

    environ: Mapping[str, str]

    def require(self, name: str) -> str:
        value = self.environ.get(name, "").strip()
        if not value:
            pytest.fail(f"{name} is not set: {HINT}", pytrace=False)
        return value

    @property
    def kafka_bootstrap(self) -> str:
        """Kafka bootstrap servers, ``host:port[,host:port]``."""
        return self.require("NAIA_KAFKA_BOOTSTRAP")

    @property
    def questdb_http(self) -> str:
        """QuestDB HTTP ``host:port``: REST ``/exec`` and ILP over HTTP."""
        return self.require("NAIA_QUESTDB_HTTP")

    @property
    def questdb_pg(self) -> str:
        """QuestDB PGWire ``host:port``."""
        return self.require("NAIA_QUESTDB_PG")

    @property
    def questdb_ilp_tcp(self) -> str:
        """QuestDB ILP over TCP ``host:port``."""
        return self.require("NAIA_QUESTDB_ILP_TCP")

    @property
    def s3_endpoint(self) -> str:
        return self.require("AWS_ENDPOINT_URL")

    @property
    def s3_access_key(self) -> str:
        return self.require("AWS_ACCESS_KEY_ID")

    @property
    def s3_secret_key(self) -> str:
        return self.require("AWS_SECRET_ACCESS_KEY")

    @property
    def s3_region(self) -> str:
        return self.require("AWS_REGION")

    @property
    def s3_bucket(self) -> str:
        return self.require("NAIA_S3_BUCKET")

    @property
    def pg_dsn(self) -> str:
        """libpq URI of the PostgreSQL database, e.g. ``postgresql://postgres@127.0.0.1:15432/naia``."""
        return self.require("NAIA_PG_DSN")

    @property
    def mongodb_uri(self) -> str:
        """MongoDB-protocol server (FerretDB), ``mongodb://127.0.0.1:PORT/``."""
        return self.require("NAIA_MONGODB_URI")


@pytest.fixture(scope="session")
def services_env() -> Iterator[dict[str, str]]:
    """The development servers' variables, exported for the session; the servers are started when missing."""
    if os.environ.get("NAIA_SERVICES") == "external":
        yield {}
        return
    variables = ensure()  # idempotent: about a second when everything already runs
    with pytest.MonkeyPatch.context() as patch:
        for key, value in variables.items():
            patch.setenv(key, value)
        yield variables


@pytest.fixture
def service_env(services_env: dict[str, str]) -> ServiceEnv:
    """The service settings from the environment, read when the test runs."""
    return ServiceEnv(dict(os.environ))
