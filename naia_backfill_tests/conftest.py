from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working folder with its own Dagster instance, lake and DuckDB file."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("NAIA_LAKE_URL", str(tmp_path / "lake"))
    monkeypatch.setenv("NAIA_DUCKDB_PATH", str(tmp_path / "naia.duckdb"))
    monkeypatch.delenv("NAIA_POINT_SETS", raising=False)
    return tmp_path


def write_point_set(folder: Path, name: str, **overrides: object) -> Path:
    """A small synthetic point set file."""
    import yaml

    doc: dict[str, object] = {
        "name": name,
        "source": {"kind": "synthetic", "points": 6, "interval_seconds": 600, "seed": 7},
        "points": {"name_filter": "SYN*"},
        "start_date": "2024-01-01",
        "sinks": ["parquet", "duckdb"],
        "chunk_days": 3,
    }
    doc.update(overrides)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


UTC = dt.UTC


def run_job(point_set_file: Path, days: list[dt.date], tags: dict[str, str] | None = None, **kwargs: object):
    """Run the point set's job in-process over ``days`` (as the CLI does) against $DAGSTER_HOME's instance."""
    import dagster as dg

    from naia_backfill.cli.runner import range_tags
    from naia_backfill.lib.definitions import build_definitions
    from naia_backfill.settings import load_point_set

    ps = load_point_set(point_set_file)
    job = build_definitions({ps.name: ps}).resolve_job_def(f"{ps.name}_job")
    instance = dg.DagsterInstance.get()
    result = job.execute_in_process(
        instance=instance, tags={**range_tags(days), **(tags or {})}, raise_on_error=False, **kwargs
    )
    return result, instance
