"""A host-built bytecode cache for environments installed without ``.pyc`` files.

``uv`` installs packages without compiling them (pip compiles by default). The sandbox sees the
environment read-only, so such a kernel recompiles ipykernel, IPython, pandas and matplotlib from
source on every start: ~3 s more before the first cell can use pandas. We import those modules once
on the host (trusted code only, never the analysis') with ``PYTHONPYCACHEPREFIX`` pointing at a cache
folder, then give later sandboxes that folder read-only. Python checks each ``.pyc`` against its
source's mtime and size, so a stale cache costs speed, never correctness. The build runs in the
background at low priority: it never delays a provision; the sandboxes after it start faster.
The real fix is compiling at install time: ``UV_COMPILE_BYTECODE=1`` or ``uv pip install --compile-bytecode``.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import threading
from pathlib import Path

BUILD_IMPORTS = (
    "ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel_launcher", "jupyter_client.session",
    "matplotlib_inline.backend_inline", "numpy", "pandas", "matplotlib.pyplot", "PIL.Image", "pyarrow",
    "polars", "scipy.stats", "seaborn",
)
_building = threading.Lock()


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ai-analyst" / "sandbox-pycache"


def _key() -> str:
    """Changes when the interpreter or the installed packages change (installs touch site-packages)."""
    site = sysconfig.get_paths()["purelib"]
    parts = [os.path.realpath(sys.executable), sys.version, sys.prefix, str(os.stat(site).st_mtime_ns)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def environment_is_compiled() -> bool:
    spec = importlib.util.find_spec("ipykernel")
    if spec is None or spec.origin is None:
        return True  # nothing we could help with
    return (Path(spec.origin).parent / "__pycache__").is_dir()


def ready_cache() -> Path | None:
    """The cache folder to bind into the sandbox, or None (not needed, or not built yet; then a
    background build is started)."""
    if os.environ.get("ANALYST_SANDBOX_PYCACHE", "1") == "0" or environment_is_compiled():
        return None
    try:
        final = cache_root() / _key()
    except OSError:
        return None
    if final.is_dir():
        return final
    if _building.acquire(blocking=False):
        threading.Thread(target=_build, args=(final,), name="sandbox-pycache", daemon=True).start()
    return None


def _build(final: Path) -> None:
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        with open(final.parent / ".lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another process is on it
            except OSError:
                return
            if final.is_dir():
                return
            staging = final.parent / f".{final.name}.{os.getpid()}"
            shutil.rmtree(staging, ignore_errors=True)
            script = (
                "import importlib\n"
                f"for name in {BUILD_IMPORTS!r}:\n"
                "    try:\n        importlib.import_module(name)\n    except Exception:\n        pass\n"
            )
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPYCACHEPREFIX": str(staging),
                   "MPLBACKEND": "agg", "HOME": str(staging), "MPLCONFIGDIR": str(staging / ".mpl")}
            nice = shutil.which("nice")
            cmd = [*([nice, "-n", "19"] if nice else []), sys.executable, "-c", script]
            done = subprocess.run(cmd, env=env, capture_output=True, timeout=600)
            shutil.rmtree(staging / ".mpl", ignore_errors=True)
            if done.returncode != 0:
                shutil.rmtree(staging, ignore_errors=True)
                return
            os.rename(staging, final)
            for old in final.parent.iterdir():  # caches of earlier installs; a running sandbox keeps its mount
                if old != final and old.is_dir():
                    shutil.rmtree(old, ignore_errors=True)
    except (OSError, subprocess.SubprocessError):
        pass
    finally:
        _building.release()
