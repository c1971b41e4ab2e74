"""Charts from a Daytona sandbox: figures and image files downloaded in one request, as PNG."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tasks.sandbox.base import Chart
from tasks.sandbox.daytona.client import translate
from tasks.sandbox.daytona.harness import Harvest
from tasks.sandbox.images import MAX_FILE_BYTES, as_png, png_name


class ChartFetcher:
    """Downloads what a run left; figures are numbered across the session, as locally."""

    def __init__(self, require: Callable[[], Any], work_dir: str):
        self._require = require  # the live SDK sandbox, or a SandboxError once it is torn down
        self._work_dir = work_dir
        self._figures = 0

    def figure(self, png: bytes) -> Chart:
        self._figures += 1
        return Chart(f"figure-{self._figures}.png", png, "figure")

    def fetch(self, harvest: Harvest) -> tuple[list[Chart], list[str]]:
        """The harvested figures and images within the size limit, and a note for each one left out."""
        from daytona import DaytonaError, FileDownloadRequest

        work = self._work_dir
        notes: list[str] = []
        wanted: list[tuple[str, str]] = []  # (path in the sandbox, chart name or "" for a figure)
        for path, size in [(p, s) for p, s in harvest.figures] + [(f"{work}/{p}", s) for p, s in harvest.files]:
            shown = path.removeprefix(f"{work}/")
            if size > MAX_FILE_BYTES:
                notes.append(f"{shown}: not returned as a chart, {size:,} bytes is over {MAX_FILE_BYTES:,}")
            else:
                wanted.append((path, "" if shown.startswith(".analyst/") else shown))
        if not wanted:
            return [], notes
        try:
            replies = self._require().fs.download_files([FileDownloadRequest(source=p) for p, _ in wanted])
        except DaytonaError as exc:
            return [], notes + [f"could not download the charts: {translate(exc, 'downloading charts')}"]
        charts: list[Chart] = []
        for (_, name), reply in zip(wanted, replies, strict=True):
            if reply.error or not isinstance(reply.result, bytes):
                notes.append(f"{name or 'a figure'}: could not be downloaded ({reply.error})")
            elif not name:
                charts.append(self.figure(reply.result))
            else:
                try:
                    png = as_png(reply.result)
                except Exception as exc:  # noqa: BLE001 - any decoder error: reported, never fatal
                    notes.append(f"{name}: not returned as a chart, cannot read it as an image ({exc})")
                    continue
                charts.append(Chart(png_name(name, {c.name for c in charts}), png, "file"))
        return charts, notes
