"""PI Web API TimedValue JSON, written column-wise with numpy.

Each value becomes one fixed-width row of bytes in a matrix (timestamp digits, the flag part chosen from a
table of the 16 flag combinations, the value text), unused cells hold NUL, and dropping the NULs of the
flattened matrix gives the JSON text. No Python object per value except for Float64 numbers, which orjson
writes as the shortest decimal that round-trips.
"""

from __future__ import annotations

import functools

import numpy as np
import orjson

from naia_backfill.dev.simulators.pi_web_api.data import (
    KIND_DIGITAL,
    KIND_NUMBER,
    KIND_STRING,
    KIND_SYSTEM,
    STRING_VALUES,
    SYSTEM_STATES,
    TICKS_PER_SECOND,
    Events,
    SimPoint,
)

#: Shapes a value with an error takes in a 200 response (the ``value_errors`` fault): the value replaced by
#: an ``{"Errors":[...]}`` object, the TimedValue carrying swagger's ``Errors: [PropertyError]`` with a null
#: value, or the value replaced by a PI error string. Each has Good false.
VALUE_ERROR_SHAPES = ("object", "property", "string")
_ERROR_FRAGMENTS = {
    "object": b'{"Errors":["[-11059] No Good Data For Calculation"]}',
    "property": b'null,"Errors":[{"FieldName":"Value","Message":["Error reading the value from the PI Data '
    b'Archive."]}]',
    "string": b'"[-10722] PINET: Timeout on PI RPC or System Call."',
}
_SEPARATOR = b'},{"Timestamp":"'


def _bool(b: bool) -> str:
    return "true" if b else "false"


@functools.cache
def _flag_texts() -> np.ndarray:
    """The text between timestamp and value for the 16 (Good, Questionable, Substituted, Annotated) flags."""
    rows = []
    for combo in range(16):
        g, q, s, a = (bool(combo & bit) for bit in (8, 4, 2, 1))
        rows.append(
            f'Z","UnitsAbbreviation":"","Good":{_bool(g)},"Questionable":{_bool(q)},'
            f'"Substituted":{_bool(s)},"Annotated":{_bool(a)},"Value":'.encode()
        )
    return _objects(rows)


@functools.cache
def _hms_table() -> np.ndarray:
    sod = np.arange(86_400, dtype=np.int64)
    out = np.empty((86_400, 9), dtype=np.uint8)
    out[:, 0] = ord("T")
    _digits(out[:, 1:3], sod // 3600)
    out[:, 3] = ord(":")
    _digits(out[:, 4:6], sod // 60 % 60)
    out[:, 6] = ord(":")
    _digits(out[:, 7:9], sod % 60)
    return out


@functools.cache
def _digit_table(width: int) -> np.ndarray:
    out = np.empty((10**width, width), dtype=np.uint8)
    _digits(out, np.arange(10**width, dtype=np.int64))
    return out


def _digits(out: np.ndarray, values: np.ndarray) -> None:
    """Write non-negative ``values`` as zero-padded decimal digits into the columns of ``out``."""
    v = values.copy()
    for col in range(out.shape[1] - 1, -1, -1):
        out[:, col] = 48 + v % 10
        v //= 10


def _civil(days: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 as 'YYYY-MM-DD' rows (H. Hinnant's civil_from_days)."""
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    out = np.empty((len(days), 10), dtype=np.uint8)
    _digits(out[:, 0:4], year)
    out[:, 4] = ord("-")
    _digits(out[:, 5:7], month)
    out[:, 7] = ord("-")
    _digits(out[:, 8:10], day)
    return out


def timestamp_matrix(ticks: np.ndarray) -> np.ndarray:
    """Rows 'YYYY-MM-DDTHH:MM:SS.fffffff' (27 bytes) with the fraction's trailing zeros (and a lone '.') NUL."""
    n = len(ticks)
    seconds, frac = np.divmod(ticks, TICKS_PER_SECOND)
    days, sod = np.divmod(seconds, 86_400)
    out = np.zeros((n, 27), dtype=np.uint8)
    if n == 0:
        return out
    new_day = np.ones(n, dtype=bool)
    new_day[1:] = days[1:] != days[:-1]
    starts = np.flatnonzero(new_day)
    out[:, 0:10] = np.repeat(_civil(days[starts]), np.diff(np.append(starts, n)), axis=0)
    out[:, 10:19] = _hms_table()[sod]
    has = np.flatnonzero(frac)
    if len(has):
        f = frac[has]
        digits = np.concatenate([_digit_table(4)[f // 1000], _digit_table(3)[f % 1000]], axis=1)
        zeros = sum((f % 10**i == 0).astype(np.int64) for i in range(1, 7))
        keep = np.arange(7)[None, :] < (7 - zeros)[:, None]
        out[has, 19] = ord(".")
        out[has, 20:27] = np.where(keep, digits, 0)
    return out


def iso(ticks: int) -> str:
    """One timestamp as PI writes it: UTC, 'Z', 0-7 fractional digits with trailing zeros trimmed."""
    row = timestamp_matrix(np.array([ticks], dtype=np.int64))[0]
    return row[row != 0].tobytes().decode() + "Z"


@functools.cache
def _state_fragments(states: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, int, int]:
    """JSON value texts as an object array: system states, then strings, then the digital states."""
    rows = [orjson.dumps({"Name": name, "Value": code, "IsSystem": True}) for code, name in SYSTEM_STATES.items()]
    rows += [orjson.dumps(s) for s in STRING_VALUES]
    rows += [orjson.dumps({"Name": s, "Value": i, "IsSystem": False}) for i, s in enumerate(states)]
    system_row = np.zeros(256, dtype=np.int64)
    system_row[list(SYSTEM_STATES)] = np.arange(len(SYSTEM_STATES))
    return _objects(rows), system_row, len(SYSTEM_STATES), len(SYSTEM_STATES) + len(STRING_VALUES)


def _objects(items: list[bytes]) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def _rows_as_bytes(mat: np.ndarray) -> list[bytes]:
    """Each row of a uint8 matrix as bytes without its trailing NULs."""
    return mat.view(f"S{mat.shape[1]}").ravel().tolist() if mat.shape[1] else [b""] * len(mat)


def _numbers(number: np.ndarray, point: SimPoint) -> list[bytes]:
    """Numbers as the shortest decimal that round-trips (what PI writes); integers for Int16/Int32.

    Float16/Float32 values are rounded to few decimals by the data model, so this is also the text PI
    writes for the single-precision value."""
    values = number.astype(np.int64).tolist() if point.decimals == 0 else number.tolist()
    return orjson.dumps(values)[1:-1].split(b",")


def _values(ev: Events, point: SimPoint) -> list[bytes]:
    """The JSON text of each value."""
    other = np.flatnonzero(ev.kind != KIND_NUMBER)
    if len(other) == 0:
        return _numbers(ev.number, point)
    fragments, system_row, string_base, digital_base = _state_fragments(point.states)
    kind, code = ev.kind[other], ev.code[other].astype(np.int64)
    row = np.where(kind == KIND_SYSTEM, system_row[np.clip(code, 0, 255)], 0)
    row = np.where(kind == KIND_STRING, string_base + code, row)
    row = np.where(kind == KIND_DIGITAL, digital_base + code, row)
    if len(other) > len(ev) // 8:
        out = np.empty(len(ev), dtype=object)
        num = np.flatnonzero(ev.kind == KIND_NUMBER)
        if len(num):
            out[num] = _numbers(ev.number[num], point)
        out[other] = fragments[row]
        return out.tolist()
    texts = _numbers(np.where(ev.kind == KIND_NUMBER, ev.number, 0.0), point)  # a few states: patch them in
    for i, text in zip(other.tolist(), fragments[row].tolist(), strict=True):
        texts[i] = text
    return texts


def timed_value_parts(
    ev: Events, point: SimPoint, *, value_errors: int = 0, error_shapes: tuple[str, ...] = VALUE_ERROR_SHAPES
) -> list[bytes]:
    """The JSON array of TimedValue objects for ``ev``, as pieces to join (a response joins them once).

    With ``value_errors`` N > 0, every N-th value (the N-th, 2N-th, ...) is replaced by an error value,
    cycling through ``error_shapes``; its timestamp stays, Good becomes false, the other flags false.
    """
    n = len(ev)
    if n == 0:
        return [b"[]"]
    flags = (ev.good.astype(np.int64) << 3) | (ev.questionable.astype(np.int64) << 2)
    flags |= (ev.substituted.astype(np.int64) << 1) | ev.annotated.astype(np.int64)
    values = _values(ev, point)
    if value_errors > 0:
        bad = range(value_errors - 1, n, value_errors)
        flags[bad.start :: value_errors] = 0
        shapes = [_ERROR_FRAGMENTS[s] for s in error_shapes]
        for i, at in enumerate(bad):
            values[at] = shapes[i % len(shapes)]
    head = np.empty((n, len(_SEPARATOR) + 27), dtype=np.uint8)
    head[:, : len(_SEPARATOR)] = np.frombuffer(_SEPARATOR, dtype=np.uint8)
    head[:, len(_SEPARATOR) :] = timestamp_matrix(ev.ticks)
    parts: list[bytes] = [b""] * (3 * n + 1)
    parts[0:-1:3] = _rows_as_bytes(head)
    parts[1::3] = _flag_texts()[flags].tolist()
    parts[2::3] = values
    parts[0] = b"[" + parts[0][2:]
    parts[-1] = b"}]"
    return parts


def timed_values(
    ev: Events, point: SimPoint, *, value_errors: int = 0, error_shapes: tuple[str, ...] = VALUE_ERROR_SHAPES
) -> bytes:
    """The JSON array of TimedValue objects for ``ev`` (see :func:`timed_value_parts`)."""
    return b"".join(timed_value_parts(ev, point, value_errors=value_errors, error_shapes=error_shapes))
