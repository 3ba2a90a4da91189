from __future__ import annotations

import socket
from pathlib import Path

import pytest

from naia_backfill.dev.services.core import (
    DEFAULT_TIMEOUT_S,
    Layout,
    ServiceError,
    log_tail,
    port_open,
    repo_root,
    require_free_ports,
)


def test_layout_defaults_to_the_checkouts_services_folder():
    layout = Layout.from_env({})
    assert layout.root == repo_root()
    assert (layout.root / "scripts" / "services.sh").is_file()
    assert layout.home == layout.root / ".services"
    assert (layout.port_offset, layout.timeout) == (0, DEFAULT_TIMEOUT_S)
    assert layout.port(19092) == 19092
    assert layout.folder("kafka") == layout.home / "kafka"


def test_layout_reads_folder_offset_and_timeout_from_the_environment(tmp_path: Path):
    env = {"NAIA_SERVICES_DIR": str(tmp_path), "NAIA_SERVICES_PORT_OFFSET": "1000", "NAIA_SERVICES_TIMEOUT": "7.5"}
    layout = Layout.from_env(env)
    assert (layout.home, layout.port_offset, layout.timeout) == (tmp_path, 1000, 7.5)
    assert layout.port(27018) == 28018


@pytest.mark.parametrize("name", ["NAIA_SERVICES_PORT_OFFSET", "NAIA_SERVICES_TIMEOUT"])
def test_layout_rejects_a_knob_that_is_not_a_number(name: str):
    with pytest.raises(ServiceError, match=name):
        Layout.from_env({name: "soon"})


def test_an_offset_beyond_the_port_range_is_refused(tmp_path: Path):
    layout = Layout(root=tmp_path, home=tmp_path, port_offset=60000)
    with pytest.raises(ServiceError, match="not a TCP port"):
        layout.port(19092)


def test_port_open_tells_a_listener_from_a_closed_port(listening: int):
    assert port_open(listening)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    assert not port_open(closed)


def test_a_taken_port_is_refused_with_a_hint(listening: int):
    with pytest.raises(ServiceError) as refused:
        require_free_ports("kafka", [listening])
    message = str(refused.value)
    assert f"127.0.0.1:{listening} is already in use" in message
    assert "scripts/services.sh env" in message


def test_log_tail_shows_the_last_lines_of_each_non_empty_log(tmp_path: Path):
    first, empty, missing = tmp_path / "server.log", tmp_path / "empty.log", tmp_path / "missing.log"
    first.write_text("".join(f"line {i}\n" for i in range(100)))
    empty.write_text("\n")
    tail = log_tail([first, empty, missing], lines=3)
    assert tail == f"---- last lines of {first} ----\nline 97\nline 98\nline 99"
