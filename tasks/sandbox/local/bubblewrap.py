"""The bubblewrap command line that confines the local kernel.

The sandbox sees a read-only view of only what the interpreter needs (``/usr``, the ``/bin``-style
links, a handful of ``/etc`` files, the Python prefix and virtualenv), its work folder read-write at
``/sandbox``, the kernel's socket folder at ``/run/kernel``, and private ``/tmp``, ``/dev/shm``,
``/proc`` and ``/dev``. Everything else on the host (home folders, the project's ``.env``,
``~/.prefect``, ``~/.ssh``) simply does not exist inside. ``/proc/sys`` and ``/proc/sysrq-trigger``
are read-only; ``/sys`` is not mounted.

bwrap never runs as host root: the user namespace maps the sandbox's uid to bwrap's own, so a root
caller would make the analysis code host root. A root caller starts bwrap as ``HOST_UID`` (a fixed
unprivileged uid with no home and no files of its own); the work and socket folders are given to
that uid, and nothing else of the caller's is (see ``Staging``).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from typing import Any
from pathlib import Path

from tasks.errors import SandboxError

WORK_INSIDE = "/sandbox"
IPC_INSIDE = "/run/kernel"
PYCACHE_INSIDE = "/run/pycache"
UID_INSIDE = 1000
HOST_UID = HOST_GID = 1_999_999_999  # far above any distribution's range for real or system users
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


def run_as() -> tuple[int, int] | None:
    """The (uid, gid) bwrap must switch to, or None when the caller is not root."""
    return (HOST_UID, HOST_GID) if os.geteuid() == 0 else None


@functools.cache
def userns_works(bwrap: str) -> bool:
    """Whether bwrap, started as the sandbox's host uid, can make its user namespace here
    (some containers and hardened kernels forbid it)."""
    probe = [bwrap, "--unshare-user", "--uid", str(UID_INSIDE), "--gid", str(UID_INSIDE),
             "--ro-bind", "/usr", "/usr", *_link_args(), "--", "/usr/bin/true"]
    ids = run_as()
    who: dict[str, Any] = {"user": ids[0], "group": ids[1], "extra_groups": []} if ids else {}
    try:
        return subprocess.run(probe, capture_output=True, env={}, timeout=10, cwd="/", **who).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def require_userns(bwrap: str) -> None:
    if not userns_works(bwrap):
        who = f"uid {HOST_UID}" if run_as() else "this user"
        raise SandboxError(
            f"bubblewrap cannot create a user namespace as {who}, so the local sandbox cannot drop its "
            "privileges. Allow unprivileged user namespaces (`sudo sysctl -w kernel.unprivileged_userns_clone=1`, "
            "`sudo sysctl -w user.max_user_namespaces=15000`; in a container, run it with a seccomp/AppArmor "
            "profile that allows them), or set `sandbox: {isolation: none}` to run without isolation "
            "(not recommended).")


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


STAGE_SCRIPT = ('mount=$1; shift; while [ "$1" != "--" ]; do "$mount" --bind "$1" "$2"; shift 2; done; shift; '
                'unset PWD OLDPWD; exec "$@"')


class Staging:
    """How a root caller starts bwrap as ``HOST_UID``: bwrap resolves its bind sources with the
    permissions of that uid, which cannot search ``/root`` (a pyenv Python) or a private run folder.
    Each source is bound, in a private mount namespace of the launch alone, onto an empty mount
    point in ``folder`` (searchable by all, listable by none); then ``setpriv`` drops to the
    uid and runs bwrap. A caller that is not root needs none of it: bwrap runs as that caller."""

    def __init__(self, folder: Path | None, ids: tuple[int, int] | None = None):
        both = folder is not None and ids is not None
        self.folder: Path | None = folder if both else None
        self.ids: tuple[int, int] | None = ids if both else None
        self.pairs: list[str] = []

    def __call__(self, path: Path | str) -> str:
        if self.folder is None:
            return str(path)
        target = self.folder / str(len(self.pairs) // 2)
        if os.path.isdir(path):
            target.mkdir()
        else:
            target.touch()
        self.pairs += [str(path), str(target)]
        return str(target)

    def wrap(self, cmd: list[str]) -> list[str]:
        ids = self.ids
        if ids is None:
            return cmd
        found = {name: shutil.which(name) for name in ("unshare", "setpriv", "mount")}
        missing = [name for name, path in found.items() if path is None]
        if missing:
            raise SandboxError(f"the local sandbox, run as root, needs {', '.join(missing)} to drop root before "
                               "starting bubblewrap; install them with `sudo apt-get install util-linux mount`")
        tools = {name: str(path) for name, path in found.items()}
        return [tools["unshare"], "--mount", "--propagation", "private", "--", "/bin/sh", "-euc", STAGE_SCRIPT,
                "sh", tools["mount"], *self.pairs, "--",
                tools["setpriv"], f"--reuid={ids[0]}", f"--regid={ids[1]}", "--clear-groups", "--", *cmd]


def build_command(
    *,
    bwrap: str,
    work_dir: Path,
    ipc_dir: Path,
    identity_files: dict[str, Path],
    env: dict[str, str],
    tmp_bytes: int,
    argv: list[str],
    stage: Staging,
    seccomp_fd: int,
    pycache: Path | None = None,
) -> list[str]:
    require_userns(bwrap)
    cmd = [bwrap, "--unshare-all", "--hostname", "sandbox", "--die-with-parent", "--new-session",
           "--unshare-user", "--uid", str(UID_INSIDE), "--gid", str(UID_INSIDE)]
    if "--disable-userns" in _help_text(bwrap):  # bwrap >= 0.8: no nested namespaces
        cmd += ["--disable-userns"]
    cmd += ["--cap-drop", "ALL", "--clearenv"]
    for key, value in env.items():
        cmd += ["--setenv", key, value]
    cmd += ["--ro-bind", "/usr", "/usr", *_link_args()]
    # /proc, /dev and the tmpfs mounts first: a later bind may live below them (a virtualenv
    # under /tmp, as in a CI checkout there), and a mount made after would hide it.
    # Kernel settings read-only: the sysctls of the sandbox's own namespaces (IPC, network) would
    # otherwise be writable, as its user namespace owns them.
    cmd += ["--proc", "/proc", "--ro-bind", "/proc/sys", "/proc/sys",
            "--ro-bind-try", "/proc/sysrq-trigger", "/proc/sysrq-trigger", "--dev", "/dev"]
    # Private tmpfs mounts live in RAM: cap them so /tmp cannot eat the host's memory.
    sized = "--size" in _help_text(bwrap)
    for mount in ("/tmp", "/dev/shm"):
        cmd += (["--size", str(tmp_bytes)] if sized else []) + ["--tmpfs", mount]
    for path in _ETC_FILES:
        if os.path.exists(path):
            cmd += ["--ro-bind", path, path]
    for root in python_roots():
        cmd += ["--ro-bind", stage(root), root]
    for inside, host in identity_files.items():
        cmd += ["--ro-bind", stage(host), inside]
    cmd += ["--bind", stage(work_dir), WORK_INSIDE, "--bind", stage(ipc_dir), IPC_INSIDE]
    if pycache is not None:
        cmd += ["--ro-bind", stage(pycache), PYCACHE_INSIDE]
    # bwrap's own root is a writable tmpfs: freeze it once every mount point exists.
    cmd += ["--remount-ro", "/", "--seccomp", str(seccomp_fd), "--chdir", WORK_INSIDE, "--", *argv]
    return stage.wrap(cmd)
