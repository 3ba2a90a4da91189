"""Smoke test of `naia-backfill bench pi-end-to-end`: the naia variant only, tiny scale, no timing assertions, no dlt."""

from __future__ import annotations

import pytest

from naia_backfill.dev.benchmarks import pi_end_to_end as bench
from naia_backfill.dev.simulators.pi_web_api.simulator import PiSimulator

pytestmark = pytest.mark.integration


def test_naia_variant_lands_every_sample_the_simulator_serves(capsys):
    results, truth, command = bench.run(20, 1, "naia")

    sim = PiSimulator(seed=bench.SEED, data_server=bench.DATA_SERVER, points=bench._points(20))
    start, end = bench._window(1)
    expected = sim.truth([p.name for p in sim.points], start, end).num_rows
    assert expected == truth == 20 * 1440  # Float32 points, one event a minute, no gaps
    assert [r["variant"] for r in results] == ["naia"]
    assert results[0]["samples"] == expected
    assert results[0]["peak_rss_mb"] > 0 and results[0]["cpu_seconds"] > 0
    assert command == "naia-backfill bench pi-end-to-end --points 20 --days 1 --only naia"


def test_report_prints_the_table_and_the_command(capsys):
    assert bench.report(3, 1, "naia") == 0
    out = capsys.readouterr().out
    assert "naia-backfill bench pi-end-to-end --points 3 --days 1 --only naia" in out
    assert f"{3 * 1440:,}" in out
