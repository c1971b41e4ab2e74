"""What Prefect costs: the same 10-iteration analysis as a plain loop and as the flow, with a model
that answers at once (a replay) and with one that takes a real model's time.

    python benchmarks/overhead.py [--repeats 3] [--mode replay|model|both]

(a) a plain Python loop like the seed's: the same steps (validate, provision, upload, 10 iterations
    of model turns and real code runs, final report, results, teardown, the trend chart of the results
    across runs, report files, the run added to the history) with the same provider and sandbox, no
    Prefect: its history is the run folders' ``history.jsonl`` alone, where the flow also reads and
    publishes the server's;
(b) the ``analyze`` flow against a running local Prefect server (started before timing, as
    ``analyst run`` reuses it), with its tasks, logs and artifacts.

Modes: ``replay`` replays the turns from a transcript (the model costs nothing, so the server's work
competes with the sandbox's for the cores); ``model`` is the real anthropic SDK against the stand-in
Messages API on loopback (tests/fakes/anthropic_api.py), scripted to the same turns, each answered
after a seeded 1-3 s delay (the same delays for (a) and (b)).

Each run's loop reports its progress events (``tasks.agent.events``) with their times, which split
the loop into the model's time (a request's event to the next event; in the flow the request itself
leaves earlier, at the end of the iteration before, so its model time can be the shorter and its rest
the longer: only their sum compares), the sandbox's (a code cell's start to its end) and the rest. The
orchestration on the critical path, per model turn, is (b)'s model time and rest minus (a)'s (the
sandbox's time is left out: the same code, and only noise between the two); what a run costs once
is (b)'s time outside its loop minus (a)'s, shown split into the time before the first model request
and the time after the loop. The CPU time of the loop's thread over the loop, per
turn, is printed too; it holds up better than the wall times on a loaded machine, but it is not the
whole cost: in the flow the model's request is sent, and its ``model-request`` task recorded, from
threads beside the loop's (``tasks/prefect/model.py``), and artifacts go through the publisher's.
Runs alternate (a, b, a, b, ...) so that machine noise
hits both; medians are reported. One untimed warm-up of each comes first (imports, client set-up).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CONFIG = ROOT / "configs" / "retail-sales.yaml"
ITERATIONS = 10
LATENCY_S = (1.0, 3.0)  # a model turn's time in ``model`` mode, uniform, seeded
TARGETS = {  # mode: (per-turn critical path s, once per run s, wall-time ratio)
    "replay": (0.015, 0.3, 1.5),
    "model": (0.015, 0.3, 1.05),
}


def demo_turns(iterations: int) -> tuple[str, list[str], str, dict[str, Any] | None]:
    """The demo's model, its code cells (loading, group-bys, charts) cycled to ``iterations``, its
    report and its results."""
    from tasks.transcript import Transcript

    demo = Transcript.load(ROOT / "configs" / "retail-sales.transcript.json")
    cells = [c.code for c in demo.cells]
    return demo.model, [cells[i % len(cells)] for i in range(iterations)], demo.final_report or "Done.", demo.results


def write_transcript(path: Path, iterations: int) -> None:
    """A replayable transcript: ``iterations`` tool-calling turns, the final report, the results."""
    from tasks.models.base import ModelTurn
    from tasks.transcript import IterationRecord, Transcript

    model, codes, report, results = demo_turns(iterations)
    transcript = Transcript(analysis="retail-sales", model=model, provider="anthropic", system="", prompt="")
    for number, code in enumerate(codes, 1):
        block = {"type": "tool_use", "id": f"toolu_{number:02d}", "name": "run_python_code", "input": {"code": code}}
        turn = ModelTurn([{"type": "text", "text": f"Step {number}."}, block], "tool_use", model)
        transcript.iterations.append(IterationRecord(number, turn))
    transcript.iterations.append(IterationRecord(iterations + 1, ModelTurn([{"type": "text", "text": report}],
                                                                           "end_turn", model)))
    if results:  # the demo declares results: the turn that submits them, asked for after the report
        submit = {"type": "tool_use", "id": "toolu_results", "name": "submit_results", "input": results}
        transcript.iterations.append(IterationRecord(iterations + 2, ModelTurn([submit], "tool_use", model)))
    transcript.save(path)


def script_api(api: Any, iterations: int, latencies: list[float]) -> None:
    """The same turns as ``write_transcript``, for the stand-in API, each after its latency."""
    _, codes, report, results = demo_turns(iterations)
    for number, code in enumerate(codes, 1):
        api.enqueue_tool_use(code=code, text=f"Step {number}.", latency=latencies[number - 1])
    api.enqueue_text(report, latency=latencies[iterations])
    if results:
        api.enqueue_results(results, latency=latencies[iterations + 1])


@dataclass
class Timing:
    total: float
    before: float  # from the start to the first model request
    loop: float  # from the first model request to the end of the loop
    model: float
    sandbox: float
    turns: int
    cpu: float  # the loop's thread's CPU time over the same span: what its work costs, whatever the load

    @property
    def rest(self) -> float:
        return self.loop - self.model - self.sandbox

    @property
    def after(self) -> float:
        """From the end of the loop to the end of the run."""
        return self.total - self.before - self.loop


@contextmanager
def timed_events() -> Iterator[list[tuple[str, float, float]]]:
    """The loop's events with their wall time and the CPU time of the thread that runs the loop."""
    from tasks.agent import events

    seen: list[tuple[str, float, float]] = []
    with events.listening(lambda kind, data: seen.append((kind, time.perf_counter(), time.thread_time()))):
        yield seen


def timing(start: float, total: float, seen: list[tuple[str, float, float]]) -> Timing:
    loop = [(kind, at) for kind, at, _ in seen if kind in ("model_request", "model_turn", "code_start", "code_done",
                                                           "finished")]
    first = next(i for i, (kind, _) in enumerate(loop) if kind == "model_request")
    loop = loop[first:]
    model = sum(nxt - at for (kind, at), (_, nxt) in zip(loop, loop[1:]) if kind == "model_request")
    sandbox = sum(nxt - at for (kind, at), (_, nxt) in zip(loop, loop[1:]) if kind == "code_start")
    turns = sum(1 for kind, _ in loop if kind == "model_request")
    cpu = [used for kind, _, used in seen if kind in ("model_request", "finished")]
    return Timing(total, loop[0][1] - start, loop[-1][1] - loop[0][1], model, sandbox, turns, cpu[-1] - cpu[0])


def plain_loop(overrides: dict[str, Any], replay: Path | None, outputs: Path) -> Timing:
    """The seed's shape: one function, no orchestration, the project's own pieces."""
    from tasks.agent.loop import AnalysisLoop, LoopLimits
    from tasks.agent.start import start_transcript
    from tasks.config import load_config
    from tasks.datasets import dataset_file, validate_dataset
    from tasks.models import create_provider
    from tasks.reports import write_run_reports
    from tasks.reports.trends import draw_trends
    from tasks.results import results_model
    from tasks.run_history import append_record, merge_records, read_local_records, record_of
    from tasks.sandbox import create_sandbox

    with timed_events() as seen:
        start = time.perf_counter()
        loaded = load_config(CONFIG, overrides)
        cfg = loaded.config
        reports = [validate_dataset(d, loaded.base_dir) for d in cfg.datasets]
        provider = create_provider(cfg.model, loaded.base_dir, replay=replay)
        run_dir = outputs / f"plain-{time.time_ns()}"
        history_dir = outputs / cfg.name
        earlier = read_local_records(history_dir, cfg.history.runs)
        transcript = start_transcript(cfg, reports, provider)
        with create_sandbox(cfg.sandbox) as sandbox:
            for dataset in cfg.datasets:
                with dataset_file(dataset, loaded.base_dir) as path:
                    sandbox.upload(path, dataset.sandbox_filename)
            AnalysisLoop(provider, sandbox, transcript, run_dir, LoopLimits.from_config(cfg), results_model(cfg)).run()
        record = record_of(transcript)
        draw_trends(merge_records([record], earlier)[: cfg.history.runs], cfg.results, run_dir)
        write_run_reports(transcript, run_dir)
        append_record(history_dir, record)
        provider.close()
        elapsed = time.perf_counter() - start
    assert transcript.status == "max_iterations" and transcript.results, (transcript.status, transcript.stop_detail)
    return timing(start, elapsed, seen)


def flow_run(overrides: dict[str, Any], replay: Path | None, outputs: Path) -> Timing:
    from flows.analysis import analyze
    from tasks.prefect.heartbeat import heartbeats_from_the_flow

    with timed_events() as seen, heartbeats_from_the_flow():  # as analyst run calls it
        start = time.perf_counter()
        result = analyze(str(CONFIG), overrides | {"outputs.dir": str(outputs)}, str(replay) if replay else None)
        elapsed = time.perf_counter() - start
    assert result["status"] == "max_iterations" and result["results"], result
    return timing(start, elapsed, seen)


def measure(mode: str, repeats: int, folder: Path) -> tuple[list[Timing], list[Timing]]:
    overrides: dict[str, Any] = {"model.max_iterations": ITERATIONS}
    replay: Path | None = None
    before: Callable[[], None] = lambda: None  # noqa: E731
    api = None
    if mode == "replay":
        replay = folder / "transcript.json"
        write_transcript(replay, ITERATIONS)
    else:
        from tests.fakes.anthropic_api import FakeAnthropicAPI

        api = FakeAnthropicAPI().start()
        os.environ["ANTHROPIC_API_KEY"] = "sk-benchmark-stand-in"
        overrides["model.base_url"] = api.base_url
        seeded = random.Random(15)
        latencies = [seeded.uniform(*LATENCY_S) for _ in range(ITERATIONS + 2)]
        before = lambda: script_api(api, ITERATIONS, latencies)  # noqa: E731
    plain, flow = [], []
    try:
        for run in range(repeats + 1):  # the first pair is the warm-up
            before()
            a = plain_loop(overrides, replay, folder / "out")
            before()
            b = flow_run(overrides, replay, folder / "out")
            if run:
                plain.append(a)
                flow.append(b)
    finally:
        if api is not None:
            api.stop()
    return plain, flow


def report(mode: str, plain: list[Timing], flow: list[Timing]) -> None:
    turn_target, run_target, ratio_target = TARGETS[mode]

    def med(runs: list[Timing], figure: Callable[[Timing], float]) -> float:
        return statistics.median(figure(t) for t in runs)

    def verdict(value: float, target: float) -> str:
        return "ok" if value <= target else "OVER TARGET"

    turns = flow[0].turns
    print(f"\n== {mode}: {ITERATIONS} iterations ({turns} model turns with the final report and the results); "
          f"medians of {len(plain)} runs, (a) and (b) alternating; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores")
    print(f"{'':32} {'(a) plain':>10} {'(b) flow':>10} {'(b)-(a)':>10}")
    rows: list[tuple[str, Callable[[Timing], float], float]] = [
        ("wall time, s", lambda t: t.total, 1),
        ("outside the loop, s", lambda t: t.total - t.loop, 1),
        ("  before the first request, s", lambda t: t.before, 1),
        ("  after the loop, s", lambda t: t.after, 1),
        ("per turn: model, ms", lambda t: t.model / t.turns, 1000),
        ("per turn: sandbox, ms", lambda t: t.sandbox / t.turns, 1000),
        ("per turn: the rest, ms", lambda t: t.rest / t.turns, 1000),
        ("per turn: loop thread's CPU, ms", lambda t: t.cpu / t.turns, 1000),
    ]
    for label, figure, scale in rows:
        a, b = med(plain, figure) * scale, med(flow, figure) * scale
        print(f"{label:32} {a:10.3f} {b:10.3f} {b - a:10.3f}")
    critical = statistics.median((f.model + f.rest) / f.turns - (p.model + p.rest) / p.turns
                                 for p, f in zip(plain, flow))
    once = statistics.median((f.total - f.loop) - (p.total - p.loop) for p, f in zip(plain, flow))
    ratio = med(flow, lambda t: t.total) / med(plain, lambda t: t.total)
    print(f"{'orchestration per turn, critical path':38} {critical * 1000:7.1f} ms   target <= "
          f"{turn_target * 1000:.0f} ms   {verdict(critical, turn_target)}")
    print(f"{'orchestration once per run':38} {once:7.3f} s    target <= {run_target} s   {verdict(once, run_target)}")
    print(f"{'wall time ratio (b)/(a)':38} {ratio:7.3f}      target <= {ratio_target}    "
          f"{verdict(ratio, ratio_target)}")
    print("runs (a): " + ", ".join(f"{t.total:.2f}" for t in plain) + "   (b): " + ", ".join(f"{t.total:.2f}"
                                                                                         for t in flow))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mode", choices=["replay", "model", "both"], default="both")
    args = parser.parse_args()
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    from cli.local_server import configure_prefect

    print(f"Prefect server: {configure_prefect()}")
    for mode in ("replay", "model") if args.mode == "both" else (args.mode,):
        with tempfile.TemporaryDirectory() as tmp:
            report(mode, *measure(mode, args.repeats, Path(tmp)))


if __name__ == "__main__":
    main()
