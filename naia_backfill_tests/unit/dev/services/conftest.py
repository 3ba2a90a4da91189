from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from naia_backfill.dev.services.core import Layout, repo_root


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    """A private state folder; the ports are the defaults (nothing here starts a server on them)."""
    return Layout(root=repo_root(), home=tmp_path / ".services", timeout=5.0)


@pytest.fixture
def listening() -> Iterator[int]:
    """A port something listens on (127.0.0.1)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]
