"""Reading point-set YAML files: the bundled ones, and any file or folder a user adds."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

import yaml
from pydantic import ValidationError

from naia_backfill.errors import PointSetError
from naia_backfill.settings.point_set import PointSet
from naia_backfill.settings.sinks import SINKS
from naia_backfill.settings.sources import SOURCES

BUNDLED_DIR = Path(__file__).parents[1] / "point_sets"


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
    return ps


def _yaml_files(location: Path) -> list[Path]:
    if location.is_dir():
        return sorted(p for p in location.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    if location.is_file():
        return [location]
    raise PointSetError(f"{location}: no such point-set file or folder")


def load_point_sets(locations: Iterable[str | os.PathLike[str]] | None = None) -> dict[str, PointSet]:
    """Every point set in the bundled folder plus ``locations`` (files or folders); names must be unique."""
    found: dict[str, PointSet] = {}
    for location in [BUNDLED_DIR, *(Path(p) for p in (locations or []))]:
        for file in _yaml_files(Path(location)):
            ps = load_point_set(file)
            if ps.name in found and found[ps.name].path != ps.path:
                raise PointSetError(f"{file}: point set name {ps.name!r} is already used by {found[ps.name].path}")
            found[ps.name] = ps
    return found


def extra_locations() -> list[str]:
    """Folders or files named by ``NAIA_POINT_SETS`` (separated by the OS path separator)."""
    return [p for p in os.environ.get("NAIA_POINT_SETS", "").split(os.pathsep) if p.strip()]
