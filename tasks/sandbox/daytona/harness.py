"""The few lines of Python the Daytona provider runs inside the sandbox, and the host-side code that
builds those runs and reads their answers.

Daytona's stateful interpreter returns no charts (see NOTES), so charts are harvested by code run in
the sandbox after each cell: open matplotlib figures (and those passed to ``plt.show()``, which is
patched to save them) are written to a hidden ``.analyst/figures/`` folder, image files under
``outputs/`` are compared with the previous listing, and the paths of both are printed as one JSON
line for the host to download. The harness lives in ``sys.modules`` rather than the user's globals,
so analysis code cannot clobber it by accident; when it is missing, the session was restarted.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field

MODULE = "_analyst_harness"
MARKER = "ANALYST-HARVEST:"
MISSING = "ANALYST-HARNESS-MISSING"
DISPLAY = "_analyst_display"  # a builtin in the sandbox: prints a cell's last value, as a notebook does

HARNESS_SOURCE = r'''
import json, os, stat, sys

SUFFIXES = (".png", ".jpg", ".jpeg")
MAX_ENTRIES = 10000
MARKER = "ANALYST-HARVEST:"
work = os.getcwd()
figures = 0
returned = []


def _path(*parts):
    return os.path.join(work, *parts)


def scan():
    found, seen = {}, 0
    for root, dirs, files in os.walk(_path("outputs")):  # never follows a symlinked folder
        for name in files:
            seen += 1
            if seen > MAX_ENTRIES:
                return found
            if not name.lower().endswith(SUFFIXES):
                continue
            full = os.path.join(root, name)
            try:
                st = os.lstat(full)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                found[os.path.relpath(full, work)] = [st.st_mtime_ns, st.st_size, st.st_ino]
    return found


def save_figures():
    global figures
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return
    for number in list(plt.get_fignums()):
        figures += 1
        try:
            plt.figure(number).savefig(_path(".analyst", "figures", "figure-%d.png" % figures), format="png",
                                       bbox_inches="tight")
        except Exception as exc:
            sys.stderr.write("could not save figure %s: %s\n" % (number, exc))
    plt.close("all")


def show(*args, **kwargs):
    save_figures()


def display(value):
    if value is not None:
        print(repr(value))


def _patch_show():
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None and plt.show is not show:
        plt.show = show


class _PyplotHook:
    """Patches pyplot.show as soon as the analysis imports pyplot (importing it here would cost
    every session a second)."""

    def find_spec(self, name, path=None, target=None):
        if name != "matplotlib.pyplot":
            return None
        import importlib.util
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            run = spec.loader.exec_module

            def exec_module(module):
                run(module)
                module.show = show
            spec.loader.exec_module = exec_module
        return spec


def install(directory, warm=()):
    global work
    work = directory
    import builtins
    builtins._analyst_display = display
    for sub in ("data", "outputs", os.path.join(".analyst", "figures")):
        os.makedirs(_path(sub), exist_ok=True)
    for stale in os.listdir(_path(".analyst", "figures")):  # left by a session that was restarted
        os.unlink(_path(".analyst", "figures", stale))
    os.environ["MPLBACKEND"] = "Agg"
    if not any(type(f).__name__ == "_PyplotHook" for f in sys.meta_path):
        sys.meta_path.insert(0, _PyplotHook())
    _patch_show()
    for module in warm:
        try:
            __import__(module)
        except Exception:
            pass
    if not os.path.exists(_path(".analyst", "outputs.json")):
        _write_listing(scan())


def _write_listing(listing):
    with open(_path(".analyst", "outputs.json"), "w") as f:
        json.dump(listing, f)


def harvest(stateful=True):
    global returned
    for old in returned:
        try:
            os.unlink(old)
        except OSError:
            pass
    if stateful:
        save_figures()
        _patch_show()
    folder = _path(".analyst", "figures")
    names = sorted(os.listdir(folder), key=lambda n: int("".join(c for c in n if c.isdigit()) or 0))
    returned = [os.path.join(folder, n) for n in names]
    try:
        with open(_path(".analyst", "outputs.json")) as f:
            before = json.load(f)
    except (OSError, ValueError):
        before = {}
    now = scan()
    _write_listing(now)
    changed = [[p, v[1]] for p, v in sorted(now.items()) if before.get(p) != v]
    figs = [[p, os.path.getsize(p)] for p in returned]
    sys.stdout.write(MARKER + json.dumps({"figures": figs, "files": changed, "work": work}) + "\n")
'''


def setup_code(work_dir: str, warm: tuple[str, ...] = ()) -> str:
    """Load the harness into ``sys.modules`` of the stateful session and prepare the folders."""
    return (
        "import sys as _s, types as _t\n"
        f"_m = _t.ModuleType({MODULE!r})\n"
        f"exec(compile({HARNESS_SOURCE!r}, '<analyst-harness>', 'exec'), _m.__dict__)\n"
        f"_s.modules[{MODULE!r}] = _m\n"
        f"_m.install({work_dir!r}, {tuple(warm)!r})\n"
        "del _s, _t, _m\n"
    )


def harvest_code() -> str:
    """Run after each stateful cell: prints the harvest line, or MISSING after a session restart."""
    return (f"import sys as _s\n_h = _s.modules.get({MODULE!r})\n"
            f"print({MISSING!r}) if _h is None else _h.harvest()\ndel _s, _h\n")


def stateless_script(work_dir: str, *, install: bool) -> str:
    """A whole script for ``process.code_run`` (a fresh interpreter): install, or harvest files."""
    call = f"install({work_dir!r})" if install else f"work = {work_dir!r}\nharvest(stateful=False)"
    return HARNESS_SOURCE + "\n" + call + "\n"


@dataclass
class Harvest:
    figures: list[tuple[str, int]] = field(default_factory=list)  # absolute path, size
    files: list[tuple[str, int]] = field(default_factory=list)  # path relative to the work dir, size
    missing: bool = False  # the harness is gone: the session was restarted


def parse_harvest(stdout: str) -> Harvest | None:
    """The harvest line of a harvest run's output; None if it printed none (it failed)."""
    if MISSING in stdout:
        return Harvest(missing=True)
    for line in reversed(stdout.splitlines()):
        if line.startswith(MARKER):
            data = json.loads(line[len(MARKER):])
            return Harvest([tuple(f) for f in data["figures"]], [tuple(f) for f in data["files"]])
    return None


def display_last_expression(code: str) -> str:
    """Print the value of a cell's last bare expression, as a notebook (and the local provider) does,
    through the ``_analyst_display`` builtin the harness installs (``display_prelude`` for fresh runs).

    The expression is wrapped in place, so line numbers in tracebacks stay those of the code as
    written; a trailing ``;`` suppresses it, as in Jupyter. Code that does not parse is left alone
    for the interpreter to report.
    """
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return code
    if not tree.body or not isinstance(tree.body[-1], ast.Expr):
        return code
    node = tree.body[-1]
    assert node.end_lineno is not None and node.end_col_offset is not None  # ast.parse sets both
    lines = code.splitlines(keepends=True)
    start_line, end_line = lines[node.lineno - 1].encode(), lines[node.end_lineno - 1].encode()
    if end_line[node.end_col_offset:].lstrip().startswith(b";"):
        return code
    opener = DISPLAY.encode() + b"("
    if node.lineno == node.end_lineno:
        start_line = (start_line[:node.col_offset] + opener + start_line[node.col_offset:node.end_col_offset]
                      + b")" + start_line[node.end_col_offset:])
        lines[node.lineno - 1] = start_line.decode()
    else:
        lines[node.lineno - 1] = (start_line[:node.col_offset] + opener + start_line[node.col_offset:]).decode()
        lines[node.end_lineno - 1] = (end_line[:node.end_col_offset] + b")" + end_line[node.end_col_offset:]).decode()
    return "".join(lines)


def display_prelude() -> str:
    """Defines the display builtin in a fresh interpreter (``stateful: false``)."""
    return (f"import builtins as _b\n_b.{DISPLAY} = lambda v: None if v is None else print(repr(v))\ndel _b\n")
