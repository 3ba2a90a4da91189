"""Arrow arrays from numpy buffers, for the PI Web API parser.

Built with ``pa.Array.from_buffers``, never ``pa.array``: pyarrow's ``pa.array`` imports pandas the first time a
process calls it (a second or more), which would land inside the first page a run parses. The numpy way is as
fast for a page's timestamps and faster for the rest (sparse texts, flags that are nearly all equal, a point
name repeated per stream).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

#: Offsets of Arrow's ``string`` type are int32.
MAX_STRING_BYTES = 2**31 - 1


def bitmap(mask: np.ndarray) -> pa.Buffer:
    """Arrow's validity / boolean bit layout (least significant bit first) of a numpy bool array."""
    return pa.py_buffer(np.packbits(mask, bitorder="little"))


def mask(n: int, rows: Sequence[int] | np.ndarray, value: bool) -> np.ndarray:
    """``n`` bools, ``value`` at ``rows`` and the opposite everywhere else."""
    out = np.full(n, not value)
    out[rows] = value
    return out


def bools(values: np.ndarray) -> pa.Array:
    """A non-null boolean array."""
    return pa.Array.from_buffers(pa.bool_(), len(values), [None, bitmap(values)])


def flag(n: int, rows: Sequence[int], value: bool) -> pa.Array:
    """A non-null boolean array that is ``value`` at ``rows`` and the opposite everywhere else."""
    if len(rows):
        return bools(mask(n, rows, value))
    return pa.Array.from_buffers(pa.bool_(), n, [None, pa.py_buffer((b"\x00" if value else b"\xff") * (n + 7 >> 3))])


def fixed(data: np.ndarray, valid: np.ndarray | None, type_: pa.DataType) -> pa.Array:
    """An array of fixed-width numpy ``data``; ``valid`` (None: all) marks the non-null slots."""
    return pa.Array.from_buffers(type_, len(data), [None if valid is None else bitmap(valid), pa.py_buffer(data)])


def indices(rows: np.ndarray | Sequence[int]) -> pa.Array:
    """int64 row numbers, for ``take``."""
    return fixed(np.ascontiguousarray(rows, np.int64), None, pa.int64())


def _lengths(texts: Sequence[str] | Sequence[bytes]) -> np.ndarray:
    try:
        return np.frombuffer(bytes(map(len, texts)), np.uint8)  # the fastest way, while every length is < 256
    except ValueError:
        return np.fromiter(map(len, texts), np.int64, len(texts))


def utf8(texts: Sequence[str]) -> tuple[bytes, np.ndarray]:
    """The UTF-8 bytes of ``texts`` one after another, and each one's length in bytes."""
    joined = "".join(texts)
    if joined.isascii():  # O(1) in CPython; then characters are bytes
        data, lengths = joined.encode("ascii"), _lengths(texts)
    else:
        encoded = [t.encode() for t in texts]
        data, lengths = b"".join(encoded), _lengths(encoded)
    if len(data) > MAX_STRING_BYTES:
        raise ValueError(f"{len(data):,} bytes of text do not fit one Arrow string array")
    return data, lengths


def _offsets(n: int, at: np.ndarray | None, lengths: np.ndarray) -> pa.Buffer:
    offsets = np.zeros(n + 1, np.int32)
    if at is None:
        offsets[1:] = lengths
    else:
        offsets[at + 1] = lengths
    return pa.py_buffer(np.cumsum(offsets, out=offsets))  # int32: utf8() checked the total fits


def strings(texts: Sequence[str]) -> pa.Array:
    """Non-null strings (the timestamps of a page: one join and one ``map(len)``, as fast as ``pa.array``)."""
    data, lengths = utf8(texts)
    return pa.Array.from_buffers(pa.string(), len(texts), [None, _offsets(len(texts), None, lengths),
                                                            pa.py_buffer(data)])


def sparse_strings(n: int, at: Sequence[int], texts: Sequence[str]) -> pa.Array:
    """``n`` strings: ``texts[k]`` at row ``at[k]`` (ascending), null everywhere else."""
    if not len(texts):
        return pa.nulls(n, pa.string())
    data, lengths = utf8(texts)
    rows = np.asarray(at, np.int64)
    return pa.Array.from_buffers(pa.string(), n, [bitmap(mask(n, rows, True)), _offsets(n, rows, lengths),
                                                  pa.py_buffer(data)])


def repeated(texts: Sequence[str], counts: np.ndarray) -> pa.Array:
    """Non-null strings: ``texts[k]`` ``counts[k]`` times, in order (the point column of a page)."""
    encoded = [t.encode() for t in texts]
    n = int(counts.sum())
    lengths = np.repeat(_lengths(encoded), counts)
    data = b"".join(e * int(c) for e, c in zip(encoded, counts, strict=True))
    if len(data) > MAX_STRING_BYTES:
        raise ValueError(f"{len(data):,} bytes of point names do not fit one Arrow string array")
    return pa.Array.from_buffers(pa.string(), n, [None, _offsets(n, None, lengths), pa.py_buffer(data)])
