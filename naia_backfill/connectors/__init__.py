"""Source connectors, built from a point set's ``source`` settings."""

from __future__ import annotations

from naia_backfill.connectors.base import Credentials, Estimate, Source
from naia_backfill.settings import PointSet

__all__ = ["Credentials", "Estimate", "Source", "build_source", "resolve_points"]


def build_source(point_set: PointSet, credentials: Credentials | None = None) -> Source:
    """The connector for a point set's source. Imports each connector only when it is used."""
    settings = point_set.source
    credentials = credentials or Credentials()
    if settings.kind == "synthetic":
        from naia_backfill.connectors.synthetic import SyntheticConnector

        return SyntheticConnector(settings)
    if settings.kind == "pi_web_api":
        from naia_backfill.connectors.pi_web_api import build_pi_web_api

        return build_pi_web_api(settings, credentials)
    raise ValueError(f"no connector for source kind {settings.kind!r}")


def resolve_points(point_set: PointSet, source: Source) -> list[str]:
    """The point names a point set selects, checked against the source."""
    spec = point_set.points
    if spec.names is not None:
        return source.resolve(names=spec.names)
    if spec.file is not None:
        return source.resolve(names=point_set.point_names_from_file())
    return source.resolve(name_filter=spec.name_filter)
