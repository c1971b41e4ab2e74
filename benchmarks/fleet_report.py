"""What benchmarks/fleet.py prints: throughput per batch against the baseline, CPU by component, the
targets, and where the fleet saturates."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from benchmarks.fleet_cpu import COMPONENTS, CpuUsage

BUSY_SATURATED = 0.9  # the cores' share above which the machine is taken as CPU-bound
FLAT = 1.1  # throughput that grows less than this from the smallest to the largest batch is flat


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def _cell(usage: CpuUsage, component: str) -> str:
    return f"{usage.core_share(component):4.0%} ({usage.cpu_share(component):3.0%})"


def print_report(baseline: list[tuple[float, CpuUsage]], results: list[dict], targets: dict[str, float],
                 orchestration: Sequence[str], fleet: Sequence[str], slots: int) -> None:
    walls = [wall for wall, _ in baseline]
    alone_wall = statistics.median(walls)
    alone = min(baseline, key=lambda b: abs(b[0] - alone_wall))[1]
    alone_rate = 60 / alone_wall
    print()
    print(f"baseline: `analyst run --replay` alone, median of {len(walls)}: {alone_wall:.1f} s "
          f"(runs: {', '.join(f'{w:.1f}' for w in walls)}) = {alone_rate:.2f} runs/min")
    print(f"fleet: {slots} runs at once at most (2 process workers x --limit 2), on {alone.cores} cores")
    print(f"{'runs':>5} | {'done':>7} | {'wall':>7} | {'runs/min':>8} | {'x alone':>7} | {'mean run':>8} | "
          f"{'mean wait':>9} | {'in flight':>9} | {'sandboxes':>9} | {'cores busy':>10}")
    for r in results:
        u: CpuUsage = r["usage"]
        r["rate"] = 60 * r["n"] / r["wall"]
        print(f"{r['n']:>5} | {r['completed']:>3}/{r['n']:<3} | {r['wall']:>5.1f} s | {r['rate']:>8.2f} | "
              f"{r['rate'] / alone_rate:>7.2f} | {r['run_s']:>6.1f} s | {r['wait_s']:>7.1f} s | "
              f"{u.mean_in_flight:>9.1f} | {u.mean_sandboxes:>9.1f} | {u.busy / (u.wall * u.cores):>10.0%}")
    print("(mean run: a flow run's start to end; mean wait: its creation to its start; in flight and sandboxes:")
    print(" alive at once, averaged over the batch)")

    usages = [("alone", alone)] + [(f"{r['n']} runs", r["usage"]) for r in results]
    print()
    print(f"CPU by component: share of the {alone.cores} cores over the wall time (share of all CPU the machine spent)")
    print(f"{'component':<21}" + "".join(f" | {label:>11}" for label, _ in usages))
    for component in COMPONENTS:
        print(f"{component:<21}" + "".join(f" | {_cell(u, component):>11}" for _, u in usages))
    print(f"{'cores busy':<21}" + "".join(f" | {u.busy / (u.wall * u.cores):>11.0%}" for _, u in usages))
    # Per run, the fleet's own CPU hardly depends on what else loads the machine, unlike its shares.
    runs = [1] + [r["n"] for r in results]
    print(f"{'fleet CPU s per run':<21}" + "".join(
        f" | {sum(u.seconds[c] for c in fleet) / n:>9.1f} s" for (_, u), n in zip(usages, runs, strict=True)))

    def orchestration_share(u: CpuUsage) -> float:
        used = sum(u.seconds[c] for c in fleet)
        return sum(u.seconds[c] for c in orchestration) / used if used else 0.0

    done, total = sum(r["completed"] for r in results), sum(r["n"] for r in results)
    speedups = [r["rate"] / alone_rate for r in results]
    first, last = results[0], results[-1]
    flat = last["rate"] / first["rate"]
    shares = [orchestration_share(r["usage"]) for r in results]
    print()
    print(f"runs completed: {done}/{total}   target: all   {_verdict(done == total)}")
    print(f"throughput / one run alone at {', '.join(str(r['n']) for r in results)} runs: "
          f"{', '.join(f'{s:.2f}' for s in speedups)}   target >= {targets['speedup']}   "
          f"{_verdict(min(speedups) >= targets['speedup'])}")
    if len(results) > 1:
        print(f"throughput at {last['n']} runs / at {first['n']} runs: {flat:.2f}   target >= {targets['flat']}   "
              f"{_verdict(flat >= targets['flat'])}")
    print(f"orchestration (server, PostgreSQL, workers' loops) / the fleet's CPU at "
          f"{', '.join(str(r['n']) for r in results)} runs: {', '.join(f'{s:.0%}' for s in shares)}   "
          f"target < {targets['orchestration']:.0%}   {_verdict(max(shares) < targets['orchestration'])}")
    print()
    for line in saturation(alone, results, slots, flat):
        print(line)


def saturation(alone: CpuUsage, results: list[dict], slots: int, flat: float) -> list[str]:
    """Where the fleet stops scaling: the cores, the worker slots, or neither (yet)."""
    last = results[-1]
    u: CpuUsage = last["usage"]
    busy = u.busy / (u.wall * u.cores)
    fleet = [c for c in COMPONENTS if c not in ("this benchmark", "rest of the machine")]
    ranked = sorted(fleet, key=u.core_share, reverse=True)
    grew = max(fleet, key=lambda c: u.core_share(c) - alone.core_share(c))
    lines = []
    if len(results) > 1:
        trend = "flat" if flat < FLAT else "still growing"
        lines.append(f"throughput from {results[0]['n']} to {last['n']} runs: x{flat:.2f} ({trend})")
    if busy >= BUSY_SATURATED:
        lines.append(f"saturated: the cores ({busy:.0%} busy at {last['n']} runs). Their largest users: "
                     + ", ".join(f"{c} {u.core_share(c):.0%}" for c in ranked[:3])
                     + f"; the rest of the machine {u.core_share('rest of the machine'):.0%}.")
        fleet_share = sum(u.core_share(c) for c in fleet)
        if u.core_share("rest of the machine") > fleet_share:
            lines.append(f"the fleet had only {fleet_share:.0%} of the cores (other work took more): its throughput "
                         "here is a lower bound; its CPU per run is the figure to compare.")
    elif u.mean_in_flight >= 0.9 * slots:
        lines.append(f"saturated: the worker slots ({u.mean_in_flight:.1f} of {slots} runs in flight on average, "
                     f"the cores {busy:.0%} busy): more workers or a higher --limit would run more at once.")
    else:
        lines.append(f"not saturated at {last['n']} runs: cores {busy:.0%} busy, {u.mean_in_flight:.1f} of {slots} "
                     "runs in flight on average.")
    lines.append(f"the share that grew most from one run alone to {last['n']} runs: {grew} "
                 f"({alone.core_share(grew):.0%} -> {u.core_share(grew):.0%} of the cores)")
    return lines
