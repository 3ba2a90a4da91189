"""Key templates of the Parquet sink: a point set's day objects in a lake layout users already have.

A template is an object key relative to the lake root with placeholders: ``{point_set}``, ``{site}`` (the
source's site; sources with sites only), ``{date}`` (``YYYY-MM-DD``), ``{yyyy}``, ``{mm}``, ``{dd}``. E.g. seed
002's ``timeseries/{yyyy}/{mm}/{dd}/{site}.parquet``. Checked when the point set loads:

- the day is fully named (``{date}``, or ``{yyyy}``, ``{mm}`` and ``{dd}``): one object never holds two days,
  so re-running a day replaces exactly that day;
- ``{point_set}`` or ``{site}`` is in it: two point sets never share an object (clashes between the point
  sets of one lake are refused by :func:`naia_backfill.settings.loading.load_point_sets`);
- it stays under the lake root: relative, no ``.``/``..``/empty parts, no backslash, no hidden (``.``) names
  (temporary objects are hidden), and it ends in ``.parquet``.

Pure functions of text: no I/O. :mod:`naia_backfill.sinks.layout` builds keys, globs and day parsers on them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping

#: Placeholders and the text each renders to, as a regular expression (date parts are what keys are parsed by).
PLACEHOLDERS: dict[str, str] = {
    "point_set": r"[a-z][a-z0-9_]{0,62}",
    "site": r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    "date": r"\d{4}-\d{2}-\d{2}",
    "yyyy": r"\d{4}",
    "mm": r"\d{2}",
    "dd": r"\d{2}",
}
DATE_PARTS = ("date", "yyyy", "mm", "dd")
#: The placeholders a constant column of the Parquet sink may hold.
CONSTANT_PLACEHOLDERS = ("point_set", "site")
_FIELD = re.compile(r"\{([^{}]*)\}")


def fields(template: str) -> list[str]:
    """The placeholder names of ``template``, in order (repeats kept)."""
    return _FIELD.findall(template)


def check_text(template: str, allowed: tuple[str, ...] | dict[str, str]) -> None:
    """Refuse stray braces and placeholders not in ``allowed``."""
    unknown = sorted({f for f in fields(template) if f not in allowed})
    if unknown:
        hint = {"YYYY": "yyyy", "MM": "mm", "DD": "dd"}
        said = ", ".join("{" + f + "}" + (f" (use {{{hint[f]}}})" if f in hint else "") for f in unknown)
        raise ValueError(f"unknown placeholder(s) {said}: use " + ", ".join("{" + p + "}" for p in allowed))
    if "{" in _FIELD.sub("", template) or "}" in _FIELD.sub("", template):
        raise ValueError("a brace outside a {placeholder}")


def check(template: str) -> str:
    """``template`` if it is a valid key template, else ValueError saying why."""
    check_text(template, PLACEHOLDERS)
    names = set(fields(template))
    if "date" not in names and not {"yyyy", "mm", "dd"} <= names:
        raise ValueError(
            "the key must name the day: {date}, or {yyyy}, {mm} and {dd}; without them one object would hold "
            "several days and re-running one day would replace the others"
        )
    if not names & {"point_set", "site"}:
        raise ValueError("the key must hold {point_set} or {site}, so that point sets never share an object")
    if not template.endswith(".parquet") or template.endswith("/.parquet"):
        raise ValueError("the key must end in <name>.parquet")
    if any(c in template for c in "*?[]"):
        raise ValueError("the key must not hold glob characters (* ? [ ])")
    if template.startswith("/") or "\\" in template:
        raise ValueError("the key must be relative to the lake root (no leading '/', no '\\')")
    for part in template.split("/"):
        if part in ("", ".", ".."):
            raise ValueError(f"the key must stay under the lake root: no empty, '.' or '..' part (in {template!r})")
        if part.startswith("."):
            raise ValueError(f"a part of the key starts with '.' ({part!r}): such names are kept for temporary objects")
    return template


def substitute(template: str, values: Mapping[str, str]) -> str:
    """``template`` with the placeholders named in ``values`` replaced, the others kept."""
    return _FIELD.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def date_values(day: dt.date) -> dict[str, str]:
    return {"date": day.isoformat(), "yyyy": f"{day.year:04d}", "mm": f"{day.month:02d}", "dd": f"{day.day:02d}"}


def render(template: str, day: dt.date, values: Mapping[str, str]) -> str:
    """The key of ``day``; every non-date placeholder must be in ``values``."""
    out = substitute(template, {**values, **date_values(day)})
    left = fields(out)
    if left:
        raise ValueError(f"key template {template!r}: no value for {{{left[0]}}}")
    return out


def day_regex(template: str) -> str:
    """A regular expression (no anchors) of ``template`` whose non-date placeholders are already substituted:
    literal text escaped, each date placeholder a named group (repeats must repeat the same text)."""
    out, seen, pos = [], set(), 0
    for m in _FIELD.finditer(template):
        out.append(re.escape(template[pos : m.start()]))
        name = m.group(1)
        if name not in DATE_PARTS:
            raise ValueError(f"key template {template!r}: {{{name}}} must be substituted first")
        out.append(f"(?P={name})" if name in seen else f"(?P<{name}>{PLACEHOLDERS[name]})")
        seen.add(name)
        pos = m.end()
    out.append(re.escape(template[pos:]))
    return "".join(out)


#: Date parts as globs: one ``?`` per character, so a glob never matches a longer name (another point set's).
_DATE_GLOBS = {"date": "????-??-??", "yyyy": "????", "mm": "??", "dd": "??"}


def day_glob(template: str) -> str:
    """A glob of every day of ``template`` (non-date placeholders already substituted)."""
    return _FIELD.sub(lambda m: _DATE_GLOBS[m.group(1)], template)
