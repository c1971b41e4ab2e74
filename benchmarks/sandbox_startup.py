"""How fast the local sandbox gets ready, and how fast a trivial cell round-trips.

    python benchmarks/sandbox_startup.py [--provisions 5] [--round-trips 50]

Targets (from the issue): a ready sandbox in under 2 s, a ``print(1)`` round trip under 50 ms.
"Ready" is ``provision()`` returning: the kernel answered kernel_info with iopub connected. The
first run also waits for the background warm-up imports (numpy, pandas, matplotlib), reported apart.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tasks.config.schema import SandboxConfig
from tasks.sandbox.local import pycache
from tasks.sandbox.local import LocalSandbox

READY_TARGET_S = 2.0
ROUND_TRIP_TARGET_S = 0.050


def line(label: str, value: float, target: float) -> str:
    verdict = "ok" if value < target else "OVER TARGET"
    return (f"{label:<28} {value * 1000:8.1f} ms   target < {target * 1000:.0f} ms   "
            f"ratio {value / target:5.2f}   {verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--provisions", type=int, default=5)
    parser.add_argument("--round-trips", type=int, default=50)
    args = parser.parse_args()
    config = SandboxConfig()

    ready, first_runs = [], []
    for _ in range(args.provisions):
        sandbox = LocalSandbox(config)
        started = time.perf_counter()
        sandbox.provision()
        ready.append(time.perf_counter() - started)
        started = time.perf_counter()
        sandbox.run_code("print(1)")
        first_runs.append(time.perf_counter() - started)
        sandbox.teardown()

    with LocalSandbox(config) as sandbox:
        sandbox.run_code("print(1)")  # let the warm-up finish
        trips = []
        for _ in range(args.round_trips):
            started = time.perf_counter()
            result = sandbox.run_code("print(1)")
            trips.append(time.perf_counter() - started)
            assert result.stdout == "1\n", result

    compiled = pycache.environment_is_compiled()
    print(f"bytecode: {'compiled at install' if compiled else 'host-built cache (see tasks/sandbox/local/pycache.py)'}"
          f"; provisions {args.provisions}, round trips {args.round_trips}")
    print(f"ready, each (s): {', '.join(f'{t:.2f}' for t in ready)}")
    print(line("ready (median)", statistics.median(ready), READY_TARGET_S))
    print(line("print(1) round trip (median)", statistics.median(trips), ROUND_TRIP_TARGET_S))
    print(f"{'print(1) round trip p95':<28} {sorted(trips)[int(len(trips) * 0.95) - 1] * 1000:8.1f} ms")
    print(f"{'first run (waits warm-up)':<28} {statistics.median(first_runs) * 1000:8.1f} ms   (no target)")
    ok = statistics.median(ready) < READY_TARGET_S and statistics.median(trips) < ROUND_TRIP_TARGET_S
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
