"""Headless Debian Chromium driven by Playwright, for the UI test.

Playwright's driver ships in its wheel; the browser is the system's ``chromium`` (no download).
Requests to anything but this machine are refused: the V2 UI asks a third-party analytics host
(sr-client-cfg.amplitude.com) for its configuration, which offline can only fail, and with internet
would make the test depend on, and report to, a service that has nothing to do with it.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from PIL import Image
from playwright.sync_api import BrowserContext, Locator, Page, expect, sync_playwright

TIMEOUT_MS = 30_000  # per wait: a cold UI bundle on 2 busy cores takes a few seconds, not thirty
VIEWPORT = {"width": 1400, "height": 900}
MAX_SCREENSHOT_HEIGHT = 12_000
# The flags that keep a root, GPU-less, offline Chromium quiet; without the background-networking
# ones its connections to the closed internet pile up.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"


def screenshot_dir() -> Path:
    """Where screenshots go: ANALYST_UI_SCREENSHOTS, else tests/ui/screenshots/ (git-ignored)."""
    folder = Path(os.environ.get("ANALYST_UI_SCREENSHOTS") or SCREENSHOTS).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _leaves_this_machine(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in {"http", "https", "ws", "wss"} and parts.hostname not in _LOOPBACK


@contextmanager
def chromium(executable: str) -> Iterator[BrowserContext]:
    """A fresh headless Chromium profile (Playwright makes a temporary user-data-dir) that only
    reaches loopback."""
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=VIEWPORT)
            context.set_default_timeout(TIMEOUT_MS)
            context.route(_leaves_this_machine, lambda route: route.abort("blockedbyclient"))
            yield context
        finally:
            browser.close()


def full_page_screenshot(page: Page, path: Path) -> Path:
    """The whole page, including what sits below the fold of an inner scrolling panel.

    Playwright's ``full_page`` only grows to the document's height, but the Prefect UI scrolls
    its main panel inside a viewport-high layout: so the viewport is grown to the tallest
    scrolled content for the shot, then put back.
    """
    height = page.evaluate("""() => Math.max(document.documentElement.scrollHeight,
        ...[...document.querySelectorAll('*')]
            .filter(e => e.scrollHeight > e.clientHeight + 1 && /auto|scroll/.test(getComputedStyle(e).overflowY))
            .map(e => e.scrollHeight + e.getBoundingClientRect().top + window.scrollY))""")
    size = page.viewport_size or VIEWPORT
    page.set_viewport_size({"width": size["width"], "height": min(max(size["height"], int(height) + 1),
                                                                     MAX_SCREENSHOT_HEIGHT)})
    try:
        page.screenshot(path=path, full_page=True, animations="disabled")
    finally:
        page.set_viewport_size(size)
    return path


def _coloured_pixels(png: bytes, top: float) -> int:
    """Strongly coloured pixels (state colours, not greys or pale backgrounds) in the top part."""
    with Image.open(io.BytesIO(png)) as image:
        rgb = np.asarray(image.convert("RGB"))
    rgb = rgb[: int(rgb.shape[0] * top)]
    return int(np.count_nonzero(rgb.max(axis=2) - rgb.min(axis=2) > 80))


def wait_until_drawn(canvas: Locator, min_pixels: int = 500, top: float = 0.9) -> int:
    """Wait until a canvas shows at least ``min_pixels`` coloured pixels; returns how many it showed.

    The run graph is a WebGL canvas fed by a request and a layout worker after the page's network
    goes idle, so nothing in the DOM says it is drawn: its pixels do. Its bottom strip is coloured
    from the start and is left out (``top``). Each round is one screenshot of the canvas.
    """
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while True:
        shown = _coloured_pixels(canvas.screenshot(animations="disabled"), top)
        if shown >= min_pixels:
            return shown
        if time.monotonic() > deadline:
            raise AssertionError(f"the canvas showed {shown} coloured pixels after {TIMEOUT_MS / 1000:.0f} s, "
                                 f"not the {min_pixels} a drawn graph has")
