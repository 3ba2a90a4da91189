"""The lake in a local folder: objects are written to hidden temporary files in their folder, fsynced and
renamed into place, so a crash never leaves half an object under its final name."""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
import uuid
from pathlib import Path
from typing import Any

import psutil

from naia_backfill.errors import LakeError
from naia_backfill.sinks import layout
from naia_backfill.sinks.lake import Lake, ObjectUpload, StoredObject

#: This machine, as it appears in temporary file names.
HOST = re.sub(r"[^A-Za-z0-9]+", "_", socket.gethostname())


class LocalLake(Lake):
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()
        self.url = str(self.root)

    def uri(self, key: str) -> str:
        return str(self.root / key)

    def open_upload(self, key: str) -> ObjectUpload:
        final = self.root / key
        final.parent.mkdir(parents=True, exist_ok=True)
        self.remove_orphans(str(final.parent.relative_to(self.root)))
        return _LocalUpload(final)

    def check(self, writable: bool = True) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            if writable:
                probe = _tmp_name(self.root / ".write-probe")
                probe.write_bytes(b"")
                probe.unlink()
        except OSError as e:
            raise LakeError(f"the folder {self.root} cannot be {'written' if writable else 'created'}: "
                            f"{e.strerror or e}") from e

    def object_size(self, uri: str) -> int | None:
        path = Path(uri.removeprefix("file://"))
        if not path.is_absolute() or not path.is_relative_to(self.root):
            return None
        try:
            return path.stat().st_size if path.is_file() else None
        except OSError:
            return None

    def remove_orphans(self, prefix: str) -> list[str]:
        """Temporary files of writers on this host whose process is gone, anywhere under ``prefix``."""
        removed = []
        base = self.root / prefix
        if not base.is_dir():
            return removed
        for tmp in base.rglob(".*.tmp"):
            if not _owner_alive(tmp.name):
                tmp.unlink(missing_ok=True)
                removed.append(str(tmp))
        return removed

    def list_names(self, prefix: str) -> list[str]:
        folder = self.root / prefix
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if p.is_file() and layout.is_data_object(p.name))

    def delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)

    def list_keys(self, prefix: str, recursive: bool = True) -> list[str]:
        base = self.root / prefix
        if not base.is_dir():
            return []
        found = base.rglob("*.parquet") if recursive else base.glob("*.parquet")
        keys = (p.relative_to(self.root).as_posix() for p in found if p.is_file())
        return sorted(k for k in keys if not any(part.startswith(".") for part in k.split("/")))

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
        self.tmp = _tmp_name(final)
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




def _tmp_name(final: Path) -> Path:
    """``.<name>.<pid>-<host>-<random>.tmp``: whose it is, so a later writer can tell an orphan."""
    return final.with_name(f".{final.name}.{os.getpid()}-{HOST}-{uuid.uuid4().hex[:12]}.tmp")


def _owner_alive(name: str) -> bool:
    """Whether the process that wrote this temporary file may still be writing it."""
    m = re.fullmatch(r"\..+\.(\d+)-([A-Za-z0-9_]+)-[0-9a-f]+\.tmp", name)
    if not m:
        return False  # not ours or the old naming: no writer of this version is on it
    if m.group(2) != HOST:
        return True  # another machine's writer: not ours to judge
    return psutil.pid_exists(int(m.group(1)))
