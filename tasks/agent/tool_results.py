"""How one code run is reported back to Claude as a ``tool_result``.

An error in the analysis code is not a failure of the run: it goes back to Claude, who fixes it.
"""

from __future__ import annotations

from typing import Any

from tasks.transcript import CellRecord


def describe_cell(cell: CellRecord, timeout: float) -> str:
    if cell.timed_out:
        state = "the session was restarted, so variables are gone" if cell.state_reset else "state is kept"
        status = f"timed out after {timeout:g} s and was interrupted ({state})"
    elif cell.error:
        status = "error"
    else:
        status = "ok"
    lines = [f"status: {status}"]
    if cell.stdout:
        lines += ["stdout:", cell.stdout.rstrip("\n")]
    if cell.stderr:
        lines += ["stderr:", cell.stderr.rstrip("\n")]
    if cell.error:
        lines += [f"error: {cell.error['name']}: {cell.error['message']}", cell.error.get("traceback", "").rstrip()]
    if cell.warnings:
        lines += ["sandbox notes:", *(f"- {w}" for w in cell.warnings)]
    if cell.charts:
        lines.append(f"charts captured: {len(cell.charts)}")
        lines += [f"- {path}" for path in cell.charts]
    if len(lines) == 1:
        lines.append("(no output)")
    return "\n".join(lines)


def tool_result_block(cell: CellRecord, timeout: float) -> dict[str, Any]:
    block: dict[str, Any] = {
        "type": "tool_result",
        "tool_use_id": cell.tool_use_id,
        "content": describe_cell(cell, timeout),
    }
    if cell.error or cell.timed_out:
        block["is_error"] = True
    return block


def invalid_call(call: dict[str, Any], tool: str) -> str | None:
    """What is wrong with a tool call that cannot run, said so that Claude can fix it; None if it can run."""
    name, given = call.get("name"), call.get("input")
    if name != tool:
        return f"error: there is no tool named {name!r}; the only tool is {tool}, called with a 'code' string."
    if not isinstance(given, dict):
        return (f"error: the input of {tool} must be a JSON object such as {{\"code\": \"print(1)\"}}, "
                f"not {type(given).__name__}; nothing was run.")
    if "code" not in given:
        keys = ", ".join(repr(k) for k in given) or "no keys"
        return f"error: {tool} needs a 'code' key holding the Python to run (got {keys}); nothing was run."
    if not isinstance(given["code"], str):
        return (f"error: 'code' must be a string of Python source, not {type(given['code']).__name__}; "
                "nothing was run.")
    return None


def invalid_call_block(tool_use_id: str, message: str) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": tool_use_id, "content": message, "is_error": True}
