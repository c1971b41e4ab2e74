"""Host-side access to the work folder: uploads into ``data/``, image files out of ``outputs/``.

The sandbox controls everything inside that folder, so the host treats it as hostile: no symlink is
followed (``outputs/x.png`` pointing at ``~/.ssh/id_rsa`` would leak a host file into the results;
``data/x.csv`` pointing at ``~/.bashrc`` would let an upload overwrite it), FIFOs and devices are
skipped, and sizes and pixel counts are bounded.
"""

from __future__ import annotations

import os
import shutil
import stat
import uuid
from pathlib import Path

from tasks.errors import SandboxError
from tasks.sandbox.base import DATA_DIR, OUTPUTS_DIR, Chart
from tasks.sandbox.images import IMAGE_SUFFIXES, MAX_FILE_BYTES, as_png, png_name

MAX_ENTRIES = 10_000  # a folder of a million files must not stall every run

Snapshot = dict[str, tuple[int, int, int]]


def upload(work: Path, local_path: Path, name: str) -> str:
    """Stream ``local_path`` to ``data/<name>``: opened relative to folder fds without following
    links, written to a fresh temp name, then renamed over whatever the sandbox left at that name."""
    if not name or "/" in name or "\0" in name or name in (".", "..") or len(name.encode()) > 255:
        raise SandboxError(f"invalid dataset file name {name!r}: expected a plain file name")
    work_fd = os.open(work, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            os.mkdir(DATA_DIR, dir_fd=work_fd)
        except FileExistsError:
            pass
        data_fd = os.open(DATA_DIR, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=work_fd)
    except OSError as exc:
        raise SandboxError(f"cannot write to the sandbox's {DATA_DIR}/ folder: {exc}") from exc
    finally:
        os.close(work_fd)
    part = f".upload-{uuid.uuid4().hex}.part"
    try:
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=data_fd)
        with open(local_path, "rb") as src, os.fdopen(fd, "wb") as dst:
            shutil.copyfileobj(src, dst, 1024 * 1024)
        os.replace(part, name, src_dir_fd=data_fd, dst_dir_fd=data_fd)
    except OSError as exc:
        try:
            os.unlink(part, dir_fd=data_fd)
        except OSError:
            pass
        raise SandboxError(f"cannot upload {local_path} to {DATA_DIR}/{name}: {exc}") from exc
    finally:
        os.close(data_fd)
    return f"{DATA_DIR}/{name}"


def _walk_images(outputs: Path):
    """Yield (relative path, dir fd, file name, stat) of regular image files, never via a symlink."""
    seen = 0
    try:
        walker = os.fwalk(outputs, follow_symlinks=False)
        for dirpath, _dirs, files, dirfd in walker:
            for name in files:
                seen += 1
                if seen > MAX_ENTRIES:
                    return
                if not name.lower().endswith(IMAGE_SUFFIXES):
                    continue
                try:
                    st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    rel = os.path.relpath(os.path.join(dirpath, name), outputs)
                    yield rel, dirfd, name, st
    except OSError:
        return


def snapshot(outputs: Path) -> Snapshot:
    return {rel: (st.st_mtime_ns, st.st_size, st.st_ino) for rel, _fd, _name, st in _walk_images(outputs)}


def collect(outputs: Path, before: Snapshot) -> tuple[list[Chart], list[str]]:
    """Charts for image files that are new or changed since ``before``, and notes on skipped ones."""
    charts: list[Chart] = []
    notes: list[str] = []
    for rel, dirfd, name, st in _walk_images(outputs):  # read during the walk: dirfd closes after
        if before.get(rel) == (st.st_mtime_ns, st.st_size, st.st_ino):
            continue
        shown = f"{OUTPUTS_DIR}/{rel}"
        if st.st_size > MAX_FILE_BYTES:
            notes.append(f"{shown}: not returned as a chart, {st.st_size:,} bytes is over {MAX_FILE_BYTES:,}")
            continue
        data = _read_regular(dirfd, name)
        if data is None:
            continue
        try:
            png = as_png(data)
        except Exception as exc:  # noqa: BLE001 - any decoder error: the file is reported, never fatal
            notes.append(f"{shown}: not returned as a chart, cannot read it as an image ({exc})")
            continue
        charts.append(Chart(name=shown, png=png, source="file"))
    taken = {c.name for c in charts}
    renamed = []
    for chart in sorted(charts, key=lambda c: c.name):
        name = png_name(chart.name, taken)
        if name != chart.name:
            taken.add(name)
            chart = Chart(name=name, png=chart.png, source="file")
        renamed.append(chart)
    return renamed, notes


def _read_regular(dirfd: int, name: str) -> bytes | None:
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(name, flags, dir_fd=dirfd)
    except OSError:
        return None
    try:
        st = os.fstat(fd)  # re-check on the open file: it may have been swapped since the walk
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_FILE_BYTES:
            return None
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read(MAX_FILE_BYTES + 1)[:MAX_FILE_BYTES]
    finally:
        os.close(fd)

