"""A run's window, the {{ }} templates of a config, and the schedule's occurrences for a backfill."""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tasks.transcript import Transcript
from tasks.config import load_config
from tasks.config.schema import ScheduleConfig, WindowConfig
from tasks.config.templating import render
from tasks.config.window import RunTime, Window, parse_window_length
from tasks.errors import ConfigError
from tasks.prefect.schedules import schedule_occurrences
from tasks.reports.markdown import run_time_line

UTC = timezone.utc
PARIS = ZoneInfo("Europe/Paris")


def window(spec, as_of: datetime, tz: str = "UTC") -> Window:
    found = RunTime.for_config(as_of, WindowConfig.model_validate(spec), tz).window
    assert found is not None
    return found


def test_without_align_the_window_ends_at_the_run_time() -> None:
    found = window("7d", datetime(2026, 11, 30, 7, 30, tzinfo=UTC))
    assert (found.start, found.end) == (datetime(2026, 11, 23, 7, 30, tzinfo=UTC),
                                        datetime(2026, 11, 30, 7, 30, tzinfo=UTC))
    assert found.last_day == date(2026, 11, 30)  # the end is exclusive, but 07:30 on the 30th is in it


def test_a_weekly_window_is_the_last_full_week_before_the_run() -> None:
    monday = window({"length": "7d", "align": "week"}, datetime(2026, 11, 30, 7, tzinfo=UTC))
    assert (monday.start, monday.end) == (datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC))
    assert (monday.first_day, monday.last_day, monday.label()) == (
        date(2026, 11, 23), date(2026, 11, 29), "2026-11-23..2026-11-29")
    # A run exactly on the boundary covers the week that just ended; one mid-week, the one before.
    assert window({"length": "1 week", "align": "week"}, datetime(2026, 11, 30, tzinfo=UTC)).end == monday.end
    assert window({"length": "7d", "align": "week"}, datetime(2026, 12, 3, 12, tzinfo=UTC)).end == monday.end


def test_day_and_month_boundaries_are_counted_in_the_schedules_time_zone() -> None:
    # 23:30 UTC on 29 Nov is 00:30 on the 30th in Paris: the day that ended is the 29th there.
    day = window({"length": "1d", "align": "day"}, datetime(2026, 11, 29, 23, 30, tzinfo=UTC), "Europe/Paris")
    assert (day.start, day.end) == (datetime(2026, 11, 29, tzinfo=PARIS), datetime(2026, 11, 30, tzinfo=PARIS))
    # March (daylight saving starts on the 29th) is a calendar month, not 30 or 31 days of 24 hours.
    month = window({"length": "1 month", "align": "month"}, datetime(2026, 4, 2, 7, tzinfo=PARIS), "Europe/Paris")
    assert (month.start, month.end) == (datetime(2026, 3, 1, tzinfo=PARIS), datetime(2026, 4, 1, tzinfo=PARIS))
    assert month.start.utcoffset() != month.end.utcoffset()
    assert month.last_day == date(2026, 3, 31)


@pytest.mark.parametrize("text, expected", [("7d", "7 days"), ("24h", "24 hours"), ("2 weeks", "2 weeks"),
                                            ("1 month", "1 month"), ("3 months", "3 months"), (5, "5 days")])
def test_window_lengths(text, expected) -> None:
    assert str(parse_window_length(text)) == expected


@pytest.mark.parametrize("bad", ["0d", "7", "1 fortnight", "-3d", "d"])
def test_a_bad_window_length_says_what_is_expected(bad) -> None:
    with pytest.raises(ValueError, match="expected a window length such as '7d'"):
        parse_window_length(bad)


def context(as_of: datetime = datetime(2026, 11, 30, 7, tzinfo=UTC)) -> dict:
    return RunTime.for_config(as_of, WindowConfig.model_validate({"length": "7d", "align": "week"})).template_context()


def test_templates_format_dates_for_paths_queries_and_prose() -> None:
    where = ("c.yaml", "prompt")
    assert render("data/sales-{{ window.start | date('%Y-%m-%d') }}.csv", context(), where=where) \
        == "data/sales-2026-11-23.csv"
    assert render("the week of {{ window.start | date('%d') }}–{{ window.last_day | date('%d %B') }}", context(),
                  where=where) == "the week of 23–29 November"
    assert render("ts >= '{{ window.start | iso }}' AND ts < '{{ window.end | iso }}'", context(), where=where) \
        == "ts >= '2026-11-23T00:00:00+00:00' AND ts < '2026-11-30T00:00:00+00:00'"
    assert render("{{ as_of.strftime('%A') }} ${KEEP} {% raw %}{{ literal }}{% endraw %}", context(), where=where) \
        == "Monday ${KEEP} {{ literal }}"


def test_an_unknown_variable_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError) as caught:
        render("{{ window.begin }}", context(), where=("c.yaml", "datasets[0].path"))
    assert str(caught.value).startswith("c.yaml: datasets[0].path: unknown template variable")
    assert "begin" in str(caught.value)
    with pytest.raises(ConfigError, match=r"'window' is undefined .*add `window:` to the config"):
        render("{{ window.start }}", {"as_of": datetime(2026, 1, 1, tzinfo=UTC)}, where=("c.yaml", "prompt"))


@pytest.mark.parametrize("text, message", [
    ("{{ as_of.__class__.__mro__ }}", "unsafe"),  # the sandboxed environment: no way out to Python objects
    ("{{ window.start ", "template syntax error"),
    ("{{ as_of | date(3) }}", "template error"),
])
def test_template_mistakes_are_one_line_config_errors(text, message) -> None:
    with pytest.raises(ConfigError, match=message):
        render(text, context(), where=("c.yaml", "prompt"))


def write_config(folder: Path, extra: str = "", path: str = "data/sales-{{ window.start | date('%Y%m%d') }}.csv",
                 prompt: str = "Sales of {{ window.first_day }} to {{ window.last_day }}, as of {{ as_of }}") -> Path:
    (folder / "data").mkdir(exist_ok=True)
    (folder / "data" / "sales-20261123.csv").write_text("region,revenue\nnorth,1\n")
    config = folder / "weekly.yaml"
    config.write_text(f'name: weekly\ndatasets:\n  - name: sales\n    path: "{path}"\n'
                      "    schema: {schema_type: dataframe, columns: {region: {dtype: str}}}\n"
                      f'prompt: "{prompt}"\n'
                      f"window: {{length: 7d, align: week}}\nschedule: {{cron: '0 7 * * 1', timezone: Europe/Paris}}\n"
                      + extra)
    return config


def test_load_config_renders_paths_and_prompt_for_the_run_time(tmp_path) -> None:
    # No offset: read in the schedule's zone, Monday 07:00 in Paris.
    loaded = load_config(write_config(tmp_path), as_of="2026-11-30T07:00")
    assert loaded.run_time.as_of == datetime(2026, 11, 30, 7, tzinfo=PARIS)
    assert loaded.config.datasets[0].path == "data/sales-20261123.csv"
    assert loaded.config.prompt == "Sales of 2026-11-23 to 2026-11-29, as of 2026-11-30 07:00:00+01:00"
    # Another week's file does not exist: the error names the rendered path.
    with pytest.raises(ConfigError, match=r"datasets\[0\]\.path: file not found: .*sales-20261116\.csv"):
        load_config(write_config(tmp_path), as_of="2026-11-23T07:00")


def test_environment_values_are_never_read_as_templates(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SALES_NOTE", "{{ window.start }}")
    loaded = load_config(write_config(tmp_path, prompt="Note: ${SALES_NOTE}"), as_of="2026-11-30T07:00")
    assert loaded.config.prompt == "Note: {{ window.start }}"


def test_a_config_without_window_still_gets_as_of(tmp_path) -> None:
    (tmp_path / "d.csv").write_text("a\n1\n")
    config = tmp_path / "c.yaml"
    dataset = "datasets: [{name: d, path: d.csv, schema: {schema_type: dataframe, columns: {a: {dtype: int64}}}}]\n"
    config.write_text(f"name: plain\n{dataset}prompt: \"As of {{{{ as_of | date('%d %B') }}}}\"\n")
    assert load_config(config, as_of=datetime(2026, 11, 2, 7, tzinfo=UTC)).config.prompt == "As of 02 November"
    config.write_text(f"name: plain\n{dataset}prompt: '{{{{ window.end }}}}'\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: prompt: unknown template variable: 'window' is undefined"):
        load_config(config)


def test_a_bad_window_or_as_of_names_its_key(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"window\.length: .*expected a window length"):
        load_config(write_config(tmp_path, path="data/sales-20261123.csv").parent / "weekly.yaml",
                    overrides={"window.length": "1 fortnight"})
    with pytest.raises(ConfigError, match=r"as_of: expected an ISO date or date-time"):
        load_config(write_config(tmp_path), as_of="last monday")


def test_backfill_occurrences_are_the_schedules_own_times_in_the_range() -> None:
    schedule = ScheduleConfig(cron="0 7 * * 1", timezone="Europe/Paris")
    found = schedule_occurrences(schedule, datetime(2026, 11, 1, tzinfo=PARIS), datetime(2026, 11, 16, 7, tzinfo=PARIS))
    assert found == [datetime(2026, 11, d, 7, tzinfo=PARIS) for d in (2, 9, 16)]  # both ends included
    daily = schedule_occurrences(ScheduleConfig(interval="1d"), datetime(2026, 11, 1, 6, tzinfo=UTC),
                                                      datetime(2026, 11, 3, 6, tzinfo=UTC))
    assert daily == [datetime(2026, 11, d, 6, tzinfo=UTC) for d in (1, 2, 3)]
    with pytest.raises(ValueError, match="more than 500 runs"):
        schedule_occurrences(ScheduleConfig(interval="1h"), datetime(2026, 1, 1, tzinfo=UTC),
                             datetime(2026, 3, 1, tzinfo=UTC))


def test_the_report_header_names_the_window() -> None:
    transcript = Transcript(analysis="weekly", model="m", provider="p", system="", prompt="q")
    assert run_time_line(transcript) == ""  # a transcript written before runs knew their window
    transcript.run_time = RunTime.for_config(datetime(2026, 11, 30, 7, tzinfo=UTC),
                                             WindowConfig.model_validate({"length": "7d", "align": "week"})).to_dict()
    assert run_time_line(transcript) == "**Window:** 2026-11-23 to 2026-11-29 (as of 2026-11-30T07:00:00+00:00)"
    assert Transcript.from_dict(transcript.to_dict()).run_time == transcript.run_time


def test_an_inline_pandera_check_bounds_a_date_column_to_the_window(tmp_path) -> None:
    from tasks.datasets import validate_dataset

    (tmp_path / "sales.csv").write_text("sold_at,revenue\n2026-11-23T09:00:00Z,1\n2026-11-29T23:59:00Z,2\n"
                                        "2026-11-30T00:00:00Z,3\n")
    config = tmp_path / "c.yaml"
    config.write_text("""name: weekly
window: {length: 7d, align: week}
prompt: q
datasets:
  - name: sales
    path: sales.csv
    schema:
      schema_type: dataframe
      columns:
        sold_at:
          dtype: "datetime64[ns, UTC]"
          checks: {in_range: {min_value: "{{ window.start | iso }}", max_value: "{{ window.end | iso }}",
                              include_min: true, include_max: false}}
        revenue: {dtype: int64}
""")
    loaded = load_config(config, as_of="2026-11-30T07:00")
    report = validate_dataset(loaded.config.datasets[0], loaded.base_dir)
    assert not report.valid
    assert [(f.column, f.row) for f in report.failures] == [("sold_at", 2)]  # the end is exclusive
    next_week = validate_dataset(load_config(config, as_of="2026-12-07T07:00").config.datasets[0], tmp_path)
    assert [f.row for f in next_week.failures] == [0, 1]
