from __future__ import annotations

import pytest

from tasks.text_safety import printable


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
    ("\x1b]52;c;cm0gLXJmIH4=\x07copied", "copied"),
    ("\x9d0;8-bit title\x9cafter", "after"),
    ("\x90device\x07control\x9cok", "ok"),
    ("\x1b(Bcharset", "charset"),
    ("user\u202e\u2066gnp.exe\u2069\u202c", "usergnp.exe"),
])
def test_escapes_and_control_characters_are_removed(raw, clean):
    assert printable(raw) == clean
