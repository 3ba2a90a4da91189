"""Before a run writes anything: can the point set's sinks work with this lake and this environment?

:func:`check_sinks` needs no network: it refuses what the point-set file alone already rules out (also refused
at load) and what depends on the lake URL and the machine. The DuckDB sink checks the rest live (DuckDB lists
the lake with its own credentials; the database name is free) when the run's first day opens, again before
anything is written.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from naia_backfill.errors import SinkConfigError
from naia_backfill.settings.combinations import sink_combination_problems
from naia_backfill.sinks.lake import DEFAULT_LAKE_URL

if TYPE_CHECKING:
    from naia_backfill.settings import PointSet

DEFAULT_DUCKDB_PATH = "data/naia.duckdb"


def check_sinks(point_set: PointSet, lake_url: str | None = None, duckdb_path: str | None = None) -> None:
    """Raise :class:`SinkConfigError` (a PointSetError: exit 2) saying what to change when the point set's sinks
    cannot work with the lake at ``lake_url`` (default ``$NAIA_LAKE_URL``, else ./data/lake)."""
    where = point_set.path or point_set.name
    problems = sink_combination_problems(point_set.sinks, point_set.source)
    url = lake_url or os.environ.get("NAIA_LAKE_URL") or DEFAULT_LAKE_URL
    duck = point_set.sink("duckdb")
    if duck is not None:
        problems += _duckdb_problems(getattr(duck, "mode", "view"), url, duckdb_path)
    if problems:
        raise SinkConfigError(f"{where}: " + "; ".join(problems))


def _duckdb_problems(mode: str, lake_url: str, duckdb_path: str | None) -> list[str]:
    problems = []
    database = Path(duckdb_path or os.environ.get("NAIA_DUCKDB_PATH") or DEFAULT_DUCKDB_PATH).expanduser()
    if database.is_dir():
        problems.append(f"the DuckDB database {database} is a folder: set NAIA_DUCKDB_PATH to a file path")
    if mode == "view" and lake_url.startswith("s3://"):
        from naia_backfill.sinks.duckdb_conn import aws_credentials, httpfs_file

        try:
            httpfs_file()
            aws_credentials()
        except SinkConfigError as e:
            problems.append(f"the duckdb sink's view over {lake_url}: {e}")
    return problems
