"""The one tool Claude gets: run Python in the analysis sandbox."""

from __future__ import annotations

from copy import deepcopy
from typing import Any

from .base import RUN_PYTHON_TOOL

RUN_PYTHON_DESCRIPTION = """\
Run Python code in the analysis sandbox and get back what it printed (stdout and stderr), the \
error traceback if it failed, and the list of charts captured.

State persists between calls: it is one long-lived interpreter, like a Jupyter kernel, so \
variables, imports and loaded DataFrames from earlier calls are still there. Do not reload the \
data or repeat imports in every call; build on what you already have.

Where the datasets are is given in the task. pandas, numpy and matplotlib are available; do \
not try to install packages.

Charts: use matplotlib. Every figure that is shown (plt.show()) or still open when the code \
finishes is captured as a PNG and then closed, so give each chart its own figure with a title \
and labelled axes. Image files (.png, .jpg, .svg) written to the outputs/ folder are captured \
too. Refer to charts by their titles in your report.

Output is truncated when long: print summaries (df.head(), df.describe(), value counts), not \
whole tables. Each call has a time limit.\
"""

RUN_PYTHON_TOOL_DEFINITION: dict[str, Any] = {
    "name": RUN_PYTHON_TOOL,
    "description": RUN_PYTHON_DESCRIPTION,
    "input_schema": {
        "type": "object",
        "properties": {
            "code": {
                "type": "string",
                "description": "Python source to execute. State from previous calls persists.",
            },
        },
        "required": ["code"],
        "additionalProperties": False,
    },
}


def run_python_tool() -> dict[str, Any]:
    """A fresh copy of the ``run_python_code`` tool definition (callers may add keys to it)."""
    return deepcopy(RUN_PYTHON_TOOL_DEFINITION)


def tool_definitions() -> list[dict[str, Any]]:
    """The tools of an analysis, in the Anthropic Messages format."""
    return [run_python_tool()]
