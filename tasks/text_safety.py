"""Text from the model or the sandbox, made safe to print to a terminal or write into a report.

Such text is untrusted: an escape sequence in it can move the cursor, rewrite a terminal's title or
hide lines (OSC, CSI), and a NUL or other control character can break a renderer or a log viewer.
"""

from __future__ import annotations

import re

# CSI (ESC [ ... final), OSC (ESC ] ... BEL or ST), other two-byte escapes (ESC + one char), then
# every C0/C1 control character and DEL except newline and tab.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\|$)"
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\|$)"
    r"|\x1b[ -~]?"
    r"|\x9b[0-?]*[ -/]*[@-~]"
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)


def strip_ansi(text: str) -> str:
    """``text`` without terminal escape sequences or control characters (newlines and tabs kept).

    A carriage return is dropped too: ``\\r\\n`` becomes ``\\n``, and a progress bar's redraws run together.
    """
    return _ESCAPES.sub("", text)
