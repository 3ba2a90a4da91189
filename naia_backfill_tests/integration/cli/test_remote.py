"""The backfill commands against a real `dagster dev` (webserver and daemon): launch, follow, status, cancel."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from naia_backfill.cli import cli
from naia_backfill.cli.graphql import backfill_status
from naia_backfill_tests.conftest import write_point_set
from naia_backfill_tests.integration.dagster_dev import DagsterDev, dagster_dev

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterDev]:
    folder = tmp_path_factory.mktemp("dagster_dev")
    point_sets = folder / "point_sets"
    point_sets.mkdir()
    write_point_set(point_sets, "plant", chunk_days=2)
    with dagster_dev(folder, point_sets, assets=["plant"]) as running:
        yield running


@pytest.fixture
def invoke(server: DagsterDev, monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)

    def call(*args: str) -> Any:
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)

    return call


def test_backfill_follow_to_the_end_in_chunk_runs(server: DagsterDev, invoke: Any):
    res = invoke("backfill", "plant", "--start", "2024-01-01", "--end", "2024-01-03")
    assert res.exit_code == 0, res.output
    backfill_id = res.stdout.strip()
    assert backfill_id and "\n" not in backfill_id

    res = invoke("status", backfill_id, "--follow", "--interval", "1")
    assert res.exit_code == 0, f"{res.output}\n{server.log_tail()}"
    assert "all 3 day(s) of plant done" in res.output

    st = backfill_status(server.url, backfill_id)
    assert st.status == "COMPLETED_SUCCESS" and (st.days_total, st.days_done, st.failed_days) == (3, 3, [])
    assert sorted((r.first_day, r.last_day) for r in st.runs) == [  # chunk_days 2: 2 days + 1 day
        ("2024-01-01", "2024-01-02"), ("2024-01-03", "2024-01-03")]
    assert {r.status for r in st.runs} == {"SUCCESS"}
    assert st.samples > 0 and st.samples_per_s is not None and st.samples_per_s > 0

    objects = sorted(server.lake.rglob("*.parquet"))
    assert [p.relative_to(server.lake).as_posix() for p in objects] == [
        f"point_set=plant/date=2024-01-0{d}/all.parquet" for d in (1, 2, 3)]
    rows = [pq.read_metadata(p).num_rows for p in objects]
    assert all(n > 0 for n in rows) and sum(rows) == st.samples

    res = invoke("status")
    assert res.exit_code == 0 and backfill_id in res.output and "COMPLETED_SUCCESS" in res.output

    res = invoke("cancel", backfill_id)
    assert res.exit_code == 2
    assert f"backfill {backfill_id} already ended (COMPLETED_SUCCESS); nothing to cancel" in res.output
    res = invoke("cancel", "nosuchid")
    assert res.exit_code == 2 and f"no backfill with id 'nosuchid' at {server.url}" in res.output
    res = invoke("retry", backfill_id)
    assert res.exit_code == 2 and "nothing to retry: all 3 day(s)" in res.output
    assert backfill_status(server.url, backfill_id).status == "COMPLETED_SUCCESS"  # cancel changed nothing
