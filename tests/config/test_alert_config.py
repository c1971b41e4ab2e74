"""The config's ``alerts``: a condition that does not parse, or reads a name the config does not give, is a
config error at load, one line naming the file, ``alerts[i].when``, the name and the names known; so
`analyst validate` and every run refuse it before anything runs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tasks.config import load_config
from tasks.errors import ConfigError

CONFIG = """
name: weekly-sales
datasets:
  - name: sales
    path: data.csv
    schema: {schema_type: dataframe, columns: {a: {dtype: int64}}}
prompt: What happened?
results:
  total_revenue: {type: number, description: Revenue}
alerts:
"""
KNOWN = ("known names: total_revenue, previous.total_revenue, previous.cost_usd, status, cost_usd, data.rows, "
         "data.sales.rows, validation.failed, validation.failures")


@pytest.fixture
def write(tmp_path: Path):
    (tmp_path / "data.csv").write_text("a\n1\n")

    def write(alerts: str) -> Path:
        path = tmp_path / "analysis.yaml"
        path.write_text(textwrap.dedent(CONFIG) + textwrap.indent(textwrap.dedent(alerts), "  "))
        return path

    return write


def problems(path: Path, overrides: dict | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    return [str(p) for p in info.value.problems]


def test_alerts_over_the_vocabulary_load(write) -> None:
    path = write("""
        - {name: revenue_drop, when: "total_revenue < previous.total_revenue * 0.9", message: Revenue fell}
        - {name: no-rows, when: "data.rows == 0 or data.sales.rows == 0"}
        - {name: bad_data, when: "validation.failed or status == 'failed'"}
    """)
    alerts = load_config(path).config.alerts
    assert [(a.name, a.message) for a in alerts] == [("revenue_drop", "Revenue fell"), ("no-rows", None),
                                                     ("bad_data", None)]


def test_an_unknown_name_is_one_line_naming_the_key_the_name_and_the_names_known(write) -> None:
    path = write("""
        - {name: fine, when: "total_revenue > 0"}
        - {name: typo, when: "revenue < 10"}
        - {name: previous_typo, when: "total_revenue < previous.revenue"}
        - {name: no_such_dataset, when: "data.orders.rows == 0"}
    """)
    assert problems(path) == [
        f"{path}: alerts[1].when: unknown name 'revenue'; did you mean 'total_revenue'? {KNOWN}",
        f"{path}: alerts[2].when: unknown name 'previous.revenue'; did you mean 'previous.total_revenue'? {KNOWN}",
        f"{path}: alerts[3].when: unknown name 'data.orders.rows'; did you mean 'data.sales.rows'? {KNOWN}",
    ]


def test_a_syntax_error_and_code_are_refused_at_load(write) -> None:
    path = write("""
        - {name: broken, when: "total_revenue <"}
        - {name: code, when: "__import__('os').system('id') == 0"}
        - {name: broken, when: "total_revenue > 0"}
    """)
    assert problems(path) == [
        f"{path}: alerts: alert names must be unique; repeated: broken",
        f"{path}: alerts[0].when: not an expression: invalid syntax at its end; write e.g. "
        "'total_revenue < previous.total_revenue * 0.9'",
        f"{path}: alerts[1].when: unknown function __import__('os').system(); the functions are abs, min, max, "
        "round, len",
    ]


def test_an_alert_given_by_an_override_is_checked_too(write) -> None:
    path = write("""
        - {name: revenue_drop, when: "total_revenue < 1"}
    """)
    assert load_config(path).config.alerts
    assert problems(path, {"alerts": [{"name": "typo", "when": "revenue < 1"}]}) == [
        f"{path}: alerts[0].when: unknown name 'revenue'; did you mean 'total_revenue'? {KNOWN} (set by an "
        "override, not the file: fix or remove the override)"]



def test_analyst_validate_refuses_an_unknown_name_before_reading_any_data(cli, write) -> None:
    path = write("""
        - {name: typo, when: "revenue < 10"}
    """)
    (path.parent / "data.csv").unlink()  # the config is refused before any dataset is looked for

    result = cli("validate", path)

    assert result.exit_code == 2, result.output
    assert f"{path}: alerts[0].when: unknown name 'revenue'; did you mean 'total_revenue'?" in result.output
    assert "Traceback" not in result.output
