"""Charts as base64 data URIs, shrunk to fit a byte budget.

Prefect Cloud refuses request bodies over 5 MiB, and a chart saved at 300 dpi can be several MiB on
its own, so every embedded chart goes through here and the caller decides what to drop.
"""

from __future__ import annotations

import base64
import io
import logging
from pathlib import Path

from PIL import Image

logger = logging.getLogger(__name__)

MiB = 1024 * 1024
MAX_WIDTH = 1000  # wider than any artifact or report column, so nothing visible is lost
MAX_CHART_BYTES = int(1.5 * MiB)
_MIN_WIDTH = 300  # below this a chart is unreadable: drop it rather than shrink further
_MIN_ROOM = 16 * 1024  # no readable chart fits in less: skip the attempts
_URI_PREFIX = "data:image/png;base64,"


def encoded_size(raw_bytes: int) -> int:
    """Length of the data URI for a PNG of ``raw_bytes`` bytes."""
    return len(_URI_PREFIX) + 4 * ((raw_bytes + 2) // 3)


def shrink_png(path: Path, max_bytes: int = MAX_CHART_BYTES, max_width: int = MAX_WIDTH) -> bytes | None:
    """The chart as PNG bytes no wider than ``max_width`` and no larger than ``max_bytes``.

    Tries narrower widths, then a 256-colour palette (charts are mostly flat colour, so this often
    shrinks them several-fold); None when even the smallest attempt is too large or unreadable.
    """
    raw = path.read_bytes()
    try:
        with Image.open(io.BytesIO(raw)) as probe:
            width, height = probe.size
            if width <= max_width and len(raw) <= max_bytes:
                return raw  # already fine: keep the original bytes untouched
            image = probe.convert("RGBA" if "A" in probe.getbands() else "RGB")
    except (OSError, ValueError) as exc:  # a truncated or non-PNG file should not sink the report
        logger.warning("cannot read chart %s: %s", path, exc)
        return None

    target = min(width, max_width)
    while target >= _MIN_WIDTH:
        scaled = image if target == width else image.resize(
            (target, max(1, round(height * target / width))), Image.Resampling.LANCZOS)
        # fast octree: median cut takes a second per chart and cannot handle transparency
        for candidate in (scaled, scaled.quantize(256, method=Image.Quantize.FASTOCTREE)):
            buffer = io.BytesIO()
            candidate.save(buffer, format="PNG")
            if buffer.tell() <= max_bytes:
                return buffer.getvalue()
        target = int(target * 0.7)
    return None


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
