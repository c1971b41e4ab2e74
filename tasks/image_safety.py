"""Images from the sandbox, kept within a size that is cheap to read, store and embed.

A PNG is a few hundred bytes of header over pixels it only promises: 20000x20000 of one colour
compresses to under 400 KB and decodes to 1.6 GB. So the size is read from the header first, an
image over ``MAX_PIXELS`` is never decoded, and one over ``MAX_BYTES`` is shrunk before it is kept.
"""

from __future__ import annotations

import io
import logging
import re
import struct
from dataclasses import dataclass
from pathlib import PurePosixPath

from PIL import Image

logger = logging.getLogger(__name__)

MiB = 1024 * 1024
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_PIXELS = 20_000_000  # 5000x4000, a large print-quality figure; 80 MB once decoded as RGBA
MAX_BYTES = 4 * MiB  # per kept image: the run folder, the notebook and the reports each hold it once
MAX_KEPT_WIDTH = 2400  # a shrunk image stays sharp on any screen
_MIN_WIDTH = 300  # below this a chart is unreadable: give up rather than shrink further


def png_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG's IHDR chunk, without decoding anything; None if not a PNG."""
    if len(data) < 24 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", data[16:24])


def too_large(data: bytes) -> str | None:
    """Why ``data`` must not be decoded, or None when it may be."""
    size = png_size(data)
    if size is None:
        return "not a PNG image"
    width, height = size
    if width * height > MAX_PIXELS:
        return f"{width}x{height} pixels is over the {MAX_PIXELS:,} an image may have"
    return None


def shrink_png(raw: bytes, max_bytes: int, max_width: int) -> bytes | None:
    """The image as PNG bytes no wider than ``max_width`` and no larger than ``max_bytes``.

    Tries narrower widths, then a 256-colour palette (charts are mostly flat colour, so this often
    shrinks them several-fold); None when the image is over the pixel cap, unreadable, or even the
    smallest attempt is too large.
    """
    if reason := too_large(raw):
        logger.warning("image not decoded: %s", reason)
        return None
    try:
        with Image.open(io.BytesIO(raw), formats=["PNG"]) as probe:
            width, height = probe.size
            if width <= max_width and len(raw) <= max_bytes:
                return raw  # already fine: keep the original bytes untouched
            image = probe.convert("RGBA" if "A" in probe.getbands() else "RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:  # a broken file never sinks a report
        logger.warning("cannot read image: %s", exc)
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


@dataclass(frozen=True)
class KeptImage:
    png: bytes | None  # None: refused, and ``note`` says why
    note: str = ""


def keep_image(data: bytes) -> KeptImage:
    """The image as it may be stored: within ``MAX_PIXELS`` and ``MAX_BYTES``, or refused with a reason."""
    if reason := too_large(data):
        return KeptImage(None, f"not kept: {reason}")
    if len(data) <= MAX_BYTES:
        return KeptImage(data)
    png = shrink_png(data, MAX_BYTES, MAX_KEPT_WIDTH)
    if png is None:
        return KeptImage(None, f"not kept: {len(data):,} bytes, and no smaller version fits {MAX_BYTES:,}")
    return KeptImage(png, f"shrunk from {len(data):,} to {len(png):,} bytes")


def name_stem(name: str) -> str:
    """A file name's stem reduced to letters, digits, dots and dashes: safe in a path and in markdown."""
    stem = re.sub(r"[^A-Za-z0-9.-]+", "-", PurePosixPath(name).stem).strip(".-")
    return stem[:60] or "image"


def chart_file_name(iteration: int, index: int, file_name: str | None = None) -> str:
    """Where the loop stores a chart, in iteration order. A chart from a file the code saved ends in
    that file's name, so ``![..](outputs/revenue.png)`` in the model's text finds
    ``iteration-02-chart-1-revenue.png``; a figure the code only showed has no name to keep."""
    suffix = f"-{name_stem(file_name)}" if file_name else ""
    return f"iteration-{iteration:02d}-chart-{index}{suffix}.png"
