"""Debian's Chromium driven by Playwright for the UI tests, with a screenshot after every step.

The browser is the system's ``/usr/bin/chromium`` (scripts/install-browser.sh installs it), never one that
Playwright downloads. It runs headless with a fresh profile folder and with the background services that call
out to Google switched off: this machine has no outside network, and Chromium's attempts would only cost time.
Every step of a test is a :meth:`Steps.step`; each leaves ``NN-name.png`` in the artifacts folder
(``$NAIA_TEST_ARTIFACTS``, default ``.artifacts/ui`` in the repository), and a failing step leaves
``NN-name-FAILED.png`` and fails the test naming that file.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, expect, sync_playwright

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--no-first-run", "--disable-sync", "--disable-quic",
]
# The webserver, the daemon, the code server, the runs and Chromium share two loaded cores: a click can take
# seconds to render its answer.
ACTION_TIMEOUT_MS = 90_000
VIEWPORT = {"width": 1600, "height": 1000}


def artifacts_folder() -> Path:
    """Where screenshots go: ``$NAIA_TEST_ARTIFACTS`` or ``.artifacts/ui`` in the repository (git-ignored),
    without the step screenshots of an earlier run."""
    folder = Path(os.environ.get("NAIA_TEST_ARTIFACTS") or ROOT / ".artifacts" / "ui")
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("[0-9][0-9]-*.png"):
        old.unlink()
    return folder


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


@dataclass
class Steps:
    """Numbered test steps on one page, each ending in a full-page screenshot."""

    page: Page
    folder: Path
    taken: list[Path] = field(default_factory=list)

    def shot(self, name: str, suffix: str = "") -> Path:
        path = self.folder / f"{len(self.taken) + 1:02d}-{_slug(name)}{suffix}.png"
        self.page.screenshot(path=path, full_page=True)
        self.taken.append(path)
        return path

    @contextmanager
    def step(self, name: str) -> Iterator[Page]:
        """Run a step; on any failure keep a screenshot and fail the test with its path."""
        started = time.monotonic()
        try:
            yield self.page
        except (AssertionError, PlaywrightError, TimeoutError, pytest.fail.Exception) as e:
            try:
                path = self.shot(name, "-FAILED")
            except PlaywrightError as shot_error:  # the page itself is gone: say so instead
                path = Path(f"(no screenshot: {shot_error})")
            # Playwright's message ends in the page's whole accessibility tree: its head is what tells.
            pytest.fail(f"step {name!r} failed: {str(e)[:3000]}\nscreenshot: {path}", pytrace=False)
        path = self.shot(name)
        log.info("step %r: %.1fs, %s", name, time.monotonic() - started, path.name)


def dismiss_welcome(page: Page) -> None:
    """Skip the "Join the Dagster community" dialog whenever a fresh instance shows it over the page."""
    welcome = page.get_by_role("dialog").filter(has_text="Join the Dagster community")
    page.add_locator_handler(welcome, lambda dialog: dialog.get_by_role("button", name="Skip").click())


@contextmanager
def chromium(profile: Path) -> Iterator[Steps]:
    """Headless Debian Chromium with a fresh profile in ``profile``; yields the steps of its one page."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: run scripts/install-browser.sh (Debian's chromium)", pytrace=False)
    profile.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, viewport=VIEWPORT,
        )
        try:
            context.set_default_timeout(ACTION_TIMEOUT_MS)
            expect.set_options(timeout=ACTION_TIMEOUT_MS)
            page = context.pages[0] if context.pages else context.new_page()
            dismiss_welcome(page)
            yield Steps(page, artifacts_folder())
        finally:
            context.close()
