"""The staging area of a forward-collected source: observations kept in the lake until their UTC day is over.

A source without history (WAQI serves only each station's latest reading) is polled while the day is current;
each observation becomes one small JSON object, keyed by station and observation instant::

    <lake>/_staging/<kind>/<source>/date=<YYYY-MM-DD>/<uid>_<HHMMSS>.json   one observation (UTC day and time)
    <lake>/_staging/<kind>/<source>/stations/<uid>.json                    what collection learned of a station

``<source>`` is the source's address (``api_waqi_info_443``): point sets reading the same stations of one API
share their observations, and a connector finds them from its settings alone.

The lake is the one store every deployment shares (a folder on one machine, an S3 bucket that every
Kubernetes pod reaches), so a poll in one pod and the day's materialization in another see the same staging
area. Keys depend only on (source, station, observation instant), and an observation is only ever created,
never overwritten (a hard link locally, ``If-None-Match: *`` on S3): polling the same reading again changes
nothing. Staging objects are JSON under ``_staging/``, so no ``*.parquet`` glob and no day listing of the lake
ever sees them.
"""

from __future__ import annotations

import abc
import datetime as dt
import os
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import orjson

from naia_backfill.errors import LakeError

ROOT = "_staging"
DEFAULT_LAKE_URL = "./data/lake"
_OBSERVATION_RE = re.compile(r"^(-?\d+)_(\d{6})\.json$")


class Objects(abc.ABC):
    """The few object operations staging needs, on a folder or an S3 prefix. Keys use ``/``."""

    url: str

    @abc.abstractmethod
    def put_new(self, key: str, data: bytes) -> bool:
        """Create ``key`` with ``data`` unless it exists; True if this call created it."""

    @abc.abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Create or replace ``key`` atomically."""

    @abc.abstractmethod
    def get(self, key: str) -> bytes | None:
        """The object's bytes, None if it does not exist."""

    @abc.abstractmethod
    def names(self, prefix: str) -> list[str]:
        """Names of the objects directly under the folder ``prefix``, sorted."""

    @abc.abstractmethod
    def folders(self, prefix: str) -> list[str]:
        """Names of the folders directly under ``prefix``, sorted."""

    def get_many(self, keys: list[str]) -> list[bytes | None]:
        return [self.get(k) for k in keys]


class LocalObjects(Objects):
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()
        self.url = str(self.root)

    def _write_tmp(self, final: Path, data: bytes) -> Path:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return tmp

    def put_new(self, key: str, data: bytes) -> bool:
        final = self.root / key
        if final.exists():
            return False
        tmp = self._write_tmp(final, data)
        try:
            os.link(tmp, final)  # fails if another poll created it first: the first observation stays
            return True
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)

    def put(self, key: str, data: bytes) -> None:
        final = self.root / key
        os.replace(self._write_tmp(final, data), final)

    def get(self, key: str) -> bytes | None:
        try:
            return (self.root / key).read_bytes()
        except FileNotFoundError:
            return None

    def names(self, prefix: str) -> list[str]:
        folder = self.root / prefix
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))

    def folders(self, prefix: str) -> list[str]:
        folder = self.root / prefix
        return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


class S3Objects(Objects):
    """``s3://bucket/prefix`` through a boto3 client (credentials and endpoint from the AWS environment)."""

    def __init__(self, url: str, client: Any) -> None:
        parsed = urlparse(url)
        self.url, self.bucket, self.prefix = url.rstrip("/"), parsed.netloc, parsed.path.strip("/")
        self.client = client

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _fail(self, what: str, e: Exception) -> LakeError:
        code = getattr(e, "response", {}).get("Error", {}).get("Code", "")
        return LakeError(f"staging area s3://{self.bucket}/{self.prefix}: {what} failed ({code or type(e).__name__}): {e}")

    def put_new(self, key: str, data: bytes) -> bool:
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, IfNoneMatch="*")
            return True
        except Exception as e:
            code = getattr(e, "response", {}).get("Error", {}).get("Code", "")
            if code in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                return False
            raise self._fail(f"writing {key}", e) from e

    def put(self, key: str, data: bytes) -> None:
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
        except Exception as e:
            raise self._fail(f"writing {key}", e) from e

    def get(self, key: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except Exception as e:
            if getattr(e, "response", {}).get("Error", {}).get("Code", "") in ("NoSuchKey", "404"):
                return None
            raise self._fail(f"reading {key}", e) from e

    def get_many(self, keys: list[str]) -> list[bytes | None]:
        # A day is a few thousand small objects: read them eight at a time instead of one after another.
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="staging-read") as pool:
            return list(pool.map(self.get, keys))

    def _list(self, prefix: str) -> tuple[list[str], list[str]]:
        base = self._key(prefix).rstrip("/") + "/"
        names, folders = [], []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=base, Delimiter="/"):
                names += [o["Key"][len(base):] for o in page.get("Contents", [])]
                folders += [p["Prefix"][len(base):].rstrip("/") for p in page.get("CommonPrefixes", [])]
        except Exception as e:
            raise self._fail(f"listing {prefix}", e) from e
        return sorted(names), sorted(folders)

    def names(self, prefix: str) -> list[str]:
        return self._list(prefix)[0]

    def folders(self, prefix: str) -> list[str]:
        return self._list(prefix)[1]


def objects_for(url: str | None = None, s3_client: Any = None) -> Objects:
    """The objects of the lake at ``url`` (default ``$NAIA_LAKE_URL``, else ./data/lake): a folder,
    ``file:///path`` or ``s3://bucket/prefix`` (``s3_client`` or a boto3 client from the environment)."""
    url = url or os.environ.get("NAIA_LAKE_URL") or DEFAULT_LAKE_URL
    if url.startswith("s3://"):
        if s3_client is None:
            import boto3

            s3_client = boto3.client("s3")
        return S3Objects(url, s3_client)
    if "://" in url and not url.startswith("file://"):
        raise LakeError(f"unsupported lake URL {url!r}: use a local folder, file:///path or s3://bucket/prefix")
    return LocalObjects(url.removeprefix("file://"))


def observation_name(uid: int, at: dt.datetime) -> str:
    return f"{uid}_{at.astimezone(dt.UTC):%H%M%S}.json"


class StagingArea:
    """The staged observations of one source, ``name`` = ``<kind>/<source>`` (see the module docstring)."""

    def __init__(self, objects: Objects, name: str) -> None:
        if not re.fullmatch(r"[a-z0-9_]+/[A-Za-z0-9_.-]+", name):
            raise ValueError(f"invalid staging area name {name!r}")
        self.objects, self.name = objects, name
        self.base = f"{ROOT}/{name}"

    @property
    def url(self) -> str:
        return f"{self.objects.url}/{self.base}"

    def day_prefix(self, day: dt.date) -> str:
        return f"{self.base}/date={day.isoformat()}"

    def stage(self, uid: int, at: dt.datetime, doc: dict[str, Any]) -> bool:
        """Keep one observation of station ``uid`` at instant ``at``; False if it was already staged."""
        at = at.astimezone(dt.UTC)
        key = f"{self.day_prefix(at.date())}/{observation_name(uid, at)}"
        return self.objects.put_new(key, orjson.dumps(doc, option=orjson.OPT_SORT_KEYS))

    def observation_keys(self, day: dt.date) -> list[tuple[int, dt.datetime, str]]:
        """(station uid, observation instant, key) of every observation staged for ``day``."""
        out = []
        for name in self.objects.names(self.day_prefix(day)):
            m = _OBSERVATION_RE.match(name)
            if m:
                t = dt.datetime.strptime(m.group(2), "%H%M%S").time()
                out.append((int(m.group(1)), dt.datetime.combine(day, t, tzinfo=dt.UTC), f"{self.day_prefix(day)}/{name}"))
        return out

    def read_day(self, day: dt.date) -> list[tuple[int, dt.datetime, dict[str, Any]]]:
        """Every observation staged for ``day``: (station uid, instant, the staged document)."""
        found = self.observation_keys(day)
        bodies = self.objects.get_many([k for _, _, k in found])
        return [(uid, at, orjson.loads(body)) for (uid, at, _), body in zip(found, bodies, strict=True) if body]

    def days(self) -> list[dt.date]:
        """The UTC days that have a staging folder."""
        out = []
        for name in self.objects.folders(self.base):
            if name.startswith("date="):
                try:
                    out.append(dt.date.fromisoformat(name[5:]))
                except ValueError:
                    continue
        return out

    def station(self, uid: int) -> dict[str, Any] | None:
        """What collection recorded about a station: name, url, attributions, keys ever reported."""
        body = self.objects.get(f"{self.base}/stations/{uid}.json")
        return orjson.loads(body) if body else None

    def save_station(self, uid: int, info: dict[str, Any]) -> None:
        self.objects.put(f"{self.base}/stations/{uid}.json", orjson.dumps(info, option=orjson.OPT_SORT_KEYS))
