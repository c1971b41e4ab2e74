"""What Prefect costs: the same 10-iteration replayed analysis, as a plain loop and as the flow.

    python benchmarks/overhead.py [--repeats 3]

(a) a plain Python loop like the seed's: the same steps (validate, provision, upload, 10 iterations
    of the replayed model and real code runs, final report, report files, teardown) with the same
    provider and sandbox, no Prefect;
(b) the ``analyze`` flow against a running local Prefect server (started before timing, as
    ``analyst run`` reuses it), with its tasks, logs and artifacts.
Targets (from the issue): orchestration overhead under 50 ms per iteration, and (b)/(a) under 1.5.
Runs alternate (a, b, a, b, ...) so that machine noise hits both; medians are reported. The first
flow run of a process pays one-off client set-up, so one untimed warm-up of each comes first.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CONFIG = ROOT / "configs" / "retail-sales.yaml"
ITERATIONS = 10
SHORT = 2
PER_ITERATION_TARGET_S = 0.050
RATIO_TARGET = 1.5


def write_transcript(path: Path, iterations: int) -> None:
    """A replayable transcript: the demo's code cells (loading, group-bys, charts), cycled to
    ``iterations`` tool-calling turns, then the final report."""
    from tasks.transcript import IterationRecord, Transcript
    from tasks.models.base import ModelTurn

    demo = Transcript.load(ROOT / "configs" / "retail-sales.transcript.json")
    cells = [c.code for c in demo.cells]
    transcript = Transcript(analysis="retail-sales", model=demo.model, provider="anthropic", system="", prompt="")
    for number in range(1, iterations + 1):
        block = {"type": "tool_use", "id": f"toolu_{number:02d}", "name": "run_python_code",
                 "input": {"code": cells[(number - 1) % len(cells)]}}
        turn = ModelTurn([{"type": "text", "text": f"Step {number}."}, block], "tool_use", demo.model)
        transcript.iterations.append(IterationRecord(number, turn))
    final = ModelTurn([{"type": "text", "text": demo.final_report or "Done."}], "end_turn", demo.model)
    transcript.iterations.append(IterationRecord(iterations + 1, final))
    if demo.results:  # the demo declares results: the turn that submits them, asked for after the report
        submit = {"type": "tool_use", "id": "toolu_results", "name": "submit_results", "input": demo.results}
        transcript.iterations.append(IterationRecord(iterations + 2, ModelTurn([submit], "tool_use", demo.model)))
    transcript.save(path)


def plain_loop(replay: Path, outputs: Path, iterations: int) -> float:
    """The seed's shape: one function, no orchestration, the project's own pieces."""
    from tasks.agent.loop import AnalysisLoop, LoopLimits
    from tasks.agent.start import start_transcript
    from tasks.config import load_config
    from tasks.datasets import dataset_file, validate_dataset
    from tasks.models import create_provider
    from tasks.reports import write_run_reports
    from tasks.results import results_model
    from tasks.sandbox import create_sandbox

    start = time.perf_counter()
    loaded = load_config(CONFIG, {"model.max_iterations": iterations})
    cfg = loaded.config
    reports = [validate_dataset(d, loaded.base_dir) for d in cfg.datasets]
    provider = create_provider(cfg.model, loaded.base_dir, replay=replay)
    run_dir = outputs / f"plain-{time.time_ns()}"
    transcript = start_transcript(cfg, reports, provider)
    with create_sandbox(cfg.sandbox) as sandbox:
        for dataset in cfg.datasets:
            with dataset_file(dataset, loaded.base_dir) as path:
                sandbox.upload(path, dataset.sandbox_filename)
        AnalysisLoop(provider, sandbox, transcript, run_dir, LoopLimits.from_config(cfg), results_model(cfg)).run()
    write_run_reports(transcript, run_dir)
    elapsed = time.perf_counter() - start
    assert transcript.status == "max_iterations" and len(transcript.cells) == iterations, transcript.status
    return elapsed


def flow_run(replay: Path, outputs: Path, iterations: int) -> float:
    from flows.analysis import analyze

    start = time.perf_counter()
    result = analyze(str(CONFIG), {"model.max_iterations": iterations, "outputs.dir": str(outputs)}, str(replay))
    elapsed = time.perf_counter() - start
    # the tool-calling turns, the final report, the results turn
    assert result["status"] == "max_iterations" and result["iterations"] == iterations + 2 and result["results"], result
    return elapsed


def measure(iterations: int, repeats: int, folder: Path) -> tuple[list[float], list[float]]:
    replay, outputs = folder / f"transcript-{iterations}.json", folder / "out"
    write_transcript(replay, iterations)
    plain, flow = [], []
    for _ in range(repeats):
        plain.append(plain_loop(replay, outputs, iterations))
        flow.append(flow_run(replay, outputs, iterations))
    return plain, flow


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    from cli.local_server import configure_prefect

    api_url = configure_prefect()
    with tempfile.TemporaryDirectory() as tmp:
        measure(SHORT, 1, Path(tmp))  # warm-up, untimed: imports and the first client set-up
        plain, flow = measure(ITERATIONS, args.repeats, Path(tmp))
        short_plain, short_flow = measure(SHORT, args.repeats, Path(tmp))
    a, b = statistics.median(plain), statistics.median(flow)
    fixed = statistics.median(short_flow) - statistics.median(short_plain)
    # The cost an iteration adds (the difference of the two runs' overheads), apart from what a run
    # costs once whatever its length: creating and finishing the flow run, Prefect's heartbeat thread
    # (joined at the end, up to 1 s), the report artifacts.
    per_iteration = ((b - a) - fixed) / (ITERATIONS - SHORT)
    print(f"Prefect server: {api_url}; medians of {args.repeats} runs, (a) and (b) alternating")
    print(f"(a) plain loop, {ITERATIONS} iterations   {a:6.3f} s   runs: {', '.join(f'{x:.2f}' for x in plain)}")
    print(f"(b) analyze flow, {ITERATIONS} iterations {b:6.3f} s   runs: {', '.join(f'{x:.2f}' for x in flow)}")
    print(f"(b) - (a) with {SHORT} iterations           {fixed:6.3f} s   (what a run costs once)")
    verdict = "ok" if per_iteration < PER_ITERATION_TARGET_S else "OVER TARGET"
    print(f"overhead per iteration          {per_iteration * 1000:6.1f} ms"
          f"  target < {PER_ITERATION_TARGET_S * 1000:.0f} ms   {verdict}")
    print(f"overhead per iteration, all in  {(b - a) / ITERATIONS * 1000:6.1f} ms  (the once-per-run cost spread over "
          f"{ITERATIONS} iterations)")
    verdict = "ok" if b / a < RATIO_TARGET else "OVER TARGET"
    print(f"wall time ratio (b)/(a)          {b / a:6.2f}     target < {RATIO_TARGET}   {verdict}")


if __name__ == "__main__":
    main()
