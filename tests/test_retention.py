"""``outputs.retention`` on real folders: which run folders and saved model turns go, and `analyst prune`."""

from __future__ import annotations

import os
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import yaml

from tasks.config.upkeep_schema import RetentionConfig
from tasks.retention import plan_prune

DEMO = Path(__file__).resolve().parents[1] / "configs" / "retail-sales.yaml"
NOW = datetime(2026, 11, 30, 12, 0, 0)


def make_runs(analysis_dir: Path, ages_in_days: list[int]) -> list[Path]:
    folders = []
    for index, days in enumerate(ages_in_days):
        stamp = (NOW - timedelta(days=days)).strftime("%Y%m%d-%H%M%S")
        folder = analysis_dir / f"{stamp}-run{index:05d}"
        folder.mkdir(parents=True)
        (folder / "report.md").write_text("# report")
        folders.append(folder)
    return folders


def saved_turn(results_dir: Path, name: str, days_old: int) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / name
    path.write_text("{}")
    when = NOW.timestamp() - days_old * 86400
    os.utime(path, (when, when))
    return path


def test_keep_runs_keeps_the_newest(tmp_path) -> None:
    folders = make_runs(tmp_path / "sales", [0, 3, 1, 10, 2])
    (tmp_path / "sales" / "notes").mkdir()  # not a run folder: never touched

    plan = plan_prune(tmp_path / "sales", RetentionConfig(keep_runs=2), now=NOW.timestamp())

    assert sorted(plan.run_dirs) == sorted([folders[1], folders[3], folders[4]])
    plan.apply()
    assert sorted(p.name for p in (tmp_path / "sales").iterdir()) == sorted([folders[0].name, folders[2].name, "notes"])


def test_max_age_removes_old_folders_and_old_saved_turns_but_never_the_running_one(tmp_path) -> None:
    folders = make_runs(tmp_path / "sales", [1, 100, 200])
    results = tmp_path / ".results"
    young, old = saved_turn(results, "model-turn-young", 5), saved_turn(results, "model-turn-old", 95)
    other = saved_turn(results, "something-else", 400)

    plan = plan_prune(tmp_path / "sales", RetentionConfig(max_age="90d"), results, keep=frozenset({folders[2]}),
                      now=NOW.timestamp())

    assert plan.run_dirs == [folders[1]] and plan.saved_turns == [old]
    plan.apply()
    assert young.exists() and other.exists() and not old.exists() and folders[2].exists()


def test_no_policy_deletes_nothing(tmp_path) -> None:
    make_runs(tmp_path / "sales", [1, 1000])
    saved_turn(tmp_path / ".results", "model-turn-a", 1000)
    plan = plan_prune(tmp_path / "sales", RetentionConfig(), tmp_path / ".results", now=NOW.timestamp())
    assert plan.run_dirs == [] and plan.saved_turns == []


def demo_config(folder: Path, outputs: dict) -> Path:
    """The demo config in ``folder``, with these ``outputs``."""
    shutil.copytree(DEMO.parent, folder, ignore=shutil.ignore_patterns("outputs", "*.json"))
    config = folder / DEMO.name
    raw = yaml.safe_load(config.read_text())
    raw["name"], raw["outputs"] = "sales", outputs
    config.write_text(yaml.safe_dump(raw))
    return config


def test_analyst_prune_dry_run_then_for_real(cli, tmp_path) -> None:
    config = demo_config(tmp_path / "c", {"dir": "out", "retention": {"keep_runs": 1}})
    now = datetime.now()
    for days in (0, 1, 2):
        stamp = (now - timedelta(days=days)).strftime("%Y%m%d-%H%M%S")
        (tmp_path / "c" / "out" / "sales" / f"{stamp}-abcdef12").mkdir(parents=True)

    dry = cli("prune", config, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would delete 2 run folder(s)" in dry.output and len(list((tmp_path / "c" / "out" / "sales").iterdir())) == 3

    done = cli("prune", config)
    assert done.exit_code == 0, done.output
    assert "deleted 2 run folder(s)" in done.output
    [kept] = (tmp_path / "c" / "out" / "sales").iterdir()
    assert kept.name.startswith(now.strftime("%Y%m%d"))


def test_a_config_without_retention_keeps_everything(cli, tmp_path) -> None:
    config = demo_config(tmp_path / "c", {"dir": "out"})
    result = cli("prune", config)
    assert result.exit_code == 0 and "everything is kept" in result.output
