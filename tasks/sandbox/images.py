"""Images an analysis leaves under ``outputs/``, made into charts the same way by every provider.

The files come from the sandbox, so they are untrusted: sizes and pixel counts are bounded before
they are decoded, and only JPEG and PNG decoders are ever used.
"""

from __future__ import annotations

import io

from PIL import Image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_FILE_BYTES = 25 * 1024**2
MAX_PIXELS = 50_000_000


def as_png(data: bytes) -> bytes:
    """``data`` itself if it is a PNG, else the JPEG converted; raises on anything it cannot read."""
    return data if data.startswith(PNG_SIGNATURE) else to_png(data)


def to_png(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data), formats=["JPEG", "PNG"]) as image:
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise ValueError(f"{width}x{height} pixels is over the {MAX_PIXELS:,} allowed")
        if image.mode not in ("RGB", "RGBA", "L", "LA", "P"):
            converted = image.convert("RGB")  # e.g. CMYK JPEGs, which PNG cannot hold
        else:
            converted = image
        out = io.BytesIO()
        converted.save(out, format="PNG")
        return out.getvalue()


def png_name(name: str, taken: set[str]) -> str:
    """``outputs/photo.jpg`` comes back as ``outputs/photo.png`` (converted), unless that is taken."""
    if name.lower().endswith(".png"):
        return name
    stem = name.rsplit(".", 1)[0] + ".png"
    return stem if stem not in taken else name + ".png"
