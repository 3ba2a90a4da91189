"""The ``simulate`` click group: its commands, their options and the errors they refuse to start with."""

from __future__ import annotations

from click.testing import CliRunner

from naia_backfill.dev.simulators.cli import simulate


def test_group_lists_the_three_simulators():
    result = CliRunner().invoke(simulate, ["--help"])
    assert result.exit_code == 0
    for command in ("pi-web-api", "ace-iot", "waqi"):
        assert command in result.output


def test_each_command_documents_host_and_port():
    for command, option in (("pi-web-api", "--max-returned-items"), ("ace-iot", "--rate-limit"), ("waqi", "--speed")):
        result = CliRunner().invoke(simulate, [command, "--help"])
        assert result.exit_code == 0 and "--host" in result.output and "--port" in result.output
        assert option in result.output


def test_bad_input_exits_2_before_serving():
    env = {"NAIA_TEST_UNSET": None}
    cases = [
        ["ace-iot", "--host", "0.0.0.0"],
        ["waqi", "--host", "192.168.1.5"],
        ["pi-web-api", "--host", "example.com"],
        ["ace-iot", "--token-env", "NAIA_TEST_UNSET"],
        ["waqi", "--token-env", "NAIA_TEST_UNSET"],
        ["pi-web-api", "--username", "reader", "--password-env", "NAIA_TEST_UNSET"],
        ["waqi", "--start", "not-a-date"],
    ]
    for args in cases:
        result = CliRunner().invoke(simulate, args, env=env)
        assert result.exit_code == 2, (args, result.output)
    loopback = CliRunner().invoke(simulate, ["ace-iot", "--host", "0.0.0.0"])
    assert "loopback" in loopback.output
