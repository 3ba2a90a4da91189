"""Where the Parquet lake lives: a local folder or an S3 bucket (any S3-compatible server).

Both hand out :class:`ObjectUpload` file objects that make an object visible only on ``commit``:
locally a temporary ``.tmp`` file in the same folder is fsynced and renamed into place; on S3 a multipart
upload streams parts of ``part_size`` bytes (bounded memory) and is completed, then the object's size and
ETag are checked against what was sent before the day counts as done.
"""

from __future__ import annotations

import abc
import base64
import dataclasses
import datetime as dt
import hashlib
import io
import os
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from naia_backfill.errors import SinkError
from naia_backfill.sinks import layout

DEFAULT_LAKE_URL = "./data/lake"
STALE_TMP_SECONDS = 6 * 3600


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

    def glob(self, point_set: str | None = None) -> str:
        """A DuckDB ``read_parquet`` pattern for one point set or the whole lake."""
        prefix = layout.point_set_prefix(point_set) if point_set else "*"
        return self.uri(f"{prefix}/*/*.parquet")


class LocalLake(Lake):
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()
        self.url = str(self.root)

    def uri(self, key: str) -> str:
        return str(self.root / key)

    def open_upload(self, key: str) -> ObjectUpload:
        final = self.root / key
        final.parent.mkdir(parents=True, exist_ok=True)
        self._remove_stale_tmp(final.parent)
        return _LocalUpload(final)

    @staticmethod
    def _remove_stale_tmp(folder: Path) -> None:
        cutoff = time.time() - STALE_TMP_SECONDS
        for p in folder.glob(".*.tmp"):
            try:
                if p.stat().st_mtime < cutoff:
                    p.unlink()
            except FileNotFoundError:
                pass

    def list_names(self, prefix: str) -> list[str]:
        folder = self.root / prefix
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if p.is_file() and layout.is_data_object(p.name))

    def delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)

    def list_days(self, point_set: str) -> dict[dt.date, list[str]]:
        base = self.root / layout.point_set_prefix(point_set)
        days: dict[dt.date, list[str]] = {}
        if base.is_dir():
            for folder in base.iterdir():
                day = layout.parse_day(folder.name)
                if day is not None:
                    names = self.list_names(f"{base.name}/{folder.name}")
                    if names:
                        days[day] = names
        return dict(sorted(days.items()))


class _LocalUpload(ObjectUpload):
    def __init__(self, final: Path) -> None:
        super().__init__()
        self.final = final
        self.tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
        self._f = open(self.tmp, "wb")
        self._size = 0

    def write(self, b: Any) -> int:
        n = self._f.write(b)
        self._size += n
        return n

    def tell(self) -> int:
        return self._size

    def commit(self) -> StoredObject:
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        os.replace(self.tmp, self.final)
        dir_fd = os.open(self.final.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        super().close()
        return StoredObject(uri=str(self.final), size=self._size)

    def abort(self) -> None:
        try:
            self._f.close()
        finally:
            self.tmp.unlink(missing_ok=True)
            super().close()

    def close(self) -> None:
        # pyarrow closes the file it wrote to; the upload stays pending until commit or abort.
        pass


def _s3_error(e: Exception, bucket: str) -> SinkError:
    code = getattr(e, "response", {}).get("Error", {}).get("Code", "")
    if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"):
        return SinkError(f"S3 refused the credentials for bucket {bucket!r} ({code}): check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY")
    if code in ("NoSuchBucket", "404"):
        return SinkError(f"S3 bucket {bucket!r} does not exist at the configured endpoint")
    return SinkError(f"S3 request to bucket {bucket!r} failed: {e}")


class S3Lake(Lake):
    """``s3://bucket/prefix``; the client comes from dagster-aws's S3Resource or boto3 (env credentials)."""

    def __init__(self, url: str, client: Any, part_size: int = 8 * 1024 * 1024) -> None:
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ValueError(f"not an s3://bucket/prefix URL: {url!r}")
        self.url = url.rstrip("/")
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self.client = client
        self.part_size = max(5 * 1024 * 1024, part_size)
        self._bucket_checked = False

    def check_bucket(self) -> None:
        """Fail clearly when the bucket is missing or the credentials are refused (some servers would
        otherwise create a bucket on the first write)."""
        if self._bucket_checked:
            return
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except Exception as e:
            raise _s3_error(e, self.bucket) from e
        self._bucket_checked = True

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def open_upload(self, key: str) -> ObjectUpload:
        self.check_bucket()
        return _S3Upload(self, self._key(key))

    def _list(self, prefix: str, delimiter: str | None = None) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self._key(prefix).rstrip("/") + "/"}
        if delimiter:
            kwargs["Delimiter"] = delimiter
        pages = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(**kwargs):
                pages.append(page)
        except Exception as e:  # botocore errors carry the code we turn into a message
            raise _s3_error(e, self.bucket) from e
        return pages

    def list_names(self, prefix: str) -> list[str]:
        names = []
        for page in self._list(prefix, delimiter="/"):
            for obj in page.get("Contents", []):
                name = obj["Key"].rsplit("/", 1)[-1]
                if layout.is_data_object(name):
                    names.append(name)
        return sorted(names)

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as e:
            raise _s3_error(e, self.bucket) from e

    def list_days(self, point_set: str) -> dict[dt.date, list[str]]:
        days: dict[dt.date, list[str]] = {}
        for page in self._list(layout.point_set_prefix(point_set)):
            for obj in page.get("Contents", []):
                parts = obj["Key"].rsplit("/", 2)
                if len(parts) == 3 and layout.is_data_object(parts[2]):
                    day = layout.parse_day(parts[1])
                    if day is not None:
                        days.setdefault(day, []).append(parts[2])
        return {d: sorted(v) for d, v in sorted(days.items())}


class _S3Upload(ObjectUpload):
    def __init__(self, lake: S3Lake, key: str) -> None:
        super().__init__()
        self.lake, self.key = lake, key
        self._buf = bytearray()
        self._parts: list[dict[str, Any]] = []
        self._digests: list[bytes] = []
        self._upload_id: str | None = None
        self._size = 0

    def write(self, b: Any) -> int:
        data = memoryview(b).cast("B")
        self._buf += data
        self._size += len(data)
        while len(self._buf) >= self.lake.part_size:
            self._send_part(bytes(self._buf[: self.lake.part_size]))
            del self._buf[: self.lake.part_size]
        return len(data)

    def tell(self) -> int:
        return self._size

    def _send_part(self, data: bytes) -> None:
        client, bucket = self.lake.client, self.lake.bucket
        try:
            if self._upload_id is None:
                self._upload_id = client.create_multipart_upload(Bucket=bucket, Key=self.key)["UploadId"]
            digest = hashlib.md5(data, usedforsecurity=False).digest()
            number = len(self._parts) + 1
            resp = client.upload_part(
                Bucket=bucket, Key=self.key, UploadId=self._upload_id, PartNumber=number, Body=data,
                ContentMD5=base64.b64encode(digest).decode(),
            )
        except Exception as e:
            raise _s3_error(e, bucket) from e
        self._parts.append({"PartNumber": number, "ETag": resp["ETag"]})
        self._digests.append(digest)

    def commit(self) -> StoredObject:
        client, bucket = self.lake.client, self.lake.bucket
        try:
            if self._upload_id is None:
                data = bytes(self._buf)
                digest = hashlib.md5(data, usedforsecurity=False).digest()
                client.put_object(Bucket=bucket, Key=self.key, Body=data, ContentMD5=base64.b64encode(digest).decode())
                expected = digest.hex()
            else:
                if self._buf:
                    self._send_part(bytes(self._buf))
                    self._buf.clear()
                client.complete_multipart_upload(
                    Bucket=bucket, Key=self.key, UploadId=self._upload_id, MultipartUpload={"Parts": self._parts}
                )
                expected = f"{hashlib.md5(b''.join(self._digests), usedforsecurity=False).hexdigest()}-{len(self._parts)}"
            head = client.head_object(Bucket=bucket, Key=self.key)
        except SinkError:
            raise
        except Exception as e:
            raise _s3_error(e, bucket) from e
        etag = str(head.get("ETag", "")).strip('"')
        if head.get("ContentLength") != self._size or etag != expected:
            raise SinkError(
                f"s3://{bucket}/{self.key} failed verification after upload: size {head.get('ContentLength')} "
                f"(sent {self._size}), ETag {etag} (expected {expected})"
            )
        super().close()
        return StoredObject(uri=f"s3://{bucket}/{self.key}", size=self._size)

    def abort(self) -> None:
        if self._upload_id is not None:
            try:
                self.lake.client.abort_multipart_upload(Bucket=self.lake.bucket, Key=self.key, UploadId=self._upload_id)
            except Exception:
                pass
        self._buf.clear()
        super().close()

    def close(self) -> None:
        pass


def lake_from_url(url: str | None, s3_client: Any = None) -> Lake:
    """A lake for ``url`` (default ``$NAIA_LAKE_URL`` or ./data/lake); S3 uses ``s3_client`` or boto3."""
    url = url or os.environ.get("NAIA_LAKE_URL") or DEFAULT_LAKE_URL
    if url.startswith("s3://"):
        if s3_client is None:
            import boto3

            s3_client = boto3.client("s3")
        return S3Lake(url, s3_client)
    if "://" in url and not url.startswith("file://"):
        raise ValueError(f"unsupported lake URL {url!r}: use a local folder, file:///path or s3://bucket/prefix")
    return LocalLake(url.removeprefix("file://"))
