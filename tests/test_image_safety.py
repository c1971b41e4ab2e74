from __future__ import annotations

import io
import os

from PIL import Image

from tasks.image_safety import MAX_BYTES, chart_file_name, keep_image, png_size
from tests.fakes.png_bombs import blank_png


def png(width: int, height: int, noise: bool = False) -> bytes:
    pixels = os.urandom(width * height * 3) if noise else bytes(width * height * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (width, height), pixels).save(out, format="PNG", compress_level=1)
    return out.getvalue()


def test_the_size_comes_from_the_header():
    assert png_size(blank_png(20000, 20000)) == (20000, 20000)
    assert png_size(b"GIF89a" + bytes(40)) is None


def test_an_image_over_the_pixel_cap_is_refused_with_its_size():
    kept = keep_image(blank_png(20000, 20000))
    assert kept.png is None and kept.note == "not kept: 20000x20000 pixels is over the 20,000,000 an image may have"


def test_an_image_over_the_byte_cap_is_shrunk_under_it():
    raw = png(1500, 1500, noise=True)
    assert len(raw) > MAX_BYTES
    kept = keep_image(raw)
    assert kept.png is not None and len(kept.png) <= MAX_BYTES and kept.note.startswith("shrunk from")
    assert Image.open(io.BytesIO(kept.png)).format == "PNG"


def test_an_image_within_both_caps_is_kept_as_it_is():
    raw = png(300, 200)
    assert keep_image(raw).png is raw and keep_image(raw).note == ""


def test_a_stored_chart_keeps_a_safe_form_of_its_files_name():
    assert chart_file_name(2, 1, "outputs/revenue.png") == "iteration-02-chart-1-revenue.png"
    assert chart_file_name(1, 3, "outputs/sub/<img src=x> (1).jpg") == "iteration-01-chart-3-img-src-x-1.png"
    assert chart_file_name(1, 2) == "iteration-01-chart-2.png"
