"""The UI path of the card, in a real browser: `dagster dev` of this workspace, Debian's Chromium driven by
Playwright, and a user who opens the `demo` asset, sees its schedule, and launches a partition backfill of a
range that spans two chunks from the Materialize dialog by clicking and typing.

The test waits until the asset's Partitions tab shows every day of the range materialized, then checks what
landed: one lake object per day whose row count is the day's ``samples`` metadata, and one run per chunk of
``chunk_days`` days. Only the checks read GraphQL; the launch goes through the page. Screenshots of every step
are kept (see browser.py).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
from playwright.sync_api import Page, expect

from naia_backfill.lib.partitions import contiguous_chunks
from naia_backfill.settings.loading import load_point_sets
from naia_backfill.sinks.layout import object_key
from naia_backfill_tests.integration.dagster_dev import DagsterDev, dagster_dev
from naia_backfill_tests.integration.ui.browser import Steps, chromium

pytestmark = pytest.mark.integration
log = logging.getLogger(__name__)

POINT_SET = "demo"
FIRST, LAST = dt.date(2024, 1, 1), dt.date(2024, 2, 1)  # demo's chunk_days is 30: runs of 30 and 2 days
DAYS = [FIRST + dt.timedelta(days=i) for i in range((LAST - FIRST).days + 1)]
SELECTION = f"[{FIRST}...{LAST}]"  # the dialog's own notation for a range of partitions
BACKFILL_TIMEOUT = 300.0  # 32 days through one pool slot on 2 shared cores: 1.5-2.5 min seen at load 4-15
RUN_ENDED = {"SUCCESS", "FAILURE", "CANCELED"}
BACKFILL_FAILED = {"COMPLETED_FAILED", "FAILED", "CANCELED", "CANCELING", "FAILING"}
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"

BACKFILL = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill {
      status
      runs { runId status tags { key value }
             assetMaterializations { partition metadataEntries { label ... on IntMetadataEntry { intValue } } } }
    }
    ... on Error { message }
    ... on PythonError { message }
  }
}
"""


def graphql(url: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{url}/graphql", json={"query": query, "variables": variables}, timeout=30)
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def partition_count(page: Page, state: str) -> int | None:
    """The number the Partitions tab shows beside ``state`` (Materialized, Missing, Failed...)."""
    label = page.get_by_text(re.compile(rf"^{state} \(\d+\)$")).first
    if not label.is_visible():
        return None
    match = re.search(r"\((\d+)\)", label.inner_text())
    return int(match.group(1)) if match else None


def wait_materialized_in_page(page: Page, days: int) -> None:
    """Poll the Partitions tab (filtered to the range) until every day shows as materialized."""
    deadline = time.monotonic() + BACKFILL_TIMEOUT
    seen: tuple[int | None, ...] = ()
    while time.monotonic() < deadline:
        seen = tuple(partition_count(page, s) for s in ("Materialized", "Missing", "Failed"))
        assert not seen[2], f"the Partitions tab shows {seen[2]} failed days"
        if seen[:2] == (days, 0):
            return
        page.wait_for_timeout(3000)
    raise AssertionError(f"after {BACKFILL_TIMEOUT:g}s the page shows materialized/missing/failed = {seen}")


def wait_runs_ended(url: str, backfill_id: str) -> dict[str, Any]:
    """The backfill once its runs have ended. Not its own end: the daemon marks that up to a tick (30 s) later,
    and with every day materialized it requests no further run."""
    deadline = time.monotonic() + BACKFILL_TIMEOUT
    node: dict[str, Any] = {}
    while time.monotonic() < deadline:
        node = graphql(url, BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]
        assert node.get("status") not in BACKFILL_FAILED, node
        if node.get("runs") and all(run["status"] in RUN_ENDED for run in node["runs"]):
            return node
        time.sleep(2)
    raise AssertionError(f"backfill {backfill_id}: runs not ended after {BACKFILL_TIMEOUT:g}s: {node}")


def check_schedule(steps: Steps) -> None:
    """The asset page lists the daily schedule; the schedule page targets the job that materializes `demo`."""
    with steps.step("asset page lists its schedule and job") as page:
        expect(page.get_by_text("Automation details")).to_be_visible()
        expect(page.get_by_role("link", name=f"{POINT_SET}_job", exact=True)).to_be_visible()
        expect(page.locator(f'a[href$="/schedules/{POINT_SET}_daily"]')).to_be_visible()
    with steps.step("schedule page names its target") as page:
        page.locator(f'a[href$="/schedules/{POINT_SET}_daily"]').click()
        expect(page.get_by_text(f"{POINT_SET}_daily", exact=False).first).to_be_visible()
        target = page.get_by_role("row").filter(has=page.get_by_role("cell", name="Target", exact=True))
        expect(target.get_by_role("link", name=f"{POINT_SET}_job", exact=True)).to_be_visible()
    with steps.step("target job materializes the asset") as page:
        target.get_by_role("link", name=f"{POINT_SET}_job", exact=True).click()
        expect(page.get_by_role("heading", name=f"{POINT_SET}_job", exact=True)).to_be_visible()
        asset_link = page.locator(f'a[href="/assets/{POINT_SET}"]').filter(has_text=re.compile(rf"^{POINT_SET}$"))
        expect(asset_link.first).to_be_visible()


def launch_from_dialog(steps: Steps) -> str:
    """Materialize… → all partitions → type the range → Launch backfill; the backfill's id from the toast."""
    with steps.step("materialize dialog with the range") as page:
        page.get_by_role("button", name="Materialize…").click()
        dialog = page.get_by_role("dialog").filter(has_text=f"Launch runs to materialize {POINT_SET}")
        expect(dialog.get_by_role("button", name="Launch backfill")).to_be_visible()
        # The dialog starts with the last 90 days and offers the rest: demo's days since 2024 are always more.
        dialog.get_by_role("button", name="Show all partitions").click()
        expect(dialog.get_by_role("button", name="All time")).to_be_visible()
        selection = dialog.get_by_role("textbox").first
        selection.click()
        selection.press("ControlOrMeta+a")
        selection.press_sequentially(SELECTION, delay=20)
        selection.press("Enter")
        expect(dialog.get_by_text(f"{len(DAYS)} partitions", exact=True)).to_be_visible()
    with steps.step("backfill launched") as page:
        dialog.get_by_role("button", name="Launch backfill").click()
        toast = page.get_by_text(re.compile(r"^Created backfill \w+$"))
        expect(toast).to_be_visible()
        backfill_id = toast.inner_text().split()[-1]
    return backfill_id


def check_lake(server: DagsterDev, node: dict[str, Any]) -> None:
    """One object per day in the lake, each with as many rows as its materialization's ``samples``."""
    objects = sorted(p.relative_to(server.lake).as_posix() for p in server.lake.rglob("*.parquet"))
    assert objects == sorted(object_key(POINT_SET, day) for day in DAYS)
    samples = {event["partition"]: entry["intValue"]
               for run in node["runs"] for event in run["assetMaterializations"]
               for entry in event["metadataEntries"] if entry["label"] == "samples"}
    assert sorted(samples) == [d.isoformat() for d in DAYS]
    rows = {day.isoformat(): pq.read_metadata(server.lake / object_key(POINT_SET, day)).num_rows for day in DAYS}
    assert all(n > 0 for n in rows.values()) and rows == samples


def check_runs(node: dict[str, Any], chunks: list[list[dt.date]]) -> None:
    """The backfill became one successful run per chunk, each over its chunk's days."""
    ranges = sorted((tags.get(RANGE_START), tags.get(RANGE_END)) for tags in (
        {t["key"]: t["value"] for t in run["tags"]} for run in node["runs"]))
    assert ranges == [(c[0].isoformat(), c[-1].isoformat()) for c in chunks]
    assert {run["status"] for run in node["runs"]} == {"SUCCESS"}


def browse_and_check(server: DagsterDev, steps: Steps, chunks: list[list[dt.date]], started: float) -> None:
    """The user's path through the UI, then what landed."""
    with steps.step("asset page") as page:
        page.goto(f"{server.url}/assets/{POINT_SET}")
        expect(page.get_by_role("button", name="Materialize…")).to_be_visible()
    check_schedule(steps)
    with steps.step("back to the asset") as page:
        page.goto(f"{server.url}/assets/{POINT_SET}")
        expect(page.get_by_role("button", name="Materialize…")).to_be_visible()
    backfill_id = launch_from_dialog(steps)

    with steps.step("partitions tab filtered to the range") as page:
        page.get_by_role("tab", name="Partitions").click()
        selection = page.get_by_role("textbox", name=re.compile(r"^ex: "))
        selection.click()
        selection.press("ControlOrMeta+a")
        selection.press_sequentially(SELECTION, delay=20)
        selection.press("Enter")
        expect(page.get_by_text(f"{len(DAYS)} Partitions Selected")).to_be_visible()
    with steps.step("every day materialized") as page:
        wait_materialized_in_page(page, len(DAYS))

    node = wait_runs_ended(server.url, backfill_id)
    log.info("backfill %s: runs ended after %.1fs", backfill_id, time.monotonic() - started)
    with steps.step("backfill runs") as page:
        page.goto(f"{server.url}/runs/b/{backfill_id}?tab=runs")
        expect(page.get_by_role("link", name=re.compile(r"^run [0-9a-f]{8}$"))).to_have_count(len(chunks))
        expect(page.get_by_text("Success", exact=True)).to_have_count(len(chunks))
    check_runs(node, chunks)
    check_lake(server, node)


def test_backfill_launched_in_the_browser_lands_in_the_lake(tmp_path: Path):
    point_sets = tmp_path / "point_sets"  # the bundled `demo` only
    point_sets.mkdir()
    chunks = contiguous_chunks(DAYS, load_point_sets()[POINT_SET].chunk_days)
    assert len(chunks) == 2, f"the range must span two chunks of {POINT_SET}'s chunk_days, not {len(chunks)}"
    started = time.monotonic()
    with dagster_dev(tmp_path / "dagster", point_sets, assets=[POINT_SET]) as server, \
            chromium(tmp_path / "chromium-profile") as steps:
        log.info("dagster dev ready and chromium started after %.1fs", time.monotonic() - started)
        try:
            # The "Join the Dagster community" dialog of a fresh instance pops up on a timer; appearing while the
            # range is typed it took keystrokes (a partial range, a syntax error). Mark it seen, as Skip does; the
            # page's handler for it stays as a fallback.
            graphql(server.url, "mutation { setNuxSeen }", {})
            browse_and_check(server, steps, chunks, started)
        finally:  # beside the screenshots, what the server said
            shutil.copyfile(server.log, steps.folder / "dagster_dev.log")
