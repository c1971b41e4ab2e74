"""Charts as base64 data URIs, shrunk to fit a byte budget.

Prefect Cloud refuses request bodies over 5 MiB, and a chart saved at 300 dpi can be several MiB on
its own, so every embedded chart goes through here and the caller decides what to drop.
"""

from __future__ import annotations

import base64
from pathlib import Path

from tasks import image_safety
from tasks.image_safety import MiB

MAX_WIDTH = 1000  # wider than any artifact or report column, so nothing visible is lost
MAX_CHART_BYTES = int(1.5 * MiB)
_MIN_ROOM = 16 * 1024  # no readable chart fits in less: skip the attempts
_URI_PREFIX = "data:image/png;base64,"


def encoded_size(raw_bytes: int) -> int:
    """Length of the data URI for a PNG of ``raw_bytes`` bytes."""
    return len(_URI_PREFIX) + 4 * ((raw_bytes + 2) // 3)


def shrink_png(path: Path, max_bytes: int = MAX_CHART_BYTES, max_width: int = MAX_WIDTH) -> bytes | None:
    """The chart at ``path`` within ``max_bytes`` and ``max_width`` (see ``tasks.image_safety.shrink_png``)."""
    return image_safety.shrink_png(path.read_bytes(), max_bytes, max_width)


def png_data_uri(png: bytes) -> str:
    return _URI_PREFIX + base64.b64encode(png).decode("ascii")


class ChartEmbedder:
    """Hands out data URIs until a shared byte budget runs out.

    One instance per document: charts are embedded in reading order, so when the budget is short
    it is the later charts that are dropped, and each is shrunk to what is left if it can be.
    """

    def __init__(self, run_dir: Path, budget_bytes: int) -> None:
        self.run_dir = Path(run_dir)
        self.remaining = budget_bytes
        self.dropped: list[str] = []

    def uri(self, rel_path: str) -> str | None:
        path = self.run_dir / rel_path
        if not path.is_file():
            self.dropped.append(rel_path)
            return None
        # invert encoded_size: the largest raw PNG whose URI still fits what is left
        room = (self.remaining - len(_URI_PREFIX)) * 3 // 4
        png = shrink_png(path, max_bytes=min(MAX_CHART_BYTES, room)) if room >= _MIN_ROOM else None
        if png is None:
            self.dropped.append(rel_path)
            return None
        uri = png_data_uri(png)
        self.remaining -= len(uri)
        return uri
