"""The Python processes behind the stand-in Daytona toolbox (tests/fakes/daytona_api.py).

``python daytona_worker.py repl``: one interpreter context. Reads one JSON request per line on stdin
(``{"code": ...}``), runs it in globals kept between requests, and writes JSON events on its
original stdout: ``{"type": "stdout"|"stderr", "text"}``, ``{"type": "error", "name", "value",
"traceback"}``, then ``{"type": "done"}``. SIGINT interrupts the running code (KeyboardInterrupt),
as a timeout does in Daytona's daemon. Output is buffered and sent in chunks of up to 32 KiB.

``python daytona_worker.py code-run ARTIFACTS``: ``process.code_run``: runs the code on stdin once in
a fresh interpreter, stdout and stderr as they are, and writes the figures passed to ``plt.show()``
as chart artifacts (base64 PNG) to the file ARTIFACTS, as Daytona's daemon returns them.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

CHUNK = 32 * 1024


def _events():
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # a child process writing to fd 1 must not corrupt the event stream
    return proto


class _Stream:
    def __init__(self, proto, name):
        self.proto, self.name, self.parts, self.size = proto, name, [], 0

    def write(self, text):
        self.parts.append(text)
        self.size += len(text)
        if self.size >= CHUNK:
            self.flush()
        return len(text)

    def flush(self):
        if self.parts:
            text, self.parts, self.size = "".join(self.parts), [], 0
            for i in range(0, len(text), CHUNK):
                self.proto.write(json.dumps({"type": self.name, "text": text[i:i + CHUNK]}) + "\n")

    def isatty(self):
        return False


def _cell_traceback(exc):
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != "<cell>":
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def repl():
    proto = _events()
    out, err = _Stream(proto, "stdout"), _Stream(proto, "stderr")
    sys.stdout, sys.stderr = out, err
    namespace = {"__name__": "__main__"}
    import linecache

    while True:
        try:
            line = sys.stdin.readline()
        except KeyboardInterrupt:  # an interrupt that came just after the code finished
            continue
        if not line:
            return
        code = json.loads(line)["code"]
        linecache.cache["<cell>"] = (len(code), None, code.splitlines(True), "<cell>")
        try:
            exec(compile(code, "<cell>", "exec"), namespace)  # noqa: S102 - running the cell is this stand-in's job
        except BaseException as exc:  # noqa: BLE001 - reported like the daemon does
            out.flush()
            err.flush()
            proto.write(json.dumps({"type": "error", "name": type(exc).__name__, "value": str(exc),
                                    "traceback": _cell_traceback(exc)}) + "\n")
        out.flush()
        err.flush()
        proto.write(json.dumps({"type": "done"}) + "\n")


def _on_import(name, patch):
    """Call ``patch(module)`` once ``name`` is imported by the code (importing matplotlib up front
    would cost every run a second)."""
    import importlib.util

    class Hook:
        def find_spec(self, fullname, path=None, target=None):
            if fullname != name:
                return None
            sys.meta_path.remove(self)
            spec = importlib.util.find_spec(fullname)
            if spec is not None and spec.loader is not None:
                run = spec.loader.exec_module

                def exec_module(module):
                    run(module)
                    patch(module)
                spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, Hook())


def code_run(artifacts_path):
    charts = []

    def patch(plt):
        import base64
        import io

        def show(*args, **kwargs):
            for number in plt.get_fignums():
                figure = plt.figure(number)
                buffer = io.BytesIO()
                figure.savefig(buffer, format="png")
                title = figure.axes[0].get_title() if figure.axes else ""
                charts.append({"type": "unknown", "title": title, "elements": [],
                               "png": base64.b64encode(buffer.getvalue()).decode()})
            plt.close("all")

        plt.show = show

    os.environ["MPLBACKEND"] = "Agg"
    _on_import("matplotlib.pyplot", patch)
    code = sys.stdin.read()
    status = 0
    try:
        exec(compile(code, "<string>", "exec"), {"__name__": "__main__"})  # noqa: S102 - as above
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - printed as python would
        traceback.print_exc()
        status = 1
    sys.stdout.flush()
    with open(artifacts_path, "w") as f:
        json.dump(charts, f)
    os._exit(status)


if __name__ == "__main__":
    if sys.argv[1] == "repl":
        repl()
    else:
        code_run(sys.argv[2])
