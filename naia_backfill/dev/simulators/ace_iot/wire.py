"""ACE IoT ``point_samples`` JSON, written with numpy and orjson without a Python object per field.

A sample ``{"name":"…","value":"45.5","time":"2025-10-16T00:05:00Z"}`` is three byte strings joined: the
point's prefix (``{"name":"…","value":"``, one per point), the value text (orjson writes a chunk's numbers
in one call, as the shortest decimal that round-trips) and the time suffix (``","time":"…Z"},``, one per
distinct instant in the chunk). A null value uses the prefix and suffix variants without the quotes.
Times are UTC with a 6-digit fraction when not whole seconds, as Python's ``isoformat`` writes them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import numpy as np
import orjson

from naia_backfill.dev.simulators.ace_iot.data import (
    KIND_NULL,
    KIND_NUMBER,
    ODD_TEXTS,
    POW10,
    US_PER_DAY,
    US_PER_S,
    Samples,
)
from naia_backfill.dev.simulators.ace_iot.model import SiteModel

CHUNK = 8192


def _digits(out: np.ndarray, values: np.ndarray) -> None:
    """Write non-negative ``values`` as zero-padded decimal digits into the columns of ``out``."""
    v = values.astype(np.int64)
    for col in range(out.shape[1] - 1, -1, -1):
        out[:, col] = 48 + v % 10
        v //= 10


def _civil(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(year, month, day) of days since 1970-01-01 (H. Hinnant's civil_from_days)."""
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    month = np.where(mp < 10, mp + 3, mp - 9)
    return yoe + era * 400 + (month <= 2), month, doy - (153 * mp + 2) // 5 + 1


def _iso_matrix(t_us: np.ndarray, width: int, at: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``width`` bytes holding 'YYYY-MM-DDTHH:MM:SS[.ffffff]' from column ``at``, NULs elsewhere, and
    whether each has a fraction (then it ends 7 bytes further)."""
    out = np.zeros((len(t_us), width), dtype=np.uint8)
    days, rest = np.divmod(t_us, US_PER_DAY)
    sod, frac = np.divmod(rest, US_PER_S)
    year, month, day = _civil(days)
    for (a, b), v in zip(((0, 4), (5, 7), (8, 10), (11, 13), (14, 16), (17, 19)), (
        year, month, day, sod // 3600, sod // 60 % 60, sod % 60
    ), strict=True):  # fmt: skip
        _digits(out[:, at + a : at + b], v)
    out[:, [at + 4, at + 7]] = ord("-")
    out[:, at + 10] = ord("T")
    out[:, [at + 13, at + 16]] = ord(":")
    has = frac != 0
    if has.any():
        out[has, at + 19] = ord(".")
        _digits(out[:, at + 20 : at + 26], frac)
        out[~has, at + 20 : at + 26] = 0
    return out, has


def iso_texts(t_us: np.ndarray) -> list[bytes]:
    """'YYYY-MM-DDTHH:MM:SS' plus '.ffffff' when the microseconds are not zero, without the 'Z'."""
    if len(t_us) == 0:
        return []
    return _iso_matrix(t_us, 26, 0)[0].view("S26").ravel().tolist()


def iso(t_us: int) -> str:
    """One instant as the API writes it, e.g. '2025-10-16T00:05:00Z' or '2025-10-16T00:05:00.250000Z'."""
    return iso_texts(np.array([t_us], dtype=np.int64))[0].decode() + "Z"


_SUFFIX_HEAD = np.frombuffer(b'","time":"', dtype=np.uint8)
_SUFFIX_TAIL = np.frombuffer(b'Z"},', dtype=np.uint8)


def _suffixes(t_us: np.ndarray) -> np.ndarray:
    """Per instant the text after a quoted value, ``","time":"…Z"},``, then after a null, ``,"time":"…Z"},``."""
    head = len(_SUFFIX_HEAD)
    out, has = _iso_matrix(t_us, head + 26 + len(_SUFFIX_TAIL), head)
    out[:, :head] = _SUFFIX_HEAD
    end = head + 19 + 7 * has
    for i, c in enumerate(_SUFFIX_TAIL):
        out[np.arange(len(out)), end + i] = c
    texts = np.empty(2 * len(out), dtype=object)
    texts[0::2] = out.view(f"S{out.shape[1]}").ravel().tolist()
    bare = np.ascontiguousarray(out[:, 1:])
    texts[1::2] = bare.view(f"S{bare.shape[1]}").ravel().tolist()
    return texts


@functools.lru_cache(maxsize=64)
def _prefixes(model: SiteModel) -> np.ndarray:
    """Per point the text before the value: quoted variants, then the null (unquoted) variants."""
    names = [orjson.dumps(n) for n in model.names]
    out = np.empty(2 * len(names), dtype=object)
    out[: len(names)] = [b'{"name":' + n + b',"value":"' for n in names]
    out[len(names) :] = [b'{"name":' + n + b',"value":' for n in names]
    return out


_ODD = {k: (v.encode() if v is not None else b"null") for k, v in ODD_TEXTS.items()}


def _value_texts(model: SiteModel, s: Samples) -> list[bytes]:
    """The text of each sample's value (without quotes): numbers via orjson, odd kinds from a table."""
    decimals = model.decimals[s.pidx]
    values = s.mant / POW10[decimals]
    texts = orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1].split(b",")
    ints = model.integer_text[s.pidx]
    if ints.any():  # "13" rather than "13.0"
        idx = np.flatnonzero(ints)
        for i, text in zip(idx.tolist(), orjson.dumps(s.mant[idx].tolist())[1:-1].split(b","), strict=True):
            texts[i] = text
    odd = np.flatnonzero(s.kind != KIND_NUMBER)
    for i, kind in zip(odd.tolist(), s.kind[odd].tolist(), strict=True):
        texts[i] = _ODD[kind]
    return texts


def _chunk(model: SiteModel, s: Samples) -> bytes:
    """The samples as JSON objects, each followed by a comma."""
    n = len(s)
    null = s.kind == KIND_NULL
    new = np.ones(n, dtype=bool)
    new[1:] = s.t[1:] != s.t[:-1]
    which = np.cumsum(new) - 1
    suffixes = _suffixes(s.t[new])
    parts: list[bytes] = [b""] * (3 * n)
    prefixes = _prefixes(model)
    parts[0::3] = prefixes[s.pidx + len(model.names) * null].tolist()
    parts[1::3] = _value_texts(model, s)
    parts[2::3] = suffixes[2 * which + null].tolist()
    return b"".join(parts)


def sample_chunks(model: SiteModel, s: Samples, chunk: int = CHUNK) -> Iterator[bytes]:
    """The JSON array of ``s`` (``[{…},{…}]``) in pieces of about ``chunk`` samples."""
    yield b"["
    n = len(s)
    for lo in range(0, n, chunk):
        text = _chunk(model, s.take(slice(lo, lo + chunk)))
        yield text[:-1] if lo + chunk >= n else text
    yield b"]"


def point_samples(model: SiteModel, s: Samples) -> bytes:
    """``{"point_samples":[…]}``, the body of a point's time series."""
    return b'{"point_samples":' + b"".join(sample_chunks(model, s)) + b"}"


def page_parts(model: SiteModel, s: Samples, next_cursor: str | None, has_more: bool) -> Iterator[bytes]:
    """``{"point_samples":[…],"next_cursor":…,"has_more":…}`` in pieces, the body of a time-series page."""
    yield b'{"point_samples":'
    yield from sample_chunks(model, s)
    yield b',"next_cursor":' + orjson.dumps(next_cursor) + b',"has_more":' + orjson.dumps(has_more) + b"}"
