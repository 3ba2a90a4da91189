"""The lake in an S3 bucket (any S3-compatible server): multipart uploads in bounded memory, visible only once
completed, verified by size and ETag before a day counts as done."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from typing import Any
from urllib.parse import urlparse

from naia_backfill.errors import LakeError, SinkError
from naia_backfill.sinks import layout
from naia_backfill.sinks.lake import STALE_UPLOAD_SECONDS, Lake, ObjectUpload, StoredObject


def _s3_code(e: Exception) -> str:
    return str(getattr(e, "response", {}).get("Error", {}).get("Code", ""))


def _s3_error(e: Exception, bucket: str) -> SinkError:
    code = _s3_code(e)
    if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"):
        return SinkError(f"S3 refused the credentials for bucket {bucket!r} ({code}): check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY")
    if code in ("NoSuchBucket", "404"):
        return SinkError(f"S3 bucket {bucket!r} does not exist at the configured endpoint")
    name = type(e).__name__
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        return SinkError(f"no S3 credentials for bucket {bucket!r}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    if name in ("EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError"):
        return SinkError(f"cannot reach the S3 endpoint for bucket {bucket!r} ({name}): check AWS_ENDPOINT_URL")
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

    def check(self, writable: bool = True) -> None:
        try:
            self.check_bucket()
        except SinkError as e:
            raise LakeError(str(e)) from e

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
        self.remove_orphans(key)
        return _S3Upload(self, self._key(key))

    def object_size(self, uri: str) -> int | None:
        if not uri.startswith(f"s3://{self.bucket}/") or not uri.startswith(self.url + "/"):
            return None
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=uri.removeprefix(f"s3://{self.bucket}/"))
        except Exception as e:
            if _s3_code(e) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise _s3_error(e, self.bucket) from e
        return int(head["ContentLength"])

    def remove_orphans(self, prefix: str) -> list[str]:
        """Abort multipart uploads under ``prefix`` started more than an hour ago and never completed (their
        writer died: a day's upload takes seconds to minutes)."""
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=STALE_UPLOAD_SECONDS)
        removed = []
        try:
            uploads = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=self._key(prefix)).get("Uploads", [])
            for upload in uploads:
                if upload["Initiated"] < cutoff:
                    self.client.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
                    removed.append(f"s3://{self.bucket}/{upload['Key']} (upload {upload['UploadId']})")
        except Exception as e:
            raise _s3_error(e, self.bucket) from e
        return removed

    def _list(self, prefix: str, delimiter: str | None = None) -> list[dict[str, Any]]:
        folder = self._key(prefix).strip("/")
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": f"{folder}/" if folder else ""}
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

    def list_keys(self, prefix: str, recursive: bool = True) -> list[str]:
        keys = []
        root = f"{self.prefix}/" if self.prefix else ""
        for page in self._list(prefix, delimiter=None if recursive else "/"):
            for obj in page.get("Contents", []):
                key = obj["Key"].removeprefix(root)
                if key.endswith(".parquet") and not any(part.startswith(".") for part in key.split("/")):
                    keys.append(key)
        return sorted(keys)

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


