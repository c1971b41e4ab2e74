"""``analyst init``: from data files to a config that validates and runs, in one command."""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path
from typing import Any

import typer
import yaml
from pydantic import BaseModel

from cli._errors import err_console, user_errors
from tasks.config.schema import DATASET_NAME, SLUG, AnalysisConfig
from tasks.errors import AnalystError

# A placeholder that is still a real request, so the config validates and runs as written.
PLACEHOLDER_PROMPT = ("Describe this data: what each column holds, its distributions and missing values, and the "
                      "notable relationships between columns. Chart what you find and finish with three findings.")
_REQUIRED = ("name", "datasets", "prompt")


def init(
    data: list[Path] = typer.Argument(..., help="One or more data files (csv, tsv, parquet, json, jsonl, xlsx)."),
    prompt: str | None = typer.Option(None, "--prompt", help="The question to ask (default: a general description)."),
    name: str | None = typer.Option(None, "--name", help="The analysis name (default: a slug of the first file name)."),
    output: Path | None = typer.Option(None, "-o", "--output", help="The config to write (default: ./NAME.yaml)."),
    force: bool = typer.Option(False, "--force", help="Overwrite the config and schema files if they exist."),
) -> None:
    """Write a config and a drafted schema per data file, ready for `analyst validate` and `analyst run`."""
    from tasks.datasets import infer_schema_yaml

    with user_errors():
        name = name or slug(data[0].stem)
        if not SLUG.match(name):
            raise typer.BadParameter(f"{name!r} is not a slug: expected lowercase letters, digits and single "
                                     "dashes, e.g. 'weekly-sales'", param_hint="--name")
        config_path = (output or Path(f"{name}.yaml")).absolute()
        folder = config_path.parent
        names = _dataset_names(data)
        schemas = {n: folder / f"{n}.schema.yaml" for n in names}
        taken = [p for p in [config_path, *schemas.values()] if p.exists()]
        if taken and not force:
            raise AnalystError(f"{taken[0]}: already exists; pass --force to overwrite it, or -o OTHER.yaml")
        drafts = {n: infer_schema_yaml(path) for n, path in zip(names, data)}
        folder.mkdir(parents=True, exist_ok=True)
        for dataset_name, text in drafts.items():
            schemas[dataset_name].write_text(text, encoding="utf-8")
        entries = [{"name": n, "path": _relative(p, folder), "schema": schemas[n].name} for n, p in zip(names, data)]
        config_path.write_text(config_text(name, entries, prompt), encoding="utf-8")
    for schema in schemas.values():
        err_console.print(f"wrote {schema}")
    err_console.print(f"wrote {config_path}\nnext: analyst validate {_shown(config_path)}  then  "
                      f"analyst run {_shown(config_path)}")


def slug(text: str) -> str:
    """'Sales 2025 (final)' -> 'sales-2025-final'; 'DES=+2006261' -> 'des-2006261'."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:60].strip("-") or "analysis"


def _dataset_names(paths: list[Path]) -> list[str]:
    names: list[str] = []
    for path in paths:
        base = slug(path.stem).replace("-", "_")
        base = base if DATASET_NAME.match(base) else "data"
        candidate, n = base, 2
        while candidate in names:
            candidate, n = f"{base}_{n}", n + 1
        names.append(candidate)
    return names


def _relative(path: Path, folder: Path) -> str:
    return Path(os.path.relpath(path.absolute(), folder)).as_posix()


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def config_text(name: str, datasets: list[dict[str, str]], prompt: str | None) -> str:
    """The config: the required keys set, every optional key commented out with its default."""
    lines = ["# Written by `analyst init`. Every key is documented in the README.", f"name: {name}", "",
             yaml.safe_dump({"datasets": datasets}, sort_keys=False, allow_unicode=True).rstrip()]
    if prompt:
        lines += ["", yaml.safe_dump({"prompt": prompt}, allow_unicode=True, width=110).rstrip()]
    else:
        lines += ["", "# A placeholder that works as it is: replace it with your question.",
                  yaml.safe_dump({"prompt": PLACEHOLDER_PROMPT}, width=110).rstrip()]
    lines += ["", "# Optional keys, with their defaults: uncomment to change one."]
    for key, field in AnalysisConfig.model_fields.items():
        if key in _REQUIRED:
            continue
        lines += _commented(key, _default(field), field.description)
    return "\n".join(lines) + "\n"


def _default(field: Any) -> Any:
    value = field.get_default(call_default_factory=True)
    return value.model_dump(mode="json", by_alias=True) if isinstance(value, BaseModel) else value


def _commented(key: str, value: Any, description: str | None) -> list[str]:
    lines = [f"# {key}: {description}"] if description and not isinstance(value, dict) else []
    if key == "schedule":
        return ["# schedule:          # one of cron, interval, rrule; e.g.", '#   cron: "0 7 * * 1"',
                "#   timezone: UTC"]
    text = yaml.safe_dump({key: value}, sort_keys=False, width=110, default_flow_style=False).rstrip()
    return lines + ["# " + line for line in text.splitlines()]
