"""The sites an ACE IoT token sees, for point sets with ``sites: "*"`` (one point set per site, made when the file
loads): listed through ``/sites/`` at most once an hour and kept in ``$DAGSTER_HOME/naia_cache`` (else the temp
folder), so loading the code location, each run's process and the CLI do not spend requests on it, and a source
that cannot be reached falls back to the last list."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from pathlib import Path

import orjson

from naia_backfill.connectors.ace_iot import list_pages
from naia_backfill.connectors.base import Credentials
from naia_backfill.connectors.http import build_client, get_body, retrier_for
from naia_backfill.errors import PointSetError, SourceError
from naia_backfill.settings import AceIotSource

log = logging.getLogger(__name__)

#: How long a ``sites: "*"`` list is used before the sites are listed again.
SITES_CACHE_SECONDS = 3600.0


def _sites_cache(settings: AceIotSource) -> Path:
    """Where the site list of ``sites: "*"`` is kept between loads: per server and token variable, never the
    token itself."""
    env = getattr(settings.auth, "token_env", "")
    key = hashlib.sha256(f"{settings.base_url}\n{env}".encode()).hexdigest()[:16]
    home = os.environ.get("DAGSTER_HOME")
    folder = Path(home) / "naia_cache" if home else Path(tempfile.gettempdir()) / f"naia-cache-{os.getuid()}"
    return folder / f"ace_iot_sites-{key}.json"


def list_sites(settings: AceIotSource, *, max_age_s: float = SITES_CACHE_SECONDS) -> list[str]:
    """Every site the token sees, for ``sites: "*"`` when the point set loads (code location, CLI, each run).

    Listed at most once per ``max_age_s`` (the list is cached in ``$DAGSTER_HOME/naia_cache``), so runs do not
    spend requests on it; when the source cannot be reached the last list is used, however old. Without a
    token in the environment or any list, the point set cannot load (:class:`PointSetError`).
    """
    cache = _sites_cache(settings)
    try:
        cached = orjson.loads(cache.read_bytes()) if cache.is_file() else None
    except (OSError, orjson.JSONDecodeError):
        cached = None
    if cached is not None and time.time() - cache.stat().st_mtime < max_age_s:
        return list(cached)
    env = getattr(settings.auth, "token_env", None)
    what = f"ACE IoT {settings.base_url}: list sites for sites: '*'"
    try:
        with build_client(settings, Credentials(token=os.environ.get(env) if env else None)) as client:
            retrier = retrier_for(settings)
            sites = [s.name for s in list_pages(
                lambda path, params, w: retrier.call(lambda: get_body(client, path, params, w), w),
                "sites/", settings.list_page_size, what,
            )]
    except SourceError as e:
        if cached is not None:
            log.warning("%s failed, using the list of %s: %s", what, time.ctime(cache.stat().st_mtime), e)
            return list(cached)
        raise PointSetError(f"{what}: {e}") from e
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
    tmp.write_bytes(orjson.dumps(sites))
    os.replace(tmp, cache)
    return sites
