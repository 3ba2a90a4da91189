"""Source connectors: plain Python, no Dagster. Each kind's connector is named in
:data:`naia_backfill.settings.SOURCES` and imported only when a point set of that kind is used."""

from __future__ import annotations

import importlib

from naia_backfill.connectors.base import Credentials, Estimate, Source
from naia_backfill.errors import UnknownPointsError
from naia_backfill.settings import SOURCES, PointSet

__all__ = ["Credentials", "Estimate", "Source", "build_source", "resolve_points"]


def build_source(point_set: PointSet, credentials: Credentials | None = None) -> Source:
    """The connector for a point set's source."""
    settings = point_set.source
    module, _, function = SOURCES[settings.kind].connector.partition(":")
    return getattr(importlib.import_module(module), function)(settings, credentials or Credentials())


def resolve_points(point_set: PointSet, source: Source) -> list[str]:
    """The point names a point set selects, checked against the source."""
    spec = point_set.points
    if spec.names is not None:
        return source.resolve(names=spec.names)
    if spec.file is not None:
        lines = point_set.point_file_lines()
        try:
            return source.resolve(names=list(lines))
        except UnknownPointsError as e:  # say where, never what: the file's lines are not echoed
            where = ", ".join(str(lines[n]) for n in e.points[:20]) + (" and more" if len(e.points) > 20 else "")
            raise UnknownPointsError.from_file(len(e.points), len(lines), point_set.point_file(), where,
                                               source.description) from None
    return source.resolve(name_filter=spec.name_filter)
