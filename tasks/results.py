"""Structured results: the named values an analysis declares (``results:`` in its config) and Claude
returns through the ``submit_results`` tool, beside its written report.

``results_model(config)`` is the pydantic model built from the declared fields; its JSON schema is
the tool's input schema, so what Claude is told and what is checked cannot drift apart.
``check_submission`` validates one tool call's input into ``Submission``: the values as a plain
JSON-ready dict (what ``Transcript.results`` and results.json hold), or the problems, by field.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from tasks.config import AnalysisConfig
from tasks.config.schema import ResultField

SUBMIT_RESULTS_TOOL = "submit_results"
RESULTS_FILE = "results.json"
_UNIT = " (unit: "  # how a field's unit is appended to its description in the tool's schema
MAX_SUBMISSIONS = 2  # an invalid submission goes back to Claude once with its errors

SUBMIT_RESULTS_DESCRIPTION = """\
Submit the results of this analysis: the values declared for it, each checked against its type \
and bounds. Call it once your analysis is done, with every field, next to your written report; \
the values must be the ones your analysis found and your report states. An invalid submission \
comes back with the problems, by field: fix them and call it again.\
"""

_TYPES: dict[str, Any] = {"number": float, "integer": int, "string": str, "boolean": bool, "date": dt.date,
                          "list": list[str]}


class _Results(BaseModel):
    # Values come from the model: no extra keys, no NaN or infinity (they are not JSON).
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, populate_by_name=False)


def results_model(config: AnalysisConfig) -> type[BaseModel] | None:
    """The pydantic model of the config's ``results``, or None when it declares none. Fields are
    named by alias, so a result may be called ``schema`` or ``copy`` without shadowing BaseModel's own."""
    if not config.results:
        return None
    fields: dict[str, Any] = {f"field_{i}": (_annotation(spec), Field(alias=name, description=_describe(spec),
                                                                       ge=spec.minimum, le=spec.maximum))
                              for i, (name, spec) in enumerate(config.results.items())}
    return create_model(f"{_title(config.name)}Results", __base__=_Results, **fields)


def submit_results_tool(model: type[BaseModel]) -> dict[str, Any]:
    """The ``submit_results`` tool definition, in the Anthropic Messages format."""
    schema = model.model_json_schema(by_alias=True)
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
    return {"name": SUBMIT_RESULTS_TOOL, "description": SUBMIT_RESULTS_DESCRIPTION, "input_schema": schema}


@dataclass
class Submission:
    values: dict[str, Any] | None  # JSON-ready (dates as YYYY-MM-DD); None when invalid
    problems: dict[str, str] = field(default_factory=dict)  # field name -> what is wrong

    @property
    def message(self) -> str:
        """What goes back to Claude in the tool result."""
        if self.values is not None:
            return "Results recorded."
        lines = [f"- {name}: {problem}" for name, problem in self.problems.items()]
        return "error: the results were not recorded; fix these fields and call submit_results again:\n" + \
            "\n".join(lines)


    def summary(self, model: type[BaseModel]) -> str:
        """The problems of the declared fields, for the run's status: a key the model made up is
        counted, not quoted, since the status reaches logs and terminals."""
        declared = {f.alias or n for n, f in model.model_fields.items()}
        named = [f"{name}: {problem}" for name, problem in self.problems.items() if name in declared]
        unknown = len([name for name in self.problems if name not in declared])
        return "; ".join(named + ([f"{unknown} unknown field(s)"] if unknown else []))


def check_submission(model: type[BaseModel], given: Any) -> Submission:
    if not isinstance(given, dict):
        return Submission(None, {"(input)": f"expected a JSON object of the results, not {type(given).__name__}"})
    try:
        validated = model.model_validate(given)
    except ValidationError as exc:
        problems: dict[str, str] = {}
        for error in exc.errors(include_url=False, include_input=False):
            name = str(error["loc"][0]) if error["loc"] else "(input)"
            problems.setdefault(name, error["msg"])
        return Submission(None, problems)
    return Submission(validated.model_dump(mode="json", by_alias=True))


def not_submitted(model: type[BaseModel]) -> Submission:
    """A turn that did not call submit_results: every field is missing."""
    names = [f.alias or n for n, f in model.model_fields.items()]
    return Submission(None, {name: "not submitted (submit_results was not called)" for name in names})


def results_rows(tools: list[dict[str, Any]], values: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per value (name, value, unit, description), for tables. Read from the run's own
    submit_results tool, so a transcript renders the same whatever its config has become since."""
    tool = next((t for t in tools if t.get("name") == SUBMIT_RESULTS_TOOL), {})
    properties = tool.get("input_schema", {}).get("properties", {})
    rows = []
    for name, value in values.items():
        description, _, unit = str(properties.get(name, {}).get("description", "")).partition(_UNIT)
        rows.append({"name": name, "value": value, "unit": unit[:-1] if unit.endswith(")") else None,
                     "description": description})
    return rows


def results_value(value: Any) -> str:
    """A submitted value as text: numbers grouped by thousands, lists joined."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return format(value, ",.0f") if abs(value) >= 1e6 else format(value, ",.6g")
    if isinstance(value, int):
        return format(value, ",")
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _annotation(spec: ResultField) -> Any:
    if spec.type == "enum":
        return Literal[tuple(spec.values or ())]
    return _TYPES[spec.type]


def _describe(spec: ResultField) -> str:
    return f"{spec.description}{_UNIT}{spec.unit})" if spec.unit else spec.description


def _title(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("_", "-").split("-")) or "Analysis"
