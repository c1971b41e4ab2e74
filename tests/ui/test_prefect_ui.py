"""The default Prefect UI in a real headless Chromium, after the demo analysis ran on the local server:
the flow run's page shows the run and its task runs, and the report artifact shows every chart,
decoded. Full-page screenshots are kept (see tests/ui/browser.py for where)."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Locator, Page, expect
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

from tasks.prefect.artifacts import artifact_key
from tasks.reports.images import MAX_WIDTH
from tasks.reports.trends import trend_charts
from tests.conftest import system_command
from tests.ui.browser import chromium, full_page_screenshot, screenshot_dir, wait_until_drawn

pytestmark = pytest.mark.slow

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
# Every run has these steps; Prefect suffixes their task run names (validate-datasets-f23).
STEPS = ("load-config", "validate-datasets", "provision-sandbox", "upload-datasets", "collect-artifacts",
         "teardown-sandbox")
SCREENSHOTS = ("flow-run.png", "task-runs.png", "artifacts-tab.png", "report-artifact.png")


@pytest.fixture(scope="session")  # session-wide, so it is asked for before the session's Prefect server starts
def chromium_path() -> str:
    """Debian's chromium; missing, the test skips (fails in CI) before any server or run is started."""
    return system_command("chromium", "chromium")


@pytest.fixture
def demo_run(cli, prefect_api, tmp_path) -> dict:
    """`analyst run` on a copy of the demo config, replaying its transcript: the run's JSON summary."""
    folder = tmp_path / "configs"
    shutil.copytree(CONFIGS, folder, ignore=shutil.ignore_patterns("outputs"))
    result = cli("run", folder / "retail-sales.yaml", "--replay", folder / "retail-sales.transcript.json", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["status"] == "completed" and summary["charts"], summary
    return summary


DESCRIBE_IMAGES = """async imgs => {
    const decoded = await Promise.allSettled(imgs.map(i => i.decode()));
    return imgs.map((i, n) => ({alt: i.alt, scheme: i.src.slice(0, 22),
        decoded: decoded[n].status === "fulfilled", complete: i.complete,
        width: i.naturalWidth, height: i.naturalHeight,
        boxed: i.getBoundingClientRect().width > 0 && i.getBoundingClientRect().height > 0}));
}"""


def decoded_images(images: Locator, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Each image as the browser shows it, once decoded: decode() settles when the image is decoded and
    rejects if it cannot be. The UI can render the report again between counting its images and reading
    them (CI once read none in that moment), and a decoded image can still be waiting for its layout (CI
    once read every one with an empty box): it reads again until it finds as many as were counted, each
    laid out, or the time is up; the caller's assertions judge what it read last."""
    deadline = time.monotonic() + timeout
    while True:
        shown = images.evaluate_all(DESCRIBE_IMAGES)
        if (len(shown) == count and all(image["boxed"] for image in shown)) or time.monotonic() > deadline:
            return shown
        images.page.wait_for_timeout(100)


@contextmanager
def screenshot_after(page: Page, path: Path) -> Iterator[None]:
    """Screenshot the page once the checks in the block are done, and also when one fails: the
    picture of a failure is the useful one."""
    try:
        yield
    except BaseException:
        try:
            full_page_screenshot(page, path)
        except Exception as exc:  # noqa: BLE001 - keep the failing check's error, not this one
            print(f"could not save {path}: {exc}")
        raise
    full_page_screenshot(page, path)


def test_the_default_ui_shows_the_run_its_tasks_and_the_report_charts(chromium_path, demo_run, prefect_api,
                                                                       record_property) -> None:
    flow_run_id = demo_run["flow_run_id"]
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(flow_run_id)
        run_filter = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        task_runs = client.read_task_runs(flow_run_filter=run_filter)
        artifacts = [a for a in client.read_artifacts(flow_run_filter=run_filter) if a.key]
    names = {t.name for t in task_runs}
    assert {f"iteration-{n}" for n in range(1, demo_run["iterations"] + 1)} <= names, names
    assert all(any(n.startswith(step) for n in names) for step in STEPS), names
    report = next(a for a in artifacts if a.key == artifact_key(demo_run["analysis"], "report"))
    run_dir = Path(demo_run["run_dir"])
    # the trend chart too, when earlier demo runs on the session's server left a history with results
    charts = demo_run["charts"] + trend_charts(run_dir)

    # The link `analyst run` prints must open the UI a browser gets by default, not the other one.
    ui_url = demo_run["ui_url"]
    base = prefect_api.removesuffix("/api")
    ui_settings = httpx.get(f"{base}/ui-settings", trust_env=False).raise_for_status().json()
    default_base = ui_settings[f"{ui_settings['default_ui']}_base_url"].rstrip("/")
    assert urlsplit(ui_url).path == f"{default_base}/runs/flow-run/{flow_run_id}", (ui_url, ui_settings)

    shots = screenshot_dir()
    for name in SCREENSHOTS:  # a stale picture from an earlier run must not pass for this one's
        (shots / name).unlink(missing_ok=True)
    print(f"UI screenshots in {shots}")
    record_property("screenshots", str(shots))  # in the JUnit XML, for CI
    with chromium(chromium_path) as browser:
        page = browser.new_page()
        page.goto(ui_url)
        panel = page.get_by_role("tabpanel")

        with screenshot_after(page, shots / SCREENSHOTS[0]):
            # The page header: breadcrumb "Runs > <run name>", then the state badge and the task count.
            expect(page.locator('[data-slot="breadcrumb-page"]')).to_have_text(flow_run.name)
            header_badge = page.locator('nav[aria-label="breadcrumb"]:has([data-slot="breadcrumb-page"]) + div '
                                        '[data-slot="badge"]')
            expect(header_badge).to_have_text(flow_run.state.name)
            expect(page.get_by_text(f"{len(task_runs)} Task runs").first).to_be_visible()
            wait_until_drawn(page.locator("canvas").first)  # the run graph, with a bar per task run

        with screenshot_after(page, shots / SCREENSHOTS[1]):
            page.get_by_role("tab", name="Task Runs").click()
            for task_run in task_runs:
                link = page.locator(f'a[href$="/runs/task-run/{task_run.id}"]')  # `has=` wants it unanchored
                card = panel.locator("ul > li").filter(has=link)
                expect(card.locator(link)).to_have_text(task_run.name)
                expect(card).to_contain_text(task_run.state.name)

        with screenshot_after(page, shots / SCREENSHOTS[2]):
            page.get_by_role("tab", name="Artifacts").click()
            for artifact in artifacts:
                expect(panel.locator(f'a[href$="/artifacts/artifact/{artifact.id}"]')).to_contain_text(artifact.key)

        page.locator(f'a[href$="/artifacts/artifact/{report.id}"]').click()
        expect(page).to_have_url(re.compile(f"/artifacts/artifact/{report.id}"))
        with screenshot_after(page, shots / SCREENSHOTS[3]):
            markdown = page.get_by_test_id("markdown-display")
            expect(markdown.locator("h1").first).to_have_text(demo_run["analysis"])
            images = markdown.locator("img")
            expect(images).to_have_count(len(charts))
            shown = decoded_images(images, len(charts))
    expected: list[dict[str, Any]] = []
    for chart in charts:
        with Image.open(run_dir / chart) as png:
            width, height = png.size
        shrunk = min(width, MAX_WIDTH)  # wider charts are embedded at MAX_WIDTH (tasks/reports/images.py)
        expected.append({"alt": Path(chart).stem, "scheme": "data:image/png;base64,", "decoded": True,
                         "complete": True, "width": shrunk, "height": round(height * shrunk / width), "boxed": True})
    assert sorted(shown, key=lambda i: i["alt"]) == sorted(expected, key=lambda i: i["alt"])
    for name in SCREENSHOTS:
        assert (shots / name).stat().st_size > 0, name
