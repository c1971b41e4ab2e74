"""Text from the model, the sandbox or the data, made safe to print to a terminal or write into a report.

Such text is untrusted: an escape sequence in it can move the cursor, clear the screen, rewrite a
terminal's title or write to its clipboard (CSI, OSC), a NUL or other control character can break a
renderer or a log viewer, and a bidi override can reorder what the reader sees (Trojan Source).
"""

from __future__ import annotations

import re

# Each escape in its 7-bit (ESC ...) and 8-bit (C1) form. A string that never ends is cut to the
# end of the text: a terminal would swallow the rest too.
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves, screen clears
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC: title, clipboard (52), links; ends at BEL or ST
    r"|(?:\x1b[PX^_]|[\x90\x98\x9e\x9f])[^\x1b\x9c]*(?:\x1b\\|\x9c)?"  # DCS, SOS, PM, APC: end at ST only
    r"|\x1b[ -/]*[0-~]?"  # any other escape, with its intermediates (ESC ( B)
)
# Control characters but newline and tab (a carriage return too: a progress bar's redraws run
# together), and the bidi embeddings, overrides and isolates.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: object) -> str:
    """``text`` without escape sequences, control characters (newlines and tabs kept) or bidi overrides."""
    return _CONTROLS.sub("", _ESCAPES.sub("", str(text)))
