"""What the trend chart adds to a run: drawing it against the shortest run there is.

    python benchmarks/trend_chart.py [--repeats 5]

(a) the shortest run: the demo replayed for 2 iterations and its results, as a plain loop (overhead.py's
    (a): validate, a local sandbox, the code run for real, the report files), no Prefect. A replay
    does not wait for a model, so what the chart adds is at its largest here;
(b) ``draw_trends`` of a 20-run history (the default history.runs) of the demo's three numeric results,
    matplotlib already imported;
(c) importing matplotlib's Agg canvas in a fresh interpreter, less a fresh interpreter that imports
    nothing more: paid once per process (``analyst run``, a worker's flow run), and only by a run that
    draws a chart.
Target: (b)/(a) under 0.25. Runs alternate (a, b, a, b, ...) so machine noise hits both; medians.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RATIO_TARGET = 0.25
RUNS = 20
ITERATIONS = 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from benchmarks.overhead import plain_loop, write_transcript
    from tasks.config import load_config
    from tasks.reports.trends import draw_trends
    from tasks.run_history import RunRecord

    fields = load_config(ROOT / "configs" / "retail-sales.yaml").config.results
    history = [RunRecord(f"run-{i}", f"2026-{1 + i // 28:02d}-{1 + i % 28:02d}T07:00:00+00:00", "completed",
                         results={"total_revenue": 3e6 + 1e4 * i, "revenue_change_pct": 19.3 - i % 5,
                                  "best_region": "east", "sudden_changes": i % 3}) for i in range(RUNS)]
    runs, charts = [], []
    with tempfile.TemporaryDirectory() as tmp:
        replay = Path(tmp) / "transcript.json"
        write_transcript(replay, ITERATIONS)
        plain_loop(replay, Path(tmp) / "out", ITERATIONS)  # untimed warm-up: imports, the first sandbox
        draw_trends(history, fields, Path(tmp) / "warm")  # untimed: matplotlib's import, (c)
        for _ in range(args.repeats):
            runs.append(plain_loop(replay, Path(tmp) / "out", ITERATIONS))
            start = time.perf_counter()
            draw_trends(history, fields, Path(tmp) / "trends")
            charts.append(time.perf_counter() - start)
    imports = [_interpreter("from matplotlib.backends.backend_agg import FigureCanvasAgg; import matplotlib.figure")
               - _interpreter("pass") for _ in range(3)]
    a, b = statistics.median(runs), statistics.median(charts)
    print(f"medians of {args.repeats} runs, (a) and (b) alternating")
    print(f"(a) the demo replayed, {ITERATIONS} iterations, plain loop {a:6.3f} s   runs: "
          f"{', '.join(f'{x:.2f}' for x in runs)}")
    print(f"(b) draw_trends, {RUNS} runs x 3 results          {b:6.3f} s   runs: "
          f"{', '.join(f'{x:.2f}' for x in charts)}")
    c = statistics.median(imports)
    print(f"(c) matplotlib's import, once per process       {c:6.3f} s   (median of 3; (c)/(a) = {c / a:.2f}, no "
          "target: matplotlib is what draws the chart, imported by a run that draws one)")
    verdict = "ok" if b / a < RATIO_TARGET else "OVER TARGET"
    print(f"ratio (b)/(a)                                   {b / a:6.2f}     target < {RATIO_TARGET}   {verdict}")


def _interpreter(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
