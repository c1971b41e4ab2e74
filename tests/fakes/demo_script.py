"""The scripted analysis behind ``configs/retail-sales.transcript.json``, the demo's replay.

The turns below were written by us, not by Claude: they show what a run looks like without an API
key. To re-record the transcript after changing them (or the flow), run

    .venv/bin/python -m tests.fakes.demo_script

which runs the real flow against the stand-in Messages API (tests/fakes/anthropic_api.py), so the
code cells really run in the sandbox and the transcript is exactly what a run writes.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "retail-sales.yaml"
TRANSCRIPT = ROOT / "configs" / "retail-sales.transcript.json"

# The results the demo config declares, as Claude submits them before its report: each value is printed
# by a cell above (total revenue and the change in turn 2, the east's step in turn 4).
RESULTS = {"total_revenue": 3385047, "revenue_change_pct": 19.3, "best_region": "east", "sudden_changes": 1}

# (Claude's text, the code it runs; RESULTS: the submit_results call; None: the final answer)
TURNS: list[tuple[str, str | dict | None]] = [
    ("I'll load the sales data and check its shape, types and date range first.", """\
import pandas as pd
df = pd.read_csv("data/sales.csv", parse_dates=["date"])
print(df.shape)
print(df.dtypes)
print(df["date"].min().date(), "to", df["date"].max().date())
print(df.describe().round(2))"""),
    ("Two full years, four regions, five products. Now the revenue split by region and product.", """\
total = df["revenue"].sum()
by_region = df.groupby("region")["revenue"].sum().sort_values(ascending=False)
by_product = df.groupby("product")["revenue"].sum().sort_values(ascending=False)
print(f"total revenue: {total:,.0f}")
print((by_region / total * 100).round(1).rename("share %"))
print((by_product / total * 100).round(1).rename("share %"))
yearly = df.pivot_table(index="region", columns=df["date"].dt.year, values="revenue", aggfunc="sum")
print(((yearly[2025] / yearly[2024] - 1) * 100).round(1).rename("growth 2025 vs 2024 %"))
print(f"all regions, 2025 vs 2024: {(yearly[2025].sum() / yearly[2024].sum() - 1) * 100:+.1f}%")"""),
    ("East leads and grew far faster than the others in 2025. Let me chart monthly revenue by region.", """\
import matplotlib.pyplot as plt
monthly = df.set_index("date").groupby("region")["revenue"].resample("MS").sum().unstack(0)
fig, ax = plt.subplots(figsize=(9, 4.5))
monthly.plot(ax=ax)
ax.set_title("Monthly revenue by region")
ax.set_xlabel("month")
ax.set_ylabel("revenue")
ax.axvline(pd.Timestamp("2025-04-01"), color="grey", linestyle="--", linewidth=1)
plt.show()"""),
    ("The east line steps up in April 2025. I'll measure that step against the other regions.", """\
q1 = monthly.loc["2025-01":"2025-03"].mean()
q2 = monthly.loc["2025-04":"2025-06"].mean()
print(((q2 / q1 - 1) * 100).round(1).rename("Q2 vs Q1 2025 %"))
daily_east = df[df["region"] == "east"].groupby("date")["revenue"].sum()
before, after = daily_east[:"2025-03-31"].tail(90).mean(), daily_east["2025-04-01":].head(90).mean()
print(f"east daily revenue, 90 days before: {before:,.0f}, after: {after:,.0f} ({after / before - 1:+.0%})")"""),
    ("Now seasonality (month of year, weekday) and the products, in one figure.", """\
by_month = df.groupby(df["date"].dt.month)["revenue"].sum()
days = df.groupby(df["date"].dt.day_of_week)["date"].nunique()
by_weekday = df.groupby(df["date"].dt.day_of_week)["revenue"].sum() / days
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
(by_month / by_month.mean()).plot.bar(ax=axes[0], color="tab:blue")
axes[0].set_title("Seasonality: revenue index by month")
axes[0].set_xlabel("month")
by_product.plot.bar(ax=axes[1], color="tab:orange")
axes[1].set_title("Revenue by product")
axes[1].set_ylabel("revenue")
fig.tight_layout()
print((by_month / by_month.mean()).round(2).to_dict())
print("weekend / weekday revenue per day:", round(by_weekday[5:].mean() / by_weekday[:5].mean(), 2))"""),
    ("I have the evidence: submitting the results before the report.", RESULTS),
    ("""\
# Café sales: what drives revenue

**Revenue grew 19% in 2025** (1.84M vs 1.54M), led by the **east** region, whose sales stepped up in
April 2025 and never came back down.

## Where the revenue comes from
- **By region:** east 33.6%, north 24.2%, west 22.9%, south 19.3% of 3.39M in total.
- **By product:** sandwiches 31.7% and lattes 26.5% bring in almost 60%; tea is the smallest (11.8%).
- **Growth 2025 vs 2024:** east +36%, while north, south and west grew 11–12%.

## A sudden change in the east
In *Monthly revenue by region*, the east line jumps at April 2025 (dashed line). Q2 2025 over Q1 2025,
east rose 10% while the other regions fell 15–17% (their usual spring dip). The east's daily revenue
in the 90 days after 1 April 2025 was 9% above the 90 days before, at the time of year when revenue
normally falls. A new site or longer opening hours would explain a step of this shape; it is worth
confirming with the region's managers.

## Seasonality
*Seasonality: revenue index by month* shows a winter peak (December at 1.25x the monthly average) and
a summer trough (June and July at 0.85x). Weekends bring in 1.25x the revenue of a weekday.

## Recommendations
1. Find out what changed in the east in April 2025 and, if it was a new site, test the same move in
   the north, the next largest region.
2. Staff and stock for the December peak and the weekend uplift; plan promotions for June–July.
3. Push the two products that carry the business: bundle sandwiches with lattes.

*Caveats:* the data end in December 2025; promotions (5% of rows, about 20% off) are not separated out.""",
     None),
]


def record() -> Path:
    """Run the real flow against the stand-in API with TURNS; copy the transcript to configs/."""
    import os
    import shutil
    import tempfile

    from tests.fakes.anthropic_api import FakeAnthropicAPI

    os.environ.setdefault("ANTHROPIC_API_KEY", "sk-stand-in")
    from cli.local_server import configure_prefect

    configure_prefect()
    from flows.analysis import analyze

    with FakeAnthropicAPI() as api, tempfile.TemporaryDirectory() as out:
        for text, code in TURNS:
            if code is None:
                api.enqueue_text(text)
            elif isinstance(code, dict):
                api.enqueue_results(code, text=text)
            else:
                api.enqueue_tool_use(code=code, text=text)
        result = analyze(str(CONFIG), {"model.base_url": api.base_url, "outputs.dir": out})
        shutil.copy(Path(result["run_dir"]) / "transcript.json", TRANSCRIPT)
    return TRANSCRIPT


if __name__ == "__main__":
    print(f"wrote {record()}")
