"""PNG files that are tiny on disk and huge once decoded, written without decoding anything.

``BLANK_PNG_SOURCE`` is source code, so a test can also run it as a cell in the sandbox.
"""

from __future__ import annotations

BLANK_PNG_SOURCE = '''
import struct, zlib

def blank_png(width, height):
    """A 1-bit greyscale PNG, all black: a few KB on disk, width x height pixels once decoded."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    row = bytes(1 + (width + 7) // 8)
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
'''

_namespace: dict = {}
exec(BLANK_PNG_SOURCE, _namespace)  # noqa: S102 - our own constant, shared with the sandbox cells
blank_png = _namespace["blank_png"]
