"""How long `analyst run` takes to send Claude its first request, against the bare SDK doing the same.

    python benchmarks/first_request.py [--repeats 5]

Both are fresh processes, as a user starts them, timed from just before the process is started to
the arrival of their first request at the stand-in Anthropic API (tests/fakes/anthropic_api.py) on
loopback:
(a) a bare script: ``import anthropic``, one streamed messages request;
(b) ``analyst run configs/retail-sales.yaml`` with ANTHROPIC_BASE_URL pointed at the stand-in, against
    a warm local Prefect server (cli/local_server.py, started before timing, as `analyst run` reuses it),
    validating the data, starting the local sandbox and uploading the data as a real run does; as a
    user's second and later runs go, through the warm runner the first run left (cli/warm_runner.py);
(c) the same in its own process, as a first run goes (``ANALYST_WARM_RUNNER=0``).
Targets (from the issue): (b) at most 3 s, and at most 1.3 times (a) measured in the same run.
Runs alternate (a, b, c, a, b, c, ...) so that machine noise hits all; medians are reported. One
untimed run of each comes first (bytecode compiled, the server's first flow and automation
created, the runner started and its imports done).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cli import local_server, warm_client  # noqa: E402 - after the path is set
from tests.fakes.anthropic_api import FakeAnthropicAPI  # noqa: E402

CONFIG = ROOT / "configs" / "retail-sales.yaml"
ANALYST = Path(sys.executable).with_name("analyst")
ABSOLUTE_TARGET_S = 3.0
RATIO_TARGET = 1.3
MODEL = "claude-sonnet-5-5"
RUN_TIMEOUT_S = 300.0

BARE_SCRIPT = f"""
import anthropic

client = anthropic.Anthropic()
with client.messages.stream(model={MODEL!r}, max_tokens=1024,
                            messages=[{{"role": "user", "content": "Which region sells most?"}}]) as stream:
    stream.get_final_message()
"""
RESULTS = {"total_revenue": 1.0, "revenue_change_pct": 0.0, "best_region": "north", "sudden_changes": 0}


def timed_first_request(api: FakeAnthropicAPI, argv: list[str], env: dict[str, str]) -> float:
    """Seconds from starting ``argv`` to its first request's arrival; waits for the process to end."""
    seen = len(api.requests)
    started = time.monotonic()
    proc = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    if proc.returncode != 0 or len(api.requests) == seen:
        raise SystemExit(f"{argv[1]} ... exited {proc.returncode} after {len(api.requests) - seen} request(s):\n"
                         f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return api.requests[seen].arrived - started


def bare_sdk(api: FakeAnthropicAPI, env: dict[str, str]) -> float:
    api.enqueue_text("The north.")
    return timed_first_request(api, [sys.executable, "-c", BARE_SCRIPT], env)


def analyst_run(api: FakeAnthropicAPI, env: dict[str, str], outputs: Path) -> float:
    """(b) with ``env``, (c) with ``ANALYST_WARM_RUNNER=0`` in it."""
    api.enqueue_text("Report: the north sells most.")  # the final report, then the declared results
    api.enqueue_results(RESULTS)
    return timed_first_request(api, [str(ANALYST), "run", str(CONFIG), "--json", "--set", f"outputs.dir={outputs}"],
                               env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, FakeAnthropicAPI() as api:
        # A user's installs hold compiled bytecode (pip and `uv pip install --compile-bytecode` write it):
        # without PYTHONDONTWRITEBYTECODE the untimed first runs write what is missing.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_") and k != "PYTHONDONTWRITEBYTECODE"}
        env.update(ANALYST_HOME=f"{tmp}/home", ANTHROPIC_BASE_URL=api.base_url, ANTHROPIC_API_KEY="sk-ant-bench",
                   PREFECT_SERVER_ANALYTICS_ENABLED="false", ANALYST_SERVER_PORT=os.environ.get(
                       "ANALYST_SERVER_PORT", "4250"))
        os.environ.update(ANALYST_HOME=env["ANALYST_HOME"], ANALYST_SERVER_PORT=env["ANALYST_SERVER_PORT"])

        print("Starting a local Prefect server (a cold start takes up to a minute)...", flush=True)
        server = local_server.start()
        cold_env = {**env, warm_client.SWITCH: "0"}
        try:
            bare_sdk(api, env)  # warm-up, untimed
            analyst_run(api, cold_env, Path(tmp) / "out")
            analyst_run(api, env, Path(tmp) / "out")  # leaves a runner for this environment
            wait_for_runner(env)
            bare, warm, cold = [], [], []
            for _ in range(args.repeats):
                bare.append(bare_sdk(api, env))
                warm.append(analyst_run(api, env, Path(tmp) / "out"))
                cold.append(analyst_run(api, cold_env, Path(tmp) / "out"))
        finally:
            local_server.stop()
    a, b, c = statistics.median(bare), statistics.median(warm), statistics.median(cold)
    print(f"Prefect server: {server.url} (warm); medians of {args.repeats} runs, (a), (b) and (c) alternating")
    print(f"(a) bare SDK script, first request        {a:6.2f} s   runs: {', '.join(f'{x:.2f}' for x in bare)}")
    print(f"(b) analyst run, first request            {b:6.2f} s   runs: {', '.join(f'{x:.2f}' for x in warm)}")
    print(f"(c) analyst run, own process (first run)  {c:6.2f} s   runs: {', '.join(f'{x:.2f}' for x in cold)}")
    verdict = "ok" if b <= ABSOLUTE_TARGET_S else "OVER TARGET"
    print(f"(b)                                       {b:6.2f} s   target <= {ABSOLUTE_TARGET_S:.1f} s   {verdict}")
    verdict = "ok" if b / a <= RATIO_TARGET else "OVER TARGET"
    print(f"ratio (b)/(a)                             {b / a:6.2f}     target <= {RATIO_TARGET}     {verdict}")
    print(f"ratio (c)/(a)                             {c / a:6.2f}     (no target: a first run, or the runner off)")


def wait_for_runner(env: dict[str, str], timeout: float = RUN_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not warm_client.ready(env):
        if time.monotonic() > deadline:
            raise SystemExit(f"no warm runner after {timeout:.0f} s; see {local_server.paths(env).home / 'runner.log'}")
        time.sleep(0.2)

if __name__ == "__main__":
    main()
