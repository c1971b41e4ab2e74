"""Builds a small finished run on disk: three iterations, a code error, two matplotlib charts, usage."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display in CI
import matplotlib.pyplot as plt

from tasks.transcript import CellRecord, IterationRecord, Transcript
from tasks.image_safety import chart_file_name
from tasks.models.base import ModelTurn, Usage

FINAL_REPORT = """## Findings

Revenue grew 12% over the year.

![Monthly revenue](outputs/revenue.png)

| Month | Revenue |
|---|---:|
| Jan | 10 |
| Feb | 12 |
"""
TRACEBACK = "\x1b[0;31mKeyError\x1b[0m Traceback (most recent call last)\nCell In[2], line 1\nKeyError: 'revnue'"


def save_chart(run_dir: Path, rel_path: str, width_in: float = 6, dpi: int = 100) -> str:
    path = run_dir / rel_path
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(width_in, width_in * 0.6), dpi=dpi)
    ax.plot([1, 2, 3, 4], [10, 12, 11, 14])
    ax.set_title(rel_path)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return rel_path


def turn(content: list[dict], stop: str, tokens: int, cost: float | None = 0.01) -> ModelTurn:
    return ModelTurn(content=content, stop_reason=stop, model="claude-sonnet-5-5", cost_usd=cost,
                     usage=Usage(input_tokens=tokens, output_tokens=tokens // 10,
                                 cache_read_input_tokens=tokens // 2, cache_creation_input_tokens=tokens // 4))


def tool(tool_id: str, code: str) -> dict:
    return {"type": "tool_use", "id": tool_id, "name": "run_python_code", "input": {"code": code}}


def build_transcript(run_dir: Path) -> Transcript:
    # named as the loop stores them (tasks/agent/loop.py)
    revenue = save_chart(run_dir, "charts/" + chart_file_name(2, 1, "outputs/revenue.png"))
    costs = save_chart(run_dir, "charts/" + chart_file_name(2, 2, "outputs/costs.png"))
    first = IterationRecord(number=1, turn=turn([
        {"type": "text", "text": "Let me look at the data first."},
        tool("t1", "import pandas as pd\ndf = pd.read_csv('data/sales.csv')\nprint(df.head())"),
        tool("t2", "df['revnue'].sum()"),
    ], "tool_use", 1000), cells=[
        CellRecord("t1", "import pandas as pd\ndf = pd.read_csv('data/sales.csv')\nprint(df.head())",
                   stdout="   month  revenue\n0    Jan       10\n"),
        CellRecord("t2", "df['revnue'].sum()",
                   error={"name": "KeyError", "message": "'revnue'", "traceback": TRACEBACK}),
    ])
    second = IterationRecord(number=2, turn=turn([
        {"type": "text", "text": "The column is `revenue`. Plotting it."},
        tool("t3", "import matplotlib.pyplot as plt\nplt.plot(df.revenue)\nplt.savefig('outputs/revenue.png')"),
    ], "tool_use", 2000), cells=[
        CellRecord("t3", "import matplotlib.pyplot as plt\nplt.plot(df.revenue)\nplt.savefig('outputs/revenue.png')",
                   stdout="saved\n", stderr="UserWarning: tight layout\n", charts=[revenue, costs]),
    ])
    third = IterationRecord(number=3, turn=turn([{"type": "text", "text": FINAL_REPORT}], "end_turn", 3000))
    return Transcript(
        analysis="Monthly Sales Review", model="claude-sonnet-5-5", provider="anthropic", system="You analyse data.",
        prompt="How did revenue change?\nPlot it.", iterations=[first, second, third],
        datasets=[
            {"name": "sales", "rows": 120, "columns": ["month", "revenue"], "valid": True, "failures": [],
             "on_invalid": "fail"},
            {"name": "costs", "rows": 10, "columns": 3, "valid": False, "on_invalid": "warn",
             "failures": [{"column": "amount", "check": "greater_than(0)", "failure_case": -3, "index": 4}]},
        ],
        final_report=FINAL_REPORT, status="completed", finished_at="2026-11-26T08:00:00+00:00",
    )
