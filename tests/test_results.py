"""Structured results: the pydantic model and tool schema built from a config's ``results``, how a
submission is checked, and how the config's fields are checked when the file loads."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tasks.config import load_config
from tasks.config.schema import AnalysisConfig
from tasks.errors import ConfigError
from tasks.results import (SUBMIT_RESULTS_TOOL, check_submission, not_submitted, results_model, results_rows,
                           results_value, submit_results_tool)

RESULTS = {
    "total_revenue": {"type": "number", "description": "Revenue over the period", "unit": "EUR", "minimum": 0},
    "best_region": {"type": "enum", "description": "The region with the most revenue",
                    "values": ["north", "south", "east", "west"]},
    "anomalies": {"type": "integer", "description": "Sudden changes found", "minimum": 0, "maximum": 100},
    "changed_on": {"type": "date", "description": "When the change began"},
    "drivers": {"type": "list", "description": "Products that drive revenue"},
    "seasonal": {"type": "boolean", "description": "Whether revenue is seasonal"},
    "schema": {"type": "string", "description": "A name BaseModel has an attribute of"},
}


def config(results: dict | None = None) -> AnalysisConfig:
    return AnalysisConfig.model_validate({"name": "sales", "prompt": "What happened?", "results": results or {},
                                          "datasets": [{"name": "s", "path": "s.csv", "schema": "s.yaml"}]})


VALID = {"total_revenue": 3391234.5, "best_region": "east", "anomalies": 1, "changed_on": "2025-04-01",
         "drivers": ["sandwich", "latte"], "seasonal": True, "schema": "v2"}


def test_no_results_declared_no_model() -> None:
    assert results_model(config()) is None


def test_the_tool_schema_follows_the_declared_fields() -> None:
    tool = submit_results_tool(results_model(config(RESULTS)))
    assert tool["name"] == SUBMIT_RESULTS_TOOL
    schema = tool["input_schema"]
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert schema["required"] == list(RESULTS)
    props = schema["properties"]
    assert props["total_revenue"] == {"type": "number", "minimum": 0,
                                      "description": "Revenue over the period (unit: EUR)"}
    assert props["best_region"]["enum"] == ["north", "south", "east", "west"]
    assert props["anomalies"]["type"] == "integer" and props["anomalies"]["maximum"] == 100
    assert props["changed_on"] == {"type": "string", "format": "date", "description": "When the change began"}
    assert props["drivers"]["items"] == {"type": "string"}
    assert props["seasonal"]["type"] == "boolean" and props["schema"]["type"] == "string"


def test_a_valid_submission_becomes_json_ready_values() -> None:
    submission = check_submission(results_model(config(RESULTS)), VALID)
    assert submission.values == VALID and submission.problems == {}
    assert submission.message == "Results recorded."


def test_an_invalid_submission_names_each_field_and_its_problem() -> None:
    given = {**VALID, "total_revenue": -5, "best_region": "middle", "anomalies": 1.5, "changed_on": "April",
             "extra": 1}
    del given["seasonal"]
    submission = check_submission(results_model(config(RESULTS)), given)
    assert submission.values is None
    assert set(submission.problems) == {"total_revenue", "best_region", "anomalies", "changed_on", "seasonal", "extra"}
    assert "greater than or equal to 0" in submission.problems["total_revenue"]
    assert "'north', 'south', 'east' or 'west'" in submission.problems["best_region"]
    assert "- seasonal: Field required" in submission.message


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_nan_and_infinity_are_refused(value: float) -> None:
    assert check_submission(results_model(config(RESULTS)), {**VALID, "total_revenue": value}).values is None


def test_input_that_is_no_object_and_no_call_at_all() -> None:
    model = results_model(config(RESULTS))
    assert check_submission(model, ["east"]).problems == {"(input)": "expected a JSON object of the results, not list"}
    assert set(not_submitted(model).problems) == set(RESULTS)


def test_rows_read_the_unit_and_description_back_from_the_tool() -> None:
    tools = [submit_results_tool(results_model(config(RESULTS)))]
    rows = results_rows(tools, {"total_revenue": 12.0, "best_region": "east"})
    assert rows == [{"name": "total_revenue", "value": 12.0, "unit": "EUR", "description": "Revenue over the period"},
                    {"name": "best_region", "value": "east", "unit": None,
                     "description": "The region with the most revenue"}]


@pytest.mark.parametrize(("field", "expected"), [
    ({"type": "enum"}, "results.r: type enum needs `values`"),
    ({"type": "string", "maximum": 3}, "results.r: maximum: bounds are for number and integer only, not string"),
    ({"type": "number", "minimum": 5, "maximum": 1}, "minimum (5) is larger than maximum (1)"),
    ({"type": "integer", "values": ["a"]}, "`values` is for type enum, not integer"),
    ({"type": "money"},
     "results.r.type: Input should be 'number', 'integer', 'string', 'boolean', 'date', 'list' or 'enum'"),
])
def test_bad_result_fields_are_one_line_naming_the_key(tmp_path: Path, field: dict, expected: str) -> None:
    assert any(expected in line for line in config_problems(tmp_path, {"r": {"description": "d", **field}}))


def test_result_names_must_be_snake_case(tmp_path: Path) -> None:
    [line] = config_problems(tmp_path, {"Total-Revenue": {"type": "number", "description": "d"}})
    assert "results: result names must be snake_case" in line and "'Total-Revenue'" in line


def config_problems(folder: Path, results: dict) -> list[str]:
    (folder / "s.csv").write_text("a\n1\n")
    path = folder / "analysis.yaml"
    path.write_text(yaml.safe_dump({"name": "sales", "prompt": "What happened?", "results": results, "datasets": [
        {"name": "s", "path": "s.csv", "schema": {"schema_type": "dataframe", "columns": {"a": {"dtype": "int64"}}}}]}))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    lines = [str(p) for p in info.value.problems]
    assert all(line.startswith(f"{path}: ") and "\n" not in line for line in lines)
    return lines


def test_the_status_summary_names_declared_fields_and_only_counts_made_up_keys() -> None:
    model = results_model(config(RESULTS))
    submission = check_submission(model, {**VALID, "anomalies": -1, "\x1b[31mevil": 1, "other": 2})
    assert "\x1b[31mevil" in submission.message  # Claude is told which key to drop
    assert submission.summary(model) == "anomalies: Input should be greater than or equal to 0; 2 unknown field(s)"


@pytest.mark.parametrize(("value", "text"), [(3385046.96, "3,385,047"), (19.3, "19.3"), (0.01234, "0.01234"),
                                             (1200, "1,200"), (True, "yes"), (["a", "b"], "a, b"),
                                             ("2025-04-01", "2025-04-01")])
def test_values_as_text(value, text) -> None:
    assert results_value(value) == text
