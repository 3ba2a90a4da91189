"""Which measures `naia-backfill bench all` knows, what each compares, what it needs, and which run by default.

A measure is a function ``run(scale) -> list[Row]`` named by import path (loaded on first use, like the
benchmarks themselves). It measures naia and its limit or peer in the same run and returns one
:class:`~naia_backfill.dev.benchmarks.measures.rows.Row` per comparison. Most run their standalone benchmark
(``command``) in a child process with ``--json`` and read its figures.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
from collections.abc import Callable, Sequence
from typing import Literal

from naia_backfill.dev.benchmarks.measures.rows import Row

ScaleName = Literal["tiny", "quick", "full"]
SCALES: tuple[ScaleName, ...] = ("tiny", "quick", "full")
PKG = "naia_backfill.dev.benchmarks.measures"
KAFKA_QUESTDB = ("NAIA_KAFKA_BOOTSTRAP", "NAIA_QUESTDB_HTTP")
S3 = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "NAIA_S3_BUCKET")
ENV_HINT = "set -a; . .services/env; set +a"


@dataclasses.dataclass(frozen=True)
class Scale:
    """How big a run is: ``tiny`` (a smoke test, seconds), ``quick`` (the default, minutes on 2 cores) or
    ``full`` (the issues' scales: 66M-sample days, 365-day runs, 10M-row tables); ``repeat`` runs of each."""

    name: ScaleName = "quick"
    repeat: int = 1

    def pick(self, tiny: object, quick: object, full: object) -> object:
        return {"tiny": tiny, "quick": quick, "full": full}[self.name]

    @property
    def timeout(self) -> float:
        """Seconds one benchmark process may take before it is stopped (and its measure fails)."""
        return float(self.pick(600, 1800, 4 * 3600)) * self.repeat


@dataclasses.dataclass(frozen=True)
class Measure:
    """One entry of the registry."""

    name: str
    target: str  # "module:function", the module under measures/ or a dotted path; ``function(scale) -> list[Row]``
    compares: str  # what against what, and the goals
    command: str  # the standalone benchmark behind it
    needs_env: tuple[str, ...] = ()
    needs_modules: tuple[str, ...] = ()
    dlt: bool = False  # its peer is dlt: runs with --dlt or when named with --only
    defaults: tuple[ScaleName, ...] = SCALES  # scales at which it runs without --only
    repeats_itself: bool = False  # alternates naia and peer ``scale.repeat`` times itself (shared setup)

    def function(self) -> Callable[[Scale], list[Row]]:
        module, name = self.target.split(":")
        return getattr(importlib.import_module(module if "." in module else f"{PKG}.{module}"), name)

    def missing(self) -> str | None:
        """What is missing to run it (service variables, packages), or None."""
        env = [v for v in self.needs_env if not os.environ.get(v, "").strip()]
        modules = [m for m in (*self.needs_modules, *(("dlt",) if self.dlt else ())) if not _importable(m)]
        parts = ([f"needs {', '.join(env)} ({ENV_HINT})"] if env else []) + (
            [f"needs {', '.join(modules)} (pip install -e '.[bench]')"] if modules else [])
        return "; ".join(parts) or None


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


MEASURES: dict[str, Measure] = {m.name: m for m in [
    Measure("synthetic", "synthetic:run",
            "synthetic -> Parquet day: streamed sink vs pandas whole day (samples/s); the sink alone vs pyarrow "
            "ParquetWriter on the same batches (CPU s, goal ≈ 1.0)",
            "naia-backfill bench synthetic --sink-alone"),
    Measure("checks", "checks:run",
            "a day's checks computed while it streams vs the copy (s, goal ≤ 10%); validate's re-read mode vs "
            "the copy (s)", "naia-backfill validate (re-read), the asset checks (streamed)"),
    Measure("run-path", "run_path:run",
            "naia-backfill run: peak RSS over baseline per day size (goal ≤ +200 MB) and flat from 0.66M to "
            "66M samples (≤ 1.10); fixed cost per day (goal ≤ 50 ms); Dagster's ms per event, SQLite and "
            "PostgreSQL", "naia-backfill bench run-path"),
    Measure("pi-parse", "pi:parse",
            "PI Web API response -> Arrow vs msgspec decode alone, samples per CPU-s on one core (goal ≥ 0.6)",
            "naia-backfill bench pi-parse", repeats_itself=True),
    Measure("pi-fetch", "pi:fetch",
            "PI Web API -> Parquet over HTTP vs a download-only client on the same requests (samples/s, "
            "goal ≥ 0.7); its peak RSS over baseline (goal ≤ +200 MB)",
            "naia-backfill bench pi-end-to-end --only naia --only download", repeats_itself=True),
    Measure("pi-dlt", "pi:dlt", "PI Web API -> Parquet vs dlt's REST API source (samples/s, goal ≥ 10x)",
            "naia-backfill bench pi-end-to-end --only naia --only dlt", dlt=True),
    Measure("streaming", "streaming:run",
            "Kafka producer (rows/s); consumer vs pipelined Sender.dataframe of the same rows (goal ≥ 0.8); "
            "direct QuestDB sink vs the same (goal ≈ 1.0)",
            "naia-backfill bench consumer, naia-backfill bench streaming", needs_env=KAFKA_QUESTDB,
            repeats_itself=True),
    Measure("ace", "ace:run", "ACE IoT -> Parquet vs dlt's REST API source (samples/s, goal ≥ 10x)",
            "naia-backfill bench ace-end-to-end --only naia/dlt", dlt=True),
    Measure("ace-rate", "ace:rate",
            "ACE IoT at 50 requests/min for 130 s: achieved / allowed (goal ≥ 0.95), never above",
            "naia-backfill bench ace-end-to-end --only rate", defaults=("full",)),
    Measure("mongodb", "mongodb:run", "MongoDB sink vs pymongo insert_many of pre-built documents (docs/s)",
            "naia-backfill bench mongodb --phases sink,insert_many", needs_env=("NAIA_MONGODB_URI",)),
    Measure("s3-lake", "s3_lake:run",
            "a day into the S3 lake (upload + verify) vs the local lake; its checks over S3 vs local",
            "naia-backfill bench s3-lake", needs_env=S3, repeats_itself=True),
    Measure("pg-readers", "pg:readers",
            "PostgreSQL day -> Parquet with the ADBC COPY reader vs the same reader discarding rows (rows/s)",
            "naia-backfill bench pg-readers --variant adbc-copy", needs_env=("NAIA_PG_DSN",),
            needs_modules=("adbc_driver_postgresql",), repeats_itself=True),
    Measure("pg-dlt", "pg:dlt", "PostgreSQL day -> Parquet, ADBC COPY reader vs dlt's sql_database (goal ≥ 5x)",
            "naia-backfill bench pg-readers --variant adbc-copy --variant dlt", needs_env=("NAIA_PG_DSN",),
            needs_modules=("adbc_driver_postgresql",), dlt=True),
    Measure("concurrency", "concurrency:run",
            "two point sets on the PostgreSQL-backed instance: concurrent vs sequential wall time",
            "naia-backfill bench concurrency", needs_env=("NAIA_PG_DSN",), needs_modules=("dagster_postgres",),
            defaults=("full",), repeats_itself=True),
]}


def not_chosen(measure: Measure, scale: ScaleName, only: Sequence[str] = (), skip: Sequence[str] = (),
               dlt: bool = False) -> str | None:
    """Why ``measure`` is left out of this run, or None: those named with ``only`` run whatever their defaults,
    else those that run by default at ``scale`` (dlt peers only with ``dlt``); never those in ``skip``."""
    if measure.name in skip:
        return "--skip"
    if only:
        return None if measure.name in only else "not named with --only"
    if measure.dlt and not dlt:
        return f"its peer is dlt: add --dlt (or --only {measure.name})"
    if scale not in measure.defaults:
        return f"runs by default at {'/'.join(measure.defaults)} scale: name it with --only {measure.name}"
    return None


def _check_names(only: Sequence[str], skip: Sequence[str]) -> None:
    unknown = sorted((set(only) | set(skip)) - set(MEASURES))
    if unknown:
        raise KeyError(f"unknown measure(s): {', '.join(unknown)}; known: {', '.join(MEASURES)}")


def select(scale: ScaleName, only: Sequence[str] = (), skip: Sequence[str] = (), dlt: bool = False) -> list[Measure]:
    """The measures to run, in registry order (see :func:`not_chosen`)."""
    _check_names(only, skip)
    return [m for m in MEASURES.values() if not_chosen(m, scale, only, skip, dlt) is None]


def plan(scale: ScaleName, only: Sequence[str] = (), skip: Sequence[str] = (),
         dlt: bool = False) -> list[tuple[Measure, str | None]]:
    """Every measure this run reports, in registry order, with why it is skipped (left out of this run, or a
    service variable or package missing) or None when it runs. With ``only``, just the measures named."""
    _check_names(only, skip)
    return [(m, not_chosen(m, scale, only, skip, dlt) or m.missing()) for m in MEASURES.values()
            if not only or m.name in only]
