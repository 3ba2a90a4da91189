"""Where the Parquet lake lives: a local folder or an S3 bucket (any S3-compatible server).

Both hand out :class:`ObjectUpload` file objects that make an object visible only on ``commit``:
locally a temporary ``.tmp`` file in the same folder is fsynced and renamed into place; on S3 a multipart
upload streams parts of ``part_size`` bytes (bounded memory) and is completed, then the object's size and
ETag are checked against what was sent before the day counts as done.
"""

from __future__ import annotations

import abc
import dataclasses
import datetime as dt
import io
import os
from typing import Any

from naia_backfill.sinks import layout

DEFAULT_LAKE_URL = "./data/lake"
#: An S3 multipart upload of a day older than this, never completed, is abandoned (its writer died).
STALE_UPLOAD_SECONDS = 3600


@dataclasses.dataclass(frozen=True)
class StoredObject:
    uri: str
    size: int


class ObjectUpload(io.RawIOBase):
    """A write-only file whose content becomes the object only when ``commit`` returns."""

    def writable(self) -> bool:
        return True

    @abc.abstractmethod
    def commit(self) -> StoredObject: ...

    @abc.abstractmethod
    def abort(self) -> None: ...


class Lake(abc.ABC):
    url: str

    @abc.abstractmethod
    def open_upload(self, key: str) -> ObjectUpload: ...

    @abc.abstractmethod
    def list_names(self, prefix: str) -> list[str]:
        """Names (last path component) of the objects directly under ``prefix``."""

    @abc.abstractmethod
    def delete(self, key: str) -> None: ...

    @abc.abstractmethod
    def uri(self, key: str) -> str: ...

    @abc.abstractmethod
    def list_days(self, point_set: str) -> dict[dt.date, list[str]]:
        """Each day folder of a point set with the data objects in it."""

    @abc.abstractmethod
    def check(self, writable: bool = True) -> None:
        """Raise :class:`naia_backfill.errors.LakeError` unless the lake can be used (and written)."""

    @abc.abstractmethod
    def object_size(self, uri: str) -> int | None:
        """The size of the object at ``uri`` if it is in this lake and exists, else None."""

    @abc.abstractmethod
    def remove_orphans(self, prefix: str) -> list[str]:
        """Remove what writers that died left under ``prefix`` (temporary files, unfinished uploads);
        returns what was removed."""

    @abc.abstractmethod
    def list_keys(self, prefix: str, recursive: bool = True) -> list[str]:
        """Keys (relative to the lake root) of the visible ``*.parquet`` objects under ``prefix`` (hidden and
        temporary ones never count)."""

    def day_keys(self, layout: Any) -> dict[dt.date, list[str]]:
        """The object keys of a point set (its :class:`~naia_backfill.sinks.layout.Layout`), by day."""
        return layout.days(self.list_keys(layout.listing_prefix()))

    def glob(self, point_set: str | None = None) -> str:
        """A DuckDB ``read_parquet`` pattern for one point set or the whole lake."""
        prefix = layout.point_set_prefix(point_set) if point_set else "*"
        return self.uri(f"{prefix}/*/*.parquet")


def lake_from_url(url: str | None, s3_client: Any = None) -> Lake:
    """A lake for ``url`` (default ``$NAIA_LAKE_URL`` or ./data/lake); S3 uses ``s3_client`` or boto3."""
    url = url or os.environ.get("NAIA_LAKE_URL") or DEFAULT_LAKE_URL
    if url.startswith("s3://"):
        from naia_backfill.sinks.lake_s3 import S3Lake

        if s3_client is None:
            import boto3

            s3_client = boto3.client("s3")
        return S3Lake(url, s3_client)
    if "://" in url and not url.startswith("file://"):
        raise ValueError(f"unsupported lake URL {url!r}: use a local folder, file:///path or s3://bucket/prefix")
    from naia_backfill.sinks.lake_local import LocalLake

    return LocalLake(url.removeprefix("file://"))


def __getattr__(name: str) -> Any:
    """``LocalLake`` and ``S3Lake`` live in their own modules; importing them from here keeps working."""
    if name == "LocalLake":
        from naia_backfill.sinks.lake_local import LocalLake

        return LocalLake
    if name == "S3Lake":
        from naia_backfill.sinks.lake_s3 import S3Lake

        return S3Lake
    raise AttributeError(name)
