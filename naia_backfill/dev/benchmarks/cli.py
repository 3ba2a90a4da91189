"""`naia-backfill bench NAME`: each benchmark prints throughput, peak memory, the command that produced the
figures, and an alternative (or the limit) measured in the same run. Benchmarks load on first use."""

from __future__ import annotations

import importlib

import click

BENCHMARKS = {
    "all": "naia_backfill.dev.benchmarks.all",
    "synthetic": "naia_backfill.dev.benchmarks.synthetic_parquet",
    "pi-parse": "naia_backfill.dev.benchmarks.pi_parse",
    "pi-end-to-end": "naia_backfill.dev.benchmarks.pi_end_to_end",
    "streaming": "naia_backfill.dev.benchmarks.streaming",
    "run-path": "naia_backfill.dev.benchmarks.run_path",
    "consumer": "naia_backfill.dev.benchmarks.consumer",
    "ace-end-to-end": "naia_backfill.dev.benchmarks.ace_end_to_end",
    "mongodb": "naia_backfill.dev.benchmarks.mongodb",
    "s3-lake": "naia_backfill.dev.benchmarks.s3_lake",
    "pg-readers": "naia_backfill.dev.benchmarks.pg_readers",
    "pg-source": "naia_backfill.dev.benchmarks.pg_source",
    "concurrency": "naia_backfill.dev.benchmarks.concurrency",
}


class _Benchmarks(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(BENCHMARKS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = BENCHMARKS.get(cmd_name)
        return importlib.import_module(module).command if module else None


@click.group("bench", cls=_Benchmarks)
def bench() -> None:
    """Benchmarks: throughput and peak memory against an alternative measured in the same run."""
