"""Smoke test of `naia-backfill bench ace-end-to-end`: the naia variant at a tiny share of the site and a short
rate-limited run; no timing assertions, no dlt."""

from __future__ import annotations

import pytest

from naia_backfill.dev.benchmarks import ace_end_to_end as bench

pytestmark = pytest.mark.integration


def test_naia_variant_lands_what_the_simulator_keeps():
    [result] = bench.throughput([0.01], 10_000, "naia")
    truth = result["truth"]
    assert truth["configured_points"] > 0 and truth["dropped_unconfigured"] > 0
    assert (result["samples"], result["dropped_null"], result["dropped_unconfigured"]) == (
        truth["samples"], truth["dropped_null"], truth["dropped_unconfigured"])
    assert result["peak_rss_mb"] >= result["import_rss_mb"] > 0


def test_rate_limited_run_never_exceeds_the_limit():
    r = bench.rate_limited(25.0, requests=4, per_seconds=10.0)
    assert r["requests"] >= 8 and len(r["periods"]) >= 2
    assert r["sliding_max"] <= 4 and max(r["periods"]) <= 4
