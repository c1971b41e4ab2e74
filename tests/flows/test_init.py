"""``analyst init``: a data file to a config that validates and runs, in one command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from cli.init import slug
from tasks.config import load_config
from tests.datasets.messy_csv import messy_csv

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("stem, expected", [("DES=+2006261", "des-2006261"),
                                            ("beauty and the labor market", "beauty-and-the-labor-market"),
                                            ("Sales 2025 (final)", "sales-2025-final"),
                                            ("Ünïcode_ñame", "unicode-name"),
                                            ("%%%", "analysis")])
def test_file_names_become_slugs(stem: str, expected: str) -> None:
    assert slug(stem) == expected


def test_init_writes_a_config_that_validates_at_once(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    for name in ("DES=+2006261.csv", "beauty and the labor market.csv"):
        (tmp_path / "data" / name).write_bytes(messy_csv(3)[0])
    result = cli("init", "data/DES=+2006261.csv", "data/beauty and the labor market.csv")
    assert result.exit_code == 0, result.output
    config = tmp_path / "des-2006261.yaml"
    loaded = load_config(config)
    assert [d.path for d in loaded.config.datasets] == ["data/DES=+2006261.csv", "data/beauty and the labor market.csv"]
    assert "# sandbox:\n#   provider: local" in config.read_text()
    assert cli("validate", config).exit_code == 0

    again = cli("init", "data/DES=+2006261.csv")
    assert again.exit_code == 1 and "already exists; pass --force" in again.output
    assert cli("init", "data/DES=+2006261.csv", "--force", "--prompt", "Why?").exit_code == 0
    assert yaml.safe_load(config.read_text())["prompt"] == "Why?"


def _listing_transcript(path: Path) -> None:
    """A two-turn transcript: list the data folder, then answer."""
    demo = json.loads((ROOT / "configs" / "retail-sales.transcript.json").read_text())
    first, last = demo["iterations"][0], demo["iterations"][-1]
    first["turn"]["content"][1]["input"]["code"] = "import os\nprint(sorted(os.listdir('data')))"
    first["cells"] = []
    last["number"], last["turn"]["content"] = 2, [{"type": "text", "text": "# Report\nThe data is there."}]
    demo["iterations"] = [first, last]
    path.write_text(json.dumps(demo))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [11, 12, 13])  # each replayed run costs seconds: a sample of generated files
def test_init_then_a_replayed_run(cli, prefect_api, tmp_path: Path, monkeypatch, seed: int) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "messy file.csv").write_bytes(messy_csv(seed)[0])
    assert cli("init", "messy file.csv", "-o", "a.yaml").exit_code == 0
    _listing_transcript(tmp_path / "t.json")
    result = cli("run", "a.yaml", "--replay", "t.json", "--json", "--set", f"outputs.dir={tmp_path / 'out'}")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == "completed"
