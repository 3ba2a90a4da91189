"""DuckDB connections that can read the lake wherever it is: httpfs loaded offline, an S3 secret from the environment.

DuckDB reads ``s3://`` through its httpfs extension. It is loaded from the file the PyPI package
``duckdb-extension-httpfs`` ships (same version as duckdb), never downloaded. Credentials come from the standard
AWS chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``, shared config files, roles) and
the endpoint and region from the lake's boto3 client (so ``AWS_ENDPOINT_URL`` and ``AWS_REGION`` apply, as for
the uploads). They become a *temporary* DuckDB secret, created on every connection: it lives in that
connection's memory only, never in the database file, a view's SQL or a log.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import duckdb

from naia_backfill.errors import SinkConfigError
from naia_backfill.sinks.lake import Lake

HTTPFS_PACKAGE = "duckdb-extension-httpfs"
SECRET_NAME = "naia_lake"


def is_s3(lake: Lake | str | None) -> bool:
    url = lake if isinstance(lake, str) or lake is None else lake.url
    return (url or "").startswith("s3://")


def httpfs_file() -> Path:
    """The httpfs extension file shipped for the installed duckdb, or a SinkConfigError saying what to install."""
    version = duckdb.__version__
    hint = f"install it with: pip install '{HTTPFS_PACKAGE}=={version}'"
    spec = importlib.util.find_spec("duckdb_extension_httpfs")
    if spec is None or not spec.submodule_search_locations:
        raise SinkConfigError(f"reading an s3:// lake with DuckDB needs the httpfs extension package; {hint}")
    root = Path(next(iter(spec.submodule_search_locations)))
    path = root / "extensions" / f"v{version}" / "httpfs.duckdb_extension"
    if not path.is_file():
        shipped = sorted(p.name for p in (root / "extensions").glob("v*")) or ["none"]
        raise SinkConfigError(
            f"{HTTPFS_PACKAGE} ships the extension for DuckDB {', '.join(shipped)}, not for the installed "
            f"{version}; {hint}"
        )
    return path


def _quoted(text: str) -> str:
    # LOAD takes no parameters; the path is the package's own file, quoted as a literal.
    return "'" + text.replace("'", "''") + "'"


def load_httpfs(con: duckdb.DuckDBPyConnection) -> None:
    """Load httpfs into ``con`` from the shipped file (a no-op when it is already loaded)."""
    loaded = con.execute(
        "SELECT count(*) FROM duckdb_extensions() WHERE extension_name = 'httpfs' AND loaded"
    ).fetchone()
    if loaded and loaded[0]:
        return
    con.execute(f"LOAD {_quoted(str(httpfs_file()))}")


def aws_credentials() -> Any:
    """The frozen credentials of the standard AWS chain (key, secret, token), or a SinkConfigError."""
    import botocore.session

    credentials = botocore.session.get_session().get_credentials()
    if credentials is None:
        raise SinkConfigError(
            "no AWS credentials for the s3:// lake: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "(or a profile in ~/.aws)"
        )
    return credentials.get_frozen_credentials()


def s3_settings(client: Any) -> dict[str, str]:
    """The S3 secret's fields for a boto3 client: credentials, its region and endpoint. Secret values included:
    pass them to DuckDB as parameters only, never log or store them."""
    frozen = aws_credentials()
    fields = {"KEY_ID": frozen.access_key, "SECRET": frozen.secret_key,
              "REGION": getattr(client.meta, "region_name", None) or "us-east-1"}
    if frozen.token:
        fields["SESSION_TOKEN"] = frozen.token
    endpoint = urlparse(getattr(client.meta, "endpoint_url", "") or "")
    if endpoint.hostname and not endpoint.hostname.endswith("amazonaws.com"):
        # MinIO, SeaweedFS, R2...: their own host, path-style URLs, TLS as the URL says.
        fields |= {"ENDPOINT": endpoint.netloc, "URL_STYLE": "path", "USE_SSL": str(endpoint.scheme == "https").lower()}
    return fields


def create_s3_secret(con: duckdb.DuckDBPyConnection, client: Any) -> None:
    """A temporary (in-memory) S3 secret on ``con``; values are bound parameters."""
    fields = s3_settings(client)
    names = ", ".join(f"{k} ${k.lower()}" for k in fields)
    con.execute(f"CREATE OR REPLACE TEMPORARY SECRET {SECRET_NAME} (TYPE s3, {names})",
                {k.lower(): v for k, v in fields.items()})


def prepare(con: duckdb.DuckDBPyConnection, lake: Lake | None) -> duckdb.DuckDBPyConnection:
    """Make ``con`` able to read ``lake``: nothing to do for a local lake; httpfs and the secret for S3."""
    if lake is not None and is_s3(lake):
        load_httpfs(con)
        create_s3_secret(con, lake.client)  # type: ignore[attr-defined]
    return con


def check_lake_access(con: duckdb.DuckDBPyConnection, lake: Lake, pattern: str) -> None:
    """List ``pattern`` through DuckDB itself (one LIST request on S3), so that an endpoint, region or
    credentials DuckDB cannot use are found before anything is written."""
    try:
        con.execute("SELECT count(*) FROM glob(?)", [pattern]).fetchone()
    except duckdb.Error as e:
        raise SinkConfigError(f"DuckDB cannot list the lake {lake.url}: {e}") from e


def connect_warehouse(
    database: str | None = None, lake_url: str | None = None, read_only: bool = False
) -> duckdb.DuckDBPyConnection:
    """A connection to the warehouse file (default ``$NAIA_DUCKDB_PATH`` or ./data/naia.duckdb) that can query
    its views over the lake (default ``$NAIA_LAKE_URL``): for notebooks and scripts over an S3 lake."""
    import os

    from naia_backfill.sinks.lake import lake_from_url

    path = database or os.environ.get("NAIA_DUCKDB_PATH") or "data/naia.duckdb"
    con = duckdb.connect(path, read_only=read_only)
    try:
        return prepare(con, lake_from_url(lake_url))
    except BaseException:
        con.close()
        raise
