"""`dagster dev` of this project's workspace as a test server, on 127.0.0.1 and a free port.

It gets its own Dagster instance, lake, DuckDB file and point sets in a folder of the test, runs in its own
process group with SIGINT (and SIGTERM) restored to their defaults (a shell that started pytest in the
background may have left them ignored, and `dagster dev` would then never stop), and is stopped with SIGINT to
the group, waiting for every process of the group to exit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from naia_backfill.dev.services.process import free_port, spawn_group, stop_group

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 300.0  # `dagster dev` takes about a minute on the 2-core development machines
STOP_TIMEOUT = 60.0

LOCATIONS = """
query { workspaceOrError { __typename ... on Workspace { locationEntries {
  name loadStatus locationOrLoadError { __typename ... on PythonError { message } }
} } } }
"""
ASSETS = "query { assetNodes { assetKey { path } } }"


@dataclass(frozen=True)
class DagsterDev:
    url: str
    folder: Path
    home: Path
    lake: Path
    duckdb: Path
    point_sets: Path
    log: Path

    def env(self) -> dict[str, str]:
        """The variables the server runs with; a test's own process needs them too for the CLI."""
        return {
            "DAGSTER_HOME": str(self.home),
            "NAIA_LAKE_URL": str(self.lake),
            "NAIA_DUCKDB_PATH": str(self.duckdb),
            "NAIA_POINT_SETS": str(self.point_sets),
            "NAIA_DAGSTER_URL": self.url,
        }

    def log_tail(self, lines: int = 60) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _wait_ready(server: DagsterDev, proc: subprocess.Popen[bytes], assets: list[str]) -> None:
    """Until the webserver answers, the code location is loaded and has ``assets``."""
    deadline = time.monotonic() + START_TIMEOUT
    problem = "no answer yet"
    with httpx.Client(timeout=10) as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"dagster dev exited with code {proc.returncode}:\n{server.log_tail()}")
            try:
                if http.get(f"{server.url}/server_info").status_code == 200:
                    entries = http.post(f"{server.url}/graphql", json={"query": LOCATIONS}).json()[
                        "data"]["workspaceOrError"]["locationEntries"]
                    loaded = [e for e in entries if e["loadStatus"] == "LOADED"]
                    errors = [e["locationOrLoadError"] for e in loaded
                              if e["locationOrLoadError"]["__typename"] == "PythonError"]
                    if errors:
                        pytest.fail(f"the code location failed to load: {errors[0]['message']}")
                    if entries and len(loaded) == len(entries):
                        nodes = http.post(f"{server.url}/graphql", json={"query": ASSETS}).json()["data"]["assetNodes"]
                        keys = {"/".join(n["assetKey"]["path"]) for n in nodes}
                        if set(assets) <= keys:
                            return
                        problem = f"assets {sorted(set(assets) - keys)} not loaded"
                    else:
                        problem = "code location loading"
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as e:
                problem = f"{type(e).__name__}: {e}"
            time.sleep(1)
    pytest.fail(f"dagster dev not ready after {START_TIMEOUT:g}s ({problem}):\n{server.log_tail()}")


@contextmanager
def dagster_dev(folder: Path, point_sets: Path, *, assets: list[str] | None = None) -> Iterator[DagsterDev]:
    """Run `dagster dev -w workspace.yaml` with its state under ``folder`` and the extra point sets in
    ``point_sets`` (a file or folder); ready once ``assets`` are loaded."""
    home = folder / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ROOT / "dagster.yaml", home / "dagster.yaml")
    server = DagsterDev(
        url=f"http://127.0.0.1:{free_port()}", folder=folder, home=home, lake=folder / "lake",
        duckdb=folder / "naia.duckdb", point_sets=point_sets, log=folder / "dagster_dev.log",
    )
    env = {**os.environ, **server.env(), "DAGSTER_TELEMETRY_DISABLED": "1"}
    port = server.url.rsplit(":", 1)[1]
    command = [sys.executable, "-m", "dagster", "dev", "-w", str(ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", port]
    proc = spawn_group(command, folder, env, server.log)
    try:
        _wait_ready(server, proc, assets or [])
        yield server
    finally:
        stop_group(proc, STOP_TIMEOUT)
