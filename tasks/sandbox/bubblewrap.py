"""The bubblewrap command line that confines the local kernel.

The sandbox sees a read-only view of only what the interpreter needs (``/usr``, the ``/bin``-style
links, a handful of ``/etc`` files, the Python prefix and virtualenv), its work folder read-write at
``/sandbox``, the kernel's socket folder at ``/run/kernel``, and private ``/tmp``, ``/dev/shm``,
``/proc`` and ``/dev``. Everything else on the host (home folders, the project's ``.env``,
``~/.prefect``, ``~/.ssh``) simply does not exist inside.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tasks.errors import SandboxError

WORK_INSIDE = "/sandbox"
IPC_INSIDE = "/run/kernel"
PYCACHE_INSIDE = "/run/pycache"
UID_INSIDE = 1000
INSTALL_HINT = (
    "bubblewrap is not installed, so the local sandbox cannot isolate the analysis code. "
    "Install it with `sudo apt-get install bubblewrap` (Fedora: `sudo dnf install bubblewrap`), "
    "or set `sandbox: {isolation: none}` in the config to run without isolation (not recommended)."
)

# Only files that Python, its C libraries and matplotlib read; notably not passwd/shadow/hosts of
# the host (passwd and group are replaced by one-line files, see write_identity_files).
_ETC_FILES = (
    "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/timezone",
    "/etc/nsswitch.conf", "/etc/alternatives", "/etc/fonts", "/etc/mime.types",
)
_TOP_LEVEL_LINKS = ("/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32")


def find_bwrap() -> str:
    path = shutil.which("bwrap")
    if path is None:
        raise SandboxError(INSTALL_HINT)
    return path


@functools.cache
def _help_text(bwrap: str) -> str:
    done = subprocess.run([bwrap, "--help"], capture_output=True, text=True, env={}, timeout=10)
    return done.stdout + done.stderr


@functools.cache
def userns_works(bwrap: str) -> bool:
    """Whether bwrap can map us to a non-root uid here (some containers forbid user namespaces)."""
    probe = [bwrap, "--unshare-user", "--uid", str(UID_INSIDE), "--gid", str(UID_INSIDE),
             "--ro-bind", "/usr", "/usr", *_link_args(), "--", "/usr/bin/true"]
    try:
        return subprocess.run(probe, capture_output=True, env={}, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _link_args() -> list[str]:
    # Debian/Ubuntu (merged /usr) make these symlinks into /usr; older layouts have real folders.
    args: list[str] = []
    for top in _TOP_LEVEL_LINKS:
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    return args


def python_roots() -> list[str]:
    """Folders the interpreter needs, outermost first so a nested one is not hidden by its parent."""
    roots: set[str] = set()
    for prefix in (sys.base_prefix, sys.prefix, sys.exec_prefix, sys.base_exec_prefix):
        for path in (os.path.abspath(prefix), os.path.realpath(prefix)):
            if path == "/":
                raise SandboxError(f"cannot sandbox an interpreter installed at '/' (prefix {prefix})")
            if not (path == "/usr" or path.startswith("/usr/")):
                roots.add(path)
    return sorted(roots, key=lambda p: (p.count("/"), p))


def write_identity_files(folder: Path) -> dict[str, Path]:
    """A passwd/group naming only the sandbox user, so getpass and friends work without the host's."""
    files = {
        "/etc/passwd": f"sandbox:x:{UID_INSIDE}:{UID_INSIDE}:sandbox:/tmp:/usr/sbin/nologin\n",
        "/etc/group": f"sandbox:x:{UID_INSIDE}:\n",
        "/etc/hosts": "127.0.0.1 localhost sandbox\n::1 localhost\n",
    }
    written = {}
    for inside, text in files.items():
        host = folder / Path(inside).name
        host.write_text(text)
        written[inside] = host
    return written


def build_command(
    *,
    bwrap: str,
    work_dir: Path,
    ipc_dir: Path,
    identity_files: dict[str, Path],
    env: dict[str, str],
    tmp_bytes: int,
    argv: list[str],
    pycache: Path | None = None,
) -> list[str]:
    cmd = [bwrap, "--unshare-all", "--hostname", "sandbox", "--die-with-parent", "--new-session"]
    if userns_works(bwrap):
        cmd += ["--unshare-user", "--uid", str(UID_INSIDE), "--gid", str(UID_INSIDE)]
        if "--disable-userns" in _help_text(bwrap):  # bwrap >= 0.8: no nested namespaces
            cmd += ["--disable-userns"]
    cmd += ["--cap-drop", "ALL", "--clearenv"]
    for key, value in env.items():
        cmd += ["--setenv", key, value]
    cmd += ["--ro-bind", "/usr", "/usr", *_link_args()]
    # /proc, /dev and the tmpfs mounts first: a later bind may live below them (a virtualenv
    # under /tmp, as in a CI checkout there), and a mount made after would hide it.
    cmd += ["--proc", "/proc", "--dev", "/dev"]
    # Private tmpfs mounts live in RAM: cap them so /tmp cannot eat the host's memory.
    sized = "--size" in _help_text(bwrap)
    for mount in ("/tmp", "/dev/shm"):
        cmd += (["--size", str(tmp_bytes)] if sized else []) + ["--tmpfs", mount]
    for path in _ETC_FILES:
        cmd += ["--ro-bind-try", path, path]
    for root in python_roots():
        cmd += ["--ro-bind", root, root]
    for inside, host in identity_files.items():
        cmd += ["--ro-bind", str(host), inside]
    cmd += ["--bind", str(work_dir), WORK_INSIDE, "--bind", str(ipc_dir), IPC_INSIDE]
    if pycache is not None:
        cmd += ["--ro-bind", str(pycache), PYCACHE_INSIDE]
    # bwrap's own root is a writable tmpfs: freeze it once every mount point exists.
    cmd += ["--remount-ro", "/", "--chdir", WORK_INSIDE, "--", *argv]
    return cmd
