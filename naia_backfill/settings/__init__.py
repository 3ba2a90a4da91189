"""Point sets: typed models of the YAML files in ``point_sets/`` and any file or folder a user adds.

``models`` (base model, rate limits, auth, HTTP sources), ``sources`` and ``sinks`` (one model per kind and
the registries that name each kind's connector or writer), ``point_set`` (the point set), ``loading``.
"""

from naia_backfill.settings.loading import BUNDLED_DIR, extra_locations, load_point_set, load_point_sets
from naia_backfill.settings.models import (
    ENV_RE,
    NAME_RE,
    Auth,
    BasicAuth,
    BearerAuth,
    HttpSourceBase,
    Model,
    NoAuth,
    RateLimit,
    SourceBase,
)
from naia_backfill.settings.point_set import ChecksSpec, PointSet, PointsSpec, ValueRange
from naia_backfill.settings.sinks import SINKS, DuckDBSink, KafkaSink, ParquetSink, QuestDBSink, SinkKind, SinkSettings
from naia_backfill.settings.sources import (
    SOURCES,
    AceIotSource,
    PiWebApiSource,
    SourceKind,
    SourceSettings,
    SyntheticSource,
)

__all__ = [
    "AceIotSource", "BUNDLED_DIR", "ENV_RE", "NAME_RE", "SINKS", "SOURCES", "Auth", "BasicAuth", "BearerAuth", "ChecksSpec",
    "DuckDBSink", "HttpSourceBase", "KafkaSink", "Model", "NoAuth", "ParquetSink", "PiWebApiSource", "PointSet",
    "PointsSpec", "QuestDBSink", "RateLimit", "SinkKind", "SinkSettings", "SourceBase", "SourceKind",
    "SourceSettings", "SyntheticSource", "ValueRange", "extra_locations", "load_point_set", "load_point_sets",
]
