"""The generated reference pages match the code they are generated from (`make docs` rewrites them)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest


DOCS = Path(__file__).resolve().parents[1] / "docs"


def _generator():
    spec = importlib.util.spec_from_file_location("docs_generate", DOCS / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATE = _generator()


def test_generated_pages_are_current() -> None:
    assert GENERATE.stale_pages() == []


def test_config_reference_lists_every_key_with_a_description() -> None:
    from tasks.config.schema import AnalysisConfig

    page = GENERATE.render_config()
    for path, model in GENERATE._models(AnalysisConfig, ""):
        for name, field in model.model_fields.items():
            key = field.alias or name
            assert field.description, f"{model.__name__}.{name} has no Field(description=...)"
            assert f"| `{path + '.' if path else ''}{key}` |" in page


def test_cli_reference_holds_every_command_and_option() -> None:
    import typer

    from cli import app

    page = GENERATE.render_cli()
    root = typer.main.get_command(app)
    for name, command in root.commands.items():
        assert f"## `analyst {name}`" in page
        for sub in getattr(command, "commands", {}):
            assert f"## `analyst {name} {sub}`" in page
    assert "--resume RUN_FOLDER" in page
    assert "\x1b[" not in page  # no colour codes, whatever the terminal


def test_a_stale_or_missing_page_is_reported_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "config.md").write_text(GENERATE.render_config().replace("Seconds for one model request.", "Seconds."))
    assert GENERATE.stale_pages(tmp_path) == ["docs/config.md is stale: run make docs",
                                              "docs/cli.md is stale: run make docs"]


def test_links_between_pages_lead_to_pages() -> None:
    pages = {page: page.parent for page in DOCS.glob("*.md")}
    pages[DOCS.parent / "README.md"] = DOCS.parent
    for page, base in pages.items():
        for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            assert (base / target).is_file(), f"{page.name} links to {target}, which does not exist"


def test_every_config_shown_in_the_readme_and_docs_loads(tmp_path: Path) -> None:
    """A YAML block that starts with `name:` and has a prompt is a whole config a reader may copy: it must
    load as one (the schema files it names stand in as the demo's)."""
    from tasks.config import load_config
    from tasks.errors import ConfigError

    demo_schema = (DOCS.parent / "configs" / "schemas" / "retail_sales.schema.yaml").read_text()
    blocks = [(page.name, block) for page in [DOCS.parent / "README.md", *sorted(DOCS.glob("*.md"))]
              for block in re.findall(r"```yaml\n(name: .*?)```", page.read_text(), re.S) if "\nprompt:" in block]
    assert any(name == "README.md" for name, _ in blocks)
    for number, (name, block) in enumerate(blocks):
        folder = tmp_path / str(number)
        for schema in re.findall(r"schema: (\S+\.yaml)", block):
            (folder / schema).parent.mkdir(parents=True, exist_ok=True)
            (folder / schema).write_text(demo_schema)
        for data in re.findall(r"path: (\S+\.csv)", block):
            (folder / data).parent.mkdir(parents=True, exist_ok=True)
            (folder / data).write_text("date\n2026-01-01\n")
        folder.mkdir(exist_ok=True)
        (folder / "config.yaml").write_text(block)
        try:
            load_config(folder / "config.yaml")
        except ConfigError as exc:
            pytest.fail(f"the config shown in {name} does not load: {exc}")
