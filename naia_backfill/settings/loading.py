"""Reading point-set YAML files: the bundled ones, and any file or folder a user adds."""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path

import yaml
from pydantic import ValidationError

from naia_backfill.errors import PointSetError
from naia_backfill.settings import key_template
from naia_backfill.settings.models import NAME_RE, RateLimit
from naia_backfill.settings.point_set import PointSet
from naia_backfill.settings.sinks import SINKS
from naia_backfill.settings.sources import SOURCES

BUNDLED_DIR = Path(__file__).parents[1] / "point_sets"
log = logging.getLogger(__name__)


def _describe(err: ValidationError, path: Path) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"] if not (isinstance(p, str) and p in _UNION_TAGS)) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown field" + (" (secrets belong in environment variables: name them with *_env)"
                                     if re.search(r"pass|secret|token|key", loc, re.I) else "")
        lines.append(f"{path}: field '{loc}': {msg}")
    return "\n".join(lines)


_UNION_TAGS = {*SOURCES, *SINKS, "basic", "bearer", "none"}


def load_point_set(path: str | os.PathLike[str]) -> PointSet:
    """Read and validate one point-set YAML file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise PointSetError(f"{path}: cannot read: {e.strerror or e}") from e
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise PointSetError(f"{path}: invalid YAML{where}: {getattr(e, 'problem', None) or e}") from e
    if not isinstance(raw, dict):
        raise PointSetError(f"{path}: a point set is a YAML mapping (name, source, points, ...), got {type(raw).__name__}")
    try:
        ps = PointSet.model_validate({**raw, "path": path})
    except ValidationError as e:
        raise PointSetError(_describe(e, path)) from e
    if ps.points.file is not None:
        ps.point_names_from_file()
    return ps if getattr(ps.source, "sites", None) is not None else _fill_site(ps, getattr(ps.source, "site", None))


def _fill_site(ps: PointSet, site: str | None) -> PointSet:
    """``{site}`` of the Parquet sink's key template and constant columns, filled with the source's site."""
    sink = ps.sink("parquet")
    texts = [sink.key_template or "", *sink.constant_columns.values()] if sink is not None else []
    if not any("{site}" in t for t in texts):
        return ps
    if site is None:
        raise PointSetError(f"{ps.path or ps.name}: {{site}} in the parquet sink needs a source with a site (ace_iot)")
    fill = {"site": site}
    filled = sink.model_copy(update={
        "key_template": key_template.substitute(sink.key_template, fill) if sink.key_template else None,
        "constant_columns": {k: key_template.substitute(v, fill) for k, v in sink.constant_columns.items()},
    })
    return ps.model_copy(update={"sinks": [filled if s is sink else s for s in ps.sinks]})


def expand_sites(ps: PointSet) -> list[PointSet]:
    """One point set per site of a source with ``sites`` (a list, or ``"*"``: every site its token sees, listed
    by the source kind's ``list_sites``), named ``<name>_<site>``; any other point set as it is. Separate
    assets let Dagster run sites in parallel (one pool each by default) and show each site's days."""
    sites = getattr(ps.source, "sites", None)
    if sites is None:
        return [ps]
    if sites == "*":
        module, _, function = (SOURCES[ps.source.kind].list_sites or ":").partition(":")
        sites = getattr(importlib.import_module(module), function)(ps.source)
    out: dict[str, PointSet] = {}
    for site in sites:
        name = f"{ps.name}_{re.sub(r'[^a-z0-9]+', '_', site.lower()).strip('_')}"
        if not re.fullmatch(NAME_RE, name) or name in out:
            raise PointSetError(f"{ps.path or ps.name}: site {site!r} gives the point set name {name!r}, which is "
                                f"{'taken' if name in out else 'not a valid name (at most 63 characters)'}")
        source = ps.source.model_copy(update={"site": site, "sites": None})
        described = f"{ps.description} (site {site})" if ps.description else f"Site {site} of {ps.name}."
        out[name] = _fill_site(ps.model_copy(update={"name": name, "source": source, "description": described}), site)
    return list(out.values())


def check_keys(point_sets: dict[str, PointSet]) -> None:
    """Refuse two point sets whose Parquet objects would be the same (key templates naming the same site)."""
    day, seen = dt.date(2001, 2, 3), {}
    for ps in point_sets.values():
        sink = ps.sink("parquet")
        if sink is None or "{site}" in (sink.key_template or ""):
            continue
        template = sink.key_template or "point_set={point_set}/date={date}/all.parquet"
        key = key_template.render(template, day, {"point_set": ps.name})
        if key in seen:
            raise PointSetError(f"{ps.path or ps.name}: point sets {seen[key]!r} and {ps.name!r} would write the same "
                                f"objects ({key}): give their parquet key templates {{point_set}}")
        seen[key] = ps.name


def _yaml_files(location: Path) -> list[Path]:
    if location.is_dir():
        return sorted(p for p in location.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    if location.is_file():
        return [location]
    raise PointSetError(f"{location}: no such point-set file or folder")


def stricter(a: RateLimit, b: RateLimit) -> RateLimit:
    """The stricter of two limits: the lower average rate, then the smaller burst."""
    return min(a, b, key=lambda r: (r.per_second, r.requests))


def share_rate_limits(point_sets: dict[str, PointSet]) -> dict[str, PointSet]:
    """Point sets reading one source (same ``limit_key``) get the strictest of their rate limits, with a warning
    when they disagree, so their runs share one limit however many processes run them."""
    strictest: dict[str, RateLimit] = {}
    for ps in point_sets.values():
        limit = ps.source.rate_limit
        if limit is not None:
            key = ps.source.limit_key
            strictest[key] = stricter(strictest[key], limit) if key in strictest else limit
    out = {}
    for name, ps in point_sets.items():
        limit = strictest.get(ps.source.limit_key)
        if limit is not None and ps.source.rate_limit != limit:
            log.warning(
                "point set %s: source %s is shared with other point sets; using their strictest rate limit, "
                "%s requests per %gs, instead of %s", name, ps.source.limit_key, limit.requests, limit.per_seconds,
                f"{ps.source.rate_limit.requests} per {ps.source.rate_limit.per_seconds:g}s" if ps.source.rate_limit else "none",
            )
            ps = ps.model_copy(update={"source": ps.source.model_copy(update={"rate_limit": limit})})
        out[name] = ps
    return out


def load_point_sets(locations: Iterable[str | os.PathLike[str]] | None = None) -> dict[str, PointSet]:
    """Every point set in the bundled folder plus ``locations`` (files or folders); names must be unique."""
    found: dict[str, PointSet] = {}
    for location in [BUNDLED_DIR, *(Path(p) for p in (locations or []))]:
        for file in _yaml_files(Path(location)):
            for ps in expand_sites(load_point_set(file)):
                if ps.name in found and found[ps.name].path != ps.path:
                    raise PointSetError(f"{file}: point set name {ps.name!r} is already used by {found[ps.name].path}")
                found[ps.name] = ps
    check_keys(found)
    return share_rate_limits(found)


def extra_locations() -> list[str]:
    """Folders or files named by ``NAIA_POINT_SETS`` (separated by the OS path separator)."""
    return [p for p in os.environ.get("NAIA_POINT_SETS", "").split(os.pathsep) if p.strip()]
