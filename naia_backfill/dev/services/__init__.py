"""The development servers: Kafka, QuestDB, S3 (SeaweedFS), PostgreSQL and a MongoDB-protocol server (FerretDB).

Each is a plain process on 127.0.0.1 whose downloads, configuration, data, log and PID file live under
``<repo>/.services/<service>/``. ``naia-backfill services ...`` (or ``scripts/services.sh``) drives them from a
shell; test sessions call :func:`ensure`.
"""

from __future__ import annotations

from collections.abc import Sequence

from naia_backfill.dev.services.core import Layout, ServiceError
from naia_backfill.dev.services.manager import NAMES, down, environment, reset, status, up

__all__ = ["NAMES", "Layout", "ServiceError", "down", "ensure", "environment", "reset", "status", "up"]


def ensure(names: Sequence[str] | None = None, layout: Layout | None = None) -> dict[str, str]:
    """Make sure the named services (all when None) run and answer; return their variables.

    Idempotent and cheap when they already run (only probed), so a pytest session fixture can call it every
    time; servers it starts keep running after the session, for the next one.
    """
    return up(names, layout)
