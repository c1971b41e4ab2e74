"""Trend charts: each numeric result of an analysis across its runs, one panel per result, in one PNG.

Drawn on the host with matplotlib's Agg canvas (no pyplot, so no global backend or figure state),
imported only when there is something to draw: it takes about a second to import, and nothing on the
way to a run's first model request may wait for it.
The values come from the history table, that is from the model and from whatever the server holds:
only finite numbers are plotted, and the only text drawn is the config's own (result names and units).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tasks.config.schema import ResultField
from tasks.results import results_value
from tasks.run_history import RunRecord
from tasks.text_safety import printable

TRENDS_CHART = "charts/trends.png"  # relative to the run folder, like the model's charts
MIN_RUNS = 2  # a trend needs two points
NUMERIC = ("number", "integer")
_PANEL_INCHES = 2.0
_DPI = 100


@dataclass(frozen=True)
class Series:
    name: str
    unit: str | None
    integer: bool
    points: list[tuple[datetime, float]]  # oldest first


def numeric_series(records: Iterable[RunRecord], fields: Mapping[str, ResultField]) -> list[Series]:
    """A series per number or integer result that has a value in at least ``MIN_RUNS`` runs, in the
    config's order; runs without a value for it (failed, or from before it was declared) are skipped."""
    runs = sorted(((when, r) for r in records if (when := _moment(r.time)) is not None), key=lambda p: p[0])
    found = []
    for name, spec in fields.items():
        if spec.type not in NUMERIC:
            continue
        points = [(when, value) for when, record in runs
                  if (value := _number((record.results or {}).get(name))) is not None]
        if len(points) >= MIN_RUNS:
            found.append(Series(name, spec.unit, spec.type == "integer", points))
    return found


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _moment(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def draw_trends(records: Iterable[RunRecord], fields: Mapping[str, ResultField], run_dir: Path) -> Path | None:
    """Draw ``TRENDS_CHART`` in ``run_dir``; None, and no file (a retry's earlier one removed), when no
    numeric result has ``MIN_RUNS`` values yet."""
    path = Path(run_dir) / TRENDS_CHART
    series = numeric_series(records, fields)
    if not series:
        path.unlink(missing_ok=True)
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    _figure(series).savefig(path, format="png", dpi=_DPI)
    return path


def trend_charts(run_dir: Path) -> list[str]:
    """The trend chart of the run in ``run_dir``, as its reports link it, if one was drawn."""
    return [TRENDS_CHART] if (Path(run_dir) / TRENDS_CHART).is_file() else []


def _label(text: str) -> str:
    """Config text as matplotlib draws it literally: ``$`` would start mathtext."""
    return printable(text).replace("$", r"\$")


def _figure(series: list[Series]) -> Any:  # a matplotlib Figure: matplotlib is imported here alone (docstring)
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415
    from matplotlib.ticker import FixedFormatter, FixedLocator, FuncFormatter, MaxNLocator  # noqa: PLC0415

    height = 0.9 + _PANEL_INCHES * len(series)
    # Fixed margins rather than a layout engine: constrained layout doubled the drawing time.
    figure = Figure(figsize=(8, height))
    FigureCanvasAgg(figure)
    figure.subplots_adjust(left=0.13, right=0.97, top=1 - 0.55 / height, bottom=0.4 / height, hspace=0.35)
    axes = figure.subplots(len(series), 1, squeeze=False, sharex=True)[:, 0]
    ticks, labels = _time_ticks(sorted({t for item in series for t, _ in item.points}))
    for ax, item in zip(axes, series):
        times = [_days(t) for t, _ in item.points]
        values = [v for _, v in item.points]
        ax.plot(times, values, marker="o", linewidth=1.5, color="tab:blue")
        ax.plot(times[-1:], values[-1:], marker="o", markersize=9, color="tab:orange", linestyle="none")
        ax.annotate(results_value(values[-1]), (times[-1], values[-1]), textcoords="offset points",
                    xytext=(0, 8), ha="center", fontsize=9)
        ax.margins(x=0.08, y=0.2)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: results_value(value)))
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=item.integer))
        ax.set_title(_label(item.name + (f" ({item.unit})" if item.unit else "")), loc="left", fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(FixedFormatter(labels))
    figure.suptitle("Numeric results, run by run (the newest in orange)", fontsize=11)
    return figure


def _days(moment: datetime) -> float:
    return moment.timestamp() / 86400


def _time_ticks(times: list[datetime], most: int = 6) -> tuple[list[float], list[str]]:
    """Up to ``most`` of the runs' own times as ticks, the first and the last among them: matplotlib's
    date locators cost a third of the drawing. Dates, with the hour when two runs share a day."""
    count = min(most, len(times))
    chosen = sorted({times[round(i * (len(times) - 1) / max(1, count - 1))] for i in range(count)})
    same_day = len({t.date() for t in times}) < len(times)
    shown = "%Y-%m-%d %H:%M" if same_day else "%Y-%m-%d"
    return [_days(t) for t in chosen], [t.astimezone(timezone.utc).strftime(shown) for t in chosen]
