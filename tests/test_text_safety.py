from __future__ import annotations

import pytest

from tasks.text_safety import strip_ansi


@pytest.mark.parametrize("raw, clean", [
    ("\x1b[0;31mKeyError\x1b[0m", "KeyError"),
    ("\x1b[?25lhidden cursor\x1b[?25h", "hidden cursor"),
    ("\x1b]0;pwned title\x07after", "after"),
    ("\x1b]8;;http://x.example\x1b\\link\x1b]8;;\x1b\\", "link"),
    ("\x1bPdevice control\x1b\\ok", "ok"),
    ("nul\x00 bell\x07 back\x08 del\x7f c1\x9b31m", "nul bell back del c1"),
    ("line\r\nnext\tcol\n", "line\nnext\tcol\n"),
    ("an unfinished \x1b]0;title", "an unfinished "),
    ("plain ünïcødé ✓", "plain ünïcødé ✓"),
])
def test_escapes_and_control_characters_are_removed(raw, clean):
    assert strip_ansi(raw) == clean
