"""PI Web API TimedValues as msgspec types, and decoded TimedValues -> the value, text, state and flag columns.

Most events of an archive are *plain*: a number with ``Good`` true and no other flag set. One comprehension over
a page takes their numbers and sets every other event aside (an *odd* event: a digital or system state, a
string, an ``{"Errors":[...]}`` value, a null, a boolean, a bad or flagged number); only odd events take a
per-event path, and the columns are then filled with numpy at once.

Two decodings: the common one (:class:`TimedValue`) has no ``Errors`` beside a value and takes state objects
with the known keys only (decoded as :class:`State` structs, several times cheaper than dicts); a page it
refuses -- or one holding a null value, which may have its ``Errors`` beside it -- is decoded again as
:class:`FullTimedValue`, which takes anything.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import msgspec
import numpy as np
import orjson
import pyarrow as pa

from naia_backfill.connectors.pi_web_api_arrow import fixed, flag, mask, sparse_strings

NAN = float("nan")


class State(msgspec.Struct, gc=False, forbid_unknown_fields=True):
    """A digital or system state ``{"Name","Value","IsSystem"}``, or an unreadable value ``{"Errors":[...]}``."""

    Name: Any = msgspec.UNSET
    Value: Any = None
    IsSystem: Any = None
    Errors: Any = msgspec.UNSET


class TimedValue(msgspec.Struct, gc=False):
    """The common TimedValue. Fields in the order PI writes them (Value last), which msgspec decodes fastest;
    numbers (integers too) decode to float."""

    Timestamp: str
    Good: bool = True
    Questionable: bool = False
    Substituted: bool = False
    Annotated: bool = False
    Value: float | bool | str | State | list | None = None


class FullTimedValue(msgspec.Struct, gc=False):
    """Any TimedValue. A value PI could not read may come as ``"Value":null,"Errors":[{"FieldName","Message"}]``."""

    Timestamp: str
    Good: bool = True
    Questionable: bool = False
    Substituted: bool = False
    Annotated: bool = False
    Value: Any = None
    Errors: Any = None


def errors_text(errors: Any) -> str:
    """PI's error lists: strings, or objects such as ``{"FieldName": "Value", "Message": ["..."]}``."""
    parts = []
    for e in errors if isinstance(errors, list) else [errors]:
        if isinstance(e, dict) and "Message" in e:
            e = e["Message"]
        parts.extend(map(str, e) if isinstance(e, list) else [str(e)])
    return "; ".join(parts)


def plain_values(groups: Sequence[Sequence[Any]], full: bool) -> tuple[np.ndarray, list[Any]]:
    """Every event's number, NaN where the event is odd, and the odd events in order.

    ``groups`` holds each stream's TimedValues (``full``: :class:`FullTimedValue`). JSON has no NaN, so the
    NaNs mark exactly the odd rows (keeping a row number per event in the comprehension costs a third more).
    """
    odd: list[Any] = []
    mark = odd.append
    F = float
    if full:
        vals = [
            x.Value
            if x.Value.__class__ is F and x.Good and not (x.Questionable or x.Substituted or x.Annotated)
            and x.Errors is None
            else (mark(x) or NAN)
            for g in groups
            for x in g
        ]
    else:
        vals = [
            x.Value
            if x.Value.__class__ is F and x.Good and not (x.Questionable or x.Substituted or x.Annotated)
            else (mark(x) or NAN)
            for g in groups
            for x in g
        ]
    return np.fromiter(vals, np.float64, len(vals)), odd


def needs_full(odd: list[Any]) -> bool:
    """Whether the common decoding of a page lost something: a null value (its ``Errors`` may be beside it),
    or an object value that is neither a state nor errors (kept as its JSON text, which a struct cannot give)."""
    for x in odd:
        v = x.Value
        if v is None or (v.__class__ is State and v.Name is msgspec.UNSET and v.Errors is msgspec.UNSET):
            return True
    return False


@dataclasses.dataclass
class OddEvents:
    """What the per-event path read from a page's odd events: their rows, and values at some of those rows."""

    rows: list[int]
    number_rows: list[int] = dataclasses.field(default_factory=list)
    numbers: list[float] = dataclasses.field(default_factory=list)
    text_rows: list[int] = dataclasses.field(default_factory=list)
    texts: list[str] = dataclasses.field(default_factory=list)
    code_rows: list[int] = dataclasses.field(default_factory=list)
    codes: list[int] = dataclasses.field(default_factory=list)
    system_rows: list[int] = dataclasses.field(default_factory=list)
    bad_rows: list[int] = dataclasses.field(default_factory=list)  # good is false
    flag_rows: tuple[list[int], list[int], list[int]] = dataclasses.field(default_factory=lambda: ([], [], []))

    def text(self, i: int, text: str) -> None:
        self.text_rows.append(i)
        self.texts.append(text)

    def state(self, i: int, name: Any, code: Any, system: Any) -> None:
        """A digital or system state; its code only if it fits an int32."""
        self.text(i, str(name))
        if (code.__class__ is int or code.__class__ is float) and -(2**31) <= code < 2**31:
            self.code_rows.append(i)
            self.codes.append(int(code))
        if system:
            self.system_rows.append(i)

    def error(self, i: int, errors: Any, good: bool) -> None:
        """A value PI could not read: its messages; not good, whatever its Good says."""
        self.text(i, errors_text(errors))
        if good:
            self.bad_rows.append(i)


def _read_dict(ev: OddEvents, i: int, v: dict[str, Any], good: bool) -> None:
    if "Errors" in v:
        ev.error(i, v["Errors"], good)
    elif "Name" in v:
        ev.state(i, v["Name"], v.get("Value"), v.get("IsSystem"))
    else:
        ev.text(i, orjson.dumps(v).decode())


def read_odd(value: np.ndarray, odd: list[Any], full: bool) -> OddEvents:
    """Read each odd event: its flags, and its value as a number, a text, a state or an error."""
    ev = OddEvents(np.flatnonzero(np.isnan(value)).tolist())
    if len(ev.rows) != len(odd):
        raise AssertionError(f"{len(ev.rows)} NaN rows for {len(odd)} odd events")
    text_rows, texts, code_rows, codes = ev.text_rows, ev.texts, ev.code_rows, ev.codes
    for i, x in zip(ev.rows, odd, strict=True):
        v, good = x.Value, x.Good
        if not good:
            ev.bad_rows.append(i)
        if x.Questionable or x.Substituted or x.Annotated:
            _other_flags(ev, i, x)
        if full and x.Errors is not None:
            v = {"Errors": x.Errors}
        cls = v.__class__
        if cls is State and v.Errors is msgspec.UNSET:  # the usual odd event, inlined: a state
            text_rows.append(i)
            texts.append(v.Name if v.Name.__class__ is str else str(v.Name))
            code = v.Value
            if (code.__class__ is int or code.__class__ is float) and -(2**31) <= code < 2**31:
                code_rows.append(i)
                codes.append(int(code))
            if v.IsSystem:
                ev.system_rows.append(i)
        elif cls is State:
            ev.error(i, v.Errors, good)
        elif cls is float or cls is bool or cls is int:
            ev.number_rows.append(i)
            ev.numbers.append(float(v))
        elif cls is str:
            ev.text(i, v)
        elif cls is dict:
            _read_dict(ev, i, v, good)
        elif v is not None:  # a list, kept as its JSON text
            ev.text(i, orjson.dumps(v).decode())
    return ev


def _other_flags(ev: OddEvents, i: int, x: Any) -> None:
    for rows, set_ in zip(ev.flag_rows, (x.Questionable, x.Substituted, x.Annotated), strict=True):
        if set_:
            rows.append(i)


def value_columns(value: np.ndarray, ev: OddEvents) -> list[pa.Array]:
    """value, text, state_code, is_system, good, questionable, substituted, annotated (fills ``value``)."""
    n = len(value)
    value[ev.number_rows] = ev.numbers
    valid = None if len(ev.number_rows) == len(ev.rows) else ~np.isnan(value)  # NaN now marks the nulls
    codes = pa.nulls(n, pa.int32())
    if ev.codes:
        code = np.zeros(n, np.int32)
        code[ev.code_rows] = ev.codes
        codes = fixed(code, mask(n, ev.code_rows, True), pa.int32())
    return [
        fixed(value, valid, pa.float64()),
        sparse_strings(n, ev.text_rows, ev.texts),
        codes,
        flag(n, ev.system_rows, True),
        flag(n, ev.bad_rows, False),
        *(flag(n, rows, True) for rows in ev.flag_rows),
    ]
