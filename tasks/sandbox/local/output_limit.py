"""Cutting a flood of output inside the kernel, before it is sent to the host.

The host keeps only the head and the tail of what a cell prints (``OutputBuffer``), but every byte
still crossed the socket: ipykernel gathers a stream's output for 0.2 s and sends it as one message,
so a cell printing 1 GB sent messages of tens of MB, queued by ZeroMQ and decoded whole on the host
(seen here: the host's peak memory grew by 160 MB for 256 MB printed). A hook on the kernel's
stdout and stderr, run just before each message is sent, keeps the message whole until the cell has
sent ``limit`` characters, then only each message's last ``limit`` characters, and says in the
message how many it dropped; the host adds them to its count of characters cut. The tail the host
keeps is then still the true end of the output. Hooks are per thread in ipykernel, so they are
registered on the thread that sends (the IO thread).
"""

from __future__ import annotations

CUT_FIELD = "analyst_cut"  # in a stream message's content: characters the kernel dropped

_SETUP = """
def _analyst_limit_output(limit, field):
    import sys

    def make_hook():
        state = {"parent": None, "sent": 0}

        def hook(msg):
            if msg.get("msg_type") != "stream":
                return msg
            parent = msg.get("parent_header", {}).get("msg_id")
            if parent != state["parent"]:
                state["parent"], state["sent"] = parent, 0
            text = msg["content"].get("text", "")
            room = max(limit - state["sent"], 0)
            if len(text) > room + limit:
                kept = text[:room] + text[-limit:]
                msg["content"] = dict(msg["content"], text=kept, **{field: len(text) - len(kept)})
            state["sent"] += len(msg["content"]["text"])
            return msg

        return hook

    for stream in (sys.stdout, sys.stderr):
        thread = getattr(stream, "pub_thread", None)
        if thread is not None and hasattr(stream, "register_hook"):
            thread.schedule(lambda stream=stream, hook=make_hook(): stream.register_hook(hook))


_analyst_limit_output(LIMIT, FIELD)
del _analyst_limit_output
"""


def kernel_setup_code(limit: int) -> str:
    """Code to run once in a fresh kernel, silently: installs the hooks for ``limit`` characters."""
    return _SETUP.replace("LIMIT, FIELD", f"{int(limit)}, {CUT_FIELD!r}")
