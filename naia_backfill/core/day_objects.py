"""How the checks read a day's objects: a small in-memory DuckDB, and local paths for the objects (an S3
object is downloaded once to a temporary file, then every check of the day reads it locally; reading it over
httpfs instead would fetch it again for each check's query)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any

import duckdb

from naia_backfill.sinks.lake import Lake


@contextlib.contextmanager
def readable(lake: Lake, keys: Sequence[str], select: str | None = None) -> Iterator[dict[str, str]]:
    """Local paths DuckDB can read for ``keys`` (path -> object name); S3 objects are downloaded first. With
    ``select`` (a select list reading the objects back as the canonical columns: a sink that renames columns or
    stores milliseconds), each object is rewritten once into a canonical temporary copy that every check reads."""
    if (not lake.url.startswith("s3://") and select is None) or not keys:
        yield {lake.uri(k): k.rsplit("/", 1)[-1] for k in keys}
        return
    with tempfile.TemporaryDirectory(prefix="naia-validate-") as tmp:
        paths = {}
        for i, key in enumerate(keys):
            path = _download(lake, key, os.path.join(tmp, f"{i}.parquet")) if lake.url.startswith("s3://") else lake.uri(key)
            if select is not None:
                path = _canonical_copy(path, os.path.join(tmp, f"{i}.canonical.parquet"), select)
            paths[path] = key.rsplit("/", 1)[-1]
        yield paths


def _download(lake: Lake, key: str, path: str) -> str:
    s3: Any = lake  # an S3Lake: its boto3 client and bucket
    try:
        s3.client.download_file(s3.bucket, lake.uri(key).removeprefix(f"s3://{s3.bucket}/"), path)
    except Exception as e:  # botocore's errors; reported like an unreadable local file
        raise OSError(f"{lake.uri(key)} cannot be downloaded: {e}") from e
    return path


def _canonical_copy(source: str, target: str, select: str) -> str:
    """``source`` rewritten with the canonical columns (paths are ours or the lake's; quoted as literals, since
    COPY takes no parameters)."""
    quote = lambda text: "'" + text.replace("'", "''") + "'"  # noqa: E731
    with connect() as con:
        con.execute(f"COPY (SELECT {select} FROM read_parquet({quote(source)})) TO {quote(target)} (FORMAT parquet)")
    return target


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB for checks, capped so that checking a large day stays small beside the copy
    (it spills to a temporary folder instead of growing)."""
    return duckdb.connect(config={"threads": 1, "memory_limit": "192MB", "preserve_insertion_order": False})
