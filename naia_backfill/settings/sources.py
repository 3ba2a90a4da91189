"""The sources a point set can read, one settings model per kind, and the source registry.

Adding a source: its settings model here, its connector module in :mod:`naia_backfill.connectors`, and one
:data:`SOURCES` entry naming both. The connector is named by import path so that loading point sets
imports no client library.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Literal, Union

from pydantic import Field

from naia_backfill.settings.models import Auth, HttpSourceBase, NoAuth, SourceBase


class SyntheticSource(SourceBase):
    """Deterministic generated history: numeric, digital and string points with system states,
    bad values and runs of equal timestamps. For demos, tests and benchmarks."""

    kind: Literal["synthetic"]
    points: int = Field(default=100, ge=1, le=1_000_000, description="How many points the source offers.")
    interval_seconds: float = Field(default=60.0, gt=0, le=86_400, description="Sample interval of every point.")
    seed: int = Field(default=0, ge=0, description="Changes every value; same seed, same data.")
    prefix: str = Field(default="SYN", pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$", description="Point name prefix.")


class PiWebApiSource(HttpSourceBase):
    """An AVEVA/OSIsoft PI Web API; recorded values of PI points on one data server."""

    kind: Literal["pi_web_api"]
    data_server: str = Field(description="Name of the PI Data Archive (data server) holding the points.")
    auth: Auth = Field(default_factory=lambda: NoAuth(kind="none"))
    max_count: int = Field(default=150_000, ge=1, le=10_000_000, description="maxCount per request and stream.")
    points_per_request: int = Field(default=50, ge=1, le=5000, description="Streams per streamsets request.")


@dataclasses.dataclass(frozen=True)
class SourceKind:
    """A source kind: its settings model and the ``module:function`` building its connector from
    (settings, credentials)."""

    settings: type[SourceBase]
    connector: str


SOURCES: dict[str, SourceKind] = {
    "synthetic": SourceKind(SyntheticSource, "naia_backfill.connectors.synthetic:build"),
    "pi_web_api": SourceKind(PiWebApiSource, "naia_backfill.connectors.pi_web_api:build"),
}

#: Any source's settings, told apart by ``kind``.
SourceSettings = Annotated[Union[tuple(k.settings for k in SOURCES.values())], Field(discriminator="kind")]  # noqa: UP007
