from __future__ import annotations

import logging

import pytest
from click.testing import CliRunner

from naia_backfill.dev.services import manager
from naia_backfill.dev.services.cli import services
from naia_backfill.dev.services.core import Layout, log


@pytest.fixture
def runner(layout: Layout, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setattr(log, "handlers", [])
    monkeypatch.setattr(log, "propagate", True)
    monkeypatch.setattr(log, "level", logging.NOTSET)
    monkeypatch.setenv("NAIA_SERVICES_DIR", str(layout.home))
    monkeypatch.setenv("NAIA_SERVICES_PORT_OFFSET", "0")
    return CliRunner()


def test_env_prints_sourceable_exports_of_the_named_services(runner: CliRunner, layout: Layout):
    result = runner.invoke(services, ["env", "mongodb", "postgres"])
    assert result.exit_code == 0, result.output
    assert result.stdout == manager.render_env(manager.environment(["mongodb", "postgres"], layout))
    assert result.stdout.startswith("export NAIA_MONGODB_URI=")


def test_status_of_nothing_running_exits_1(runner: CliRunner):
    result = runner.invoke(services, ["status", "kafka", "mongodb"])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == ["kafka: stopped", "mongodb: stopped"]


def test_down_of_what_is_not_running_says_so(runner: CliRunner):
    result = runner.invoke(services, ["down", "mongodb"])
    assert result.exit_code == 0
    assert result.stderr == "[services] mongodb: not running\n"


def test_an_unknown_service_is_a_usage_error(runner: CliRunner):
    result = runner.invoke(services, ["up", "redis"])
    assert result.exit_code == 2
    assert "'redis' is not one of" in result.stderr
