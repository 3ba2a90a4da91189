from __future__ import annotations

from naia_backfill.dev.services.base import Status


def test_status_lines():
    assert Status("kafka", "running", 12, "127.0.0.1:19092").line() == "kafka: running (pid 12) 127.0.0.1:19092"
    assert Status("s3", "unhealthy", 7, "http://x").line() == "s3: process 7 alive but not answering (http://x)"
    assert Status("mongodb", "stopped").line() == "mongodb: stopped"
    assert Status("postgres", "stopped", note="not installed").line() == "postgres: stopped (not installed)"
