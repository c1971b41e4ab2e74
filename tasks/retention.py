"""``outputs.retention``: which run folders and saved model turns a policy deletes.

A run folder is ``<outputs.dir>/<analysis>/<YYYYmmdd-HHMMSS>-<flow run id>``; its name dates it. The
saved model turns (``<outputs.dir>/.results/model-turn-*``) of a completed run are deleted when it ends
(``tasks/prefect/model.py``); those left are a failed run's, kept for a resume until ``max_age``.
Nothing outside those folders is touched: a record of a run kept elsewhere outlives its folder.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from tasks.config.upkeep_schema import RetentionConfig

RUN_FOLDER = re.compile(r"^(\d{8}-\d{6})-[0-9a-zA-Z-]+$")
SAVED_TURN_PREFIX = "model-turn-"


@dataclass
class PrunePlan:
    run_dirs: list[Path] = field(default_factory=list)
    saved_turns: list[Path] = field(default_factory=list)

    def apply(self) -> None:
        for folder in self.run_dirs:
            shutil.rmtree(folder, ignore_errors=True)  # a file gone already, or one a reader still holds open
        for path in self.saved_turns:
            path.unlink(missing_ok=True)


def plan_prune(analysis_dir: Path, policy: RetentionConfig, results_dir: Path | None = None,
               keep: frozenset[Path] = frozenset(), now: float | None = None) -> PrunePlan:
    """What ``policy`` deletes among the run folders in ``analysis_dir`` (never those in ``keep``: the
    running run's own) and the saved turns in ``results_dir``."""
    now = time.time() if now is None else now
    plan = PrunePlan()
    max_age = policy.max_age_seconds
    runs = sorted(_run_folders(analysis_dir), key=lambda item: item[1], reverse=True)  # newest first
    for rank, (folder, started) in enumerate(runs):
        too_many = policy.keep_runs is not None and rank >= policy.keep_runs
        too_old = max_age is not None and now - started > max_age
        if (too_many or too_old) and folder.resolve() not in {k.resolve() for k in keep}:
            plan.run_dirs.append(folder)
    if max_age is not None and results_dir is not None and results_dir.is_dir():
        plan.saved_turns = sorted(p for p in results_dir.iterdir() if p.name.startswith(SAVED_TURN_PREFIX)
                                  and p.is_file() and now - p.stat().st_mtime > max_age)
    return plan


def _run_folders(analysis_dir: Path) -> list[tuple[Path, float]]:
    if not analysis_dir.is_dir():
        return []
    found = []
    for child in analysis_dir.iterdir():
        match = RUN_FOLDER.match(child.name)
        if match and child.is_dir() and not child.is_symlink():
            try:
                found.append((child, datetime.strptime(match.group(1), "%Y%m%d-%H%M%S").timestamp()))
            except ValueError:  # 8 and 6 digits that are no date: not a folder a run made
                continue
    return found
