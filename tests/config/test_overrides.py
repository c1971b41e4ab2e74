"""Overrides: dotted keys (--set) and nested mappings (the flow's overrides parameter) apply alike and fail alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.config import load_config, parse_overrides
from tasks.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "configs" / "retail-sales.yaml"


def problems(overrides) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(DEMO, overrides)
    return [str(p) for p in caught.value.problems]


def test_nested_mappings_merge_into_the_file_like_dotted_keys() -> None:
    dotted = load_config(DEMO, {"model.max_iterations": 3, "datasets.0.on_invalid": "warn", "sandbox.cpus": 2}).config
    nested = load_config(DEMO, {"model": {"max_iterations": 3}, "datasets": {"0": {"on_invalid": "warn"}},
                                "sandbox": {"cpus": 2}}).config
    assert nested == dotted
    assert (nested.model.max_iterations, nested.datasets[0].on_invalid, nested.sandbox.cpus) == (3, "warn", 2)
    # A merge, not a replacement: the rest of the file's `model` and `datasets[0]` stay.
    file = load_config(DEMO).config
    assert nested.model.name == file.model.name and nested.datasets[0].path == file.datasets[0].path


def test_both_forms_mix_and_nest_dotted_keys() -> None:
    config = load_config(DEMO, {"model": {"max_iterations": 2}, "sandbox.timeout": 30,
                                "concurrency": {"runs": 2, "when_busy": "cancel"}}).config
    assert (config.model.max_iterations, config.sandbox.timeout) == (2, 30)
    assert (config.concurrency.runs, config.concurrency.when_busy) == (2, "cancel")
    assert load_config(DEMO, {"schedule": {"interval": "1h"}, "schedule.cron": None}).config.schedule.interval == "1h"


def test_a_non_mapping_value_replaces() -> None:
    config = load_config(DEMO, {"tags": ["only"], "datasets": {"0": {"read_options": {"separator": ","}}}}).config
    assert config.tags == ["only"] and config.datasets[0].read_options == {"separator": ","}


@pytest.mark.parametrize("overrides", [{"model.max_iteratons": 3}, {"model": {"max_iteratons": 3}}])
def test_an_unknown_key_is_named_with_a_suggestion_and_its_origin(overrides) -> None:
    [line] = problems(overrides)
    assert line.startswith(f"{DEMO}: model.max_iteratons: unknown key; did you mean 'max_iterations'?")
    assert line.endswith("(set by an override, not the file: fix or remove the override)")


@pytest.mark.parametrize("overrides", [{"model.max_iterations": "many"}, {"model": {"max_iterations": "many"}},
                                       parse_overrides(["model.max_iterations=many"])])
def test_a_bad_value_is_the_same_error_in_every_form(overrides) -> None:
    [line] = problems(overrides)
    assert line == (f"{DEMO}: model.max_iterations: Input should be a valid integer, unable to parse string as an "
                    "integer (got 'many') (set by an override, not the file: fix or remove the override)")


def test_paths_that_lead_nowhere_say_why_and_how_to_fix() -> None:
    lines = problems({"datasets.3.on_invalid": "warn", "prompt.text": "x", "model..name": "x"})
    assert lines == [
        f"{DEMO}: datasets.3: 'datasets' is a list of 1 item(s): expected an item number from 0 to 0 after it, "
        "e.g. datasets.0; got '3'; fix or remove that override (--set, or the flow's overrides parameter)",
        f"{DEMO}: prompt.text: 'prompt' is a str, not a mapping or a list, so it has no 'text'; override 'prompt' "
        "itself, or fix or remove that override (--set, or the flow's overrides parameter)",
        f"{DEMO}: model..name: empty key in an override: expected dotted keys such as model.max_iterations; "
        "fix or remove that override (--set, or the flow's overrides parameter)",
    ]
    assert problems({"datasets": {"first": {"on_invalid": "warn"}}})[0].startswith(
        f"{DEMO}: datasets.first: 'datasets' is a list of 1 item(s)")


def test_overrides_must_be_a_mapping() -> None:
    [line] = problems(["model.max_iterations=3"])
    assert line.startswith(f"{DEMO}: overrides: expected a mapping of keys to values, got list")


def test_an_override_does_not_touch_the_file() -> None:
    before = DEMO.read_text()
    load_config(DEMO, {"model": {"max_iterations": 3}})
    assert DEMO.read_text() == before


def test_on_and_off_are_words_as_yaml_1_2_reads_them_not_booleans() -> None:
    """`on:` is notify's key; YAML 1.1 (PyYAML's default) would read it as True."""
    from tasks.config import parse_overrides

    assert parse_overrides(["notify=[{block: custom-webhook/x, on: [alert]}]", "a=off", "b=false"]) == {
        "notify": [{"block": "custom-webhook/x", "on": ["alert"]}], "a": "off", "b": False}
