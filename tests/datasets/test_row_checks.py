"""The per-row checks computed by the streaming query (tasks/datasets/row_checks.py) find what
pandera finds, as pandera tabulates it, for every kind of built-in check and value, nulls and NaN
included."""

from __future__ import annotations

from datetime import date, datetime

import pandera.polars as pap
import polars as pl
from pandera.api.checks import Check

from tasks.datasets.row_checks import output_names, stream_row_checks, tabulate
from tasks.datasets.runnable import per_batch
from tasks.datasets.validation import _run_pandera

ROWS = 300
SCHEMA = pap.DataFrameSchema({
    "n": pap.Column(pl.Int64, [Check.ge(0), Check.in_range(0, 200), Check.ne(13)]),
    "x": pap.Column(pl.Float64, [Check.lt(1.5), Check.isin([0.5, 1.0, 2.0]), Check.notin([1.0])], nullable=True),
    "s": pap.Column(pl.String, [Check.str_matches(r"^[a-c]+$"), Check.str_length(2, 3), Check.str_startswith("a"),
                                Check.str_contains("b"), Check.str_endswith("c"), Check.isin(["abc", "ac"])]),
    "d": pap.Column(pl.Date, [Check.le(date(2024, 6, 1)), Check.gt(date(2024, 1, 1), ignore_na=False)], nullable=True),
    "t": pap.Column(pl.Datetime("us"), [Check.lt(datetime(2025, 1, 1)), Check.eq(datetime(2024, 5, 5))]),
    "b": pap.Column(pl.Boolean, [Check.eq(True)]),
})


def frame() -> pl.DataFrame:
    strings = ["abc", "ac", "b", "abcc", None, "zz", "a"]
    return pl.DataFrame({
        "n": [i * 7 % 230 - 3 for i in range(ROWS)],
        "x": [None if i % 11 == 0 else float("nan") if i % 13 == 0 else (i % 5) / 2 for i in range(ROWS)],
        "s": [strings[i % len(strings)] for i in range(ROWS)],
        "d": [None if i % 17 == 0 else date(2024 - i % 2, 1 + i % 12, 1) for i in range(ROWS)],
        "t": [datetime(2024, 5, 5) if i % 3 else datetime(2025, 2, 1, 12, 30) for i in range(ROWS)],
        "b": [i % 4 != 0 for i in range(ROWS)],
    }, schema={"n": pl.Int64, "x": pl.Float64, "s": pl.String, "d": pl.Date, "t": pl.Datetime("us"), "b": pl.Boolean})


def streamed_checks(batch: pl.DataFrame, schema: pap.DataFrameSchema, limit: int,
                    shown: set[tuple[str | None, str]] | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(cases, counts) of the checks computed by a streaming query over ``batch``, read in three."""
    streamed = stream_row_checks(batch.lazy(), schema)
    assert streamed is not None
    query, checked = streamed
    read = pl.concat(query.collect_batches(chunk_size=ROWS // 3, engine="streaming"))
    outputs = read.select(output_names(checked))
    assert read.drop(outputs.columns).equals(batch)  # the data as it was, its rows in order
    return tabulate(batch, outputs, checked, limit, shown or set())


def test_every_failing_check_and_case_as_pandera_finds_them() -> None:
    batch, limit = frame(), 5
    schema = per_batch(SCHEMA, lambda name: None, limit, first=False)  # as every batch after the first runs
    pandera_cases, pandera_counts, notes = _run_pandera(batch, schema, limit, "t", "t.csv")
    cases, counts = streamed_checks(batch, schema, limit)
    assert notes == []
    assert counts.height > 15 and counts.sort(counts.columns).equals(pandera_counts.sort(pandera_counts.columns))
    assert cases.height > 60 and cases.sort(cases.columns).equals(pandera_cases.sort(pandera_cases.columns))


def test_a_check_polars_cannot_run_on_the_column_is_left_to_pandera() -> None:
    # pandera reports it as the check's failure; in the streaming query it would end the read
    runs = pap.DataFrameSchema({"s": pap.Column(pl.String, Check.str_length(1, 3))})
    cannot = pap.DataFrameSchema({"s": pap.Column(pl.String, [Check.str_length(1, 3), Check.ge(0)])})
    assert stream_row_checks(frame().lazy(), per_batch(runs, lambda name: None, 5, first=False)) is not None
    assert stream_row_checks(frame().lazy(), per_batch(cannot, lambda name: None, 5, first=False)) is None


def test_a_check_that_is_more_than_one_selected_expression_is_left_to_pandera() -> None:
    def negated(data):  # selects an expression, then changes what it selected
        return data.lazyframe.select(pl.col(data.key) > 0).select(pl.col(data.key).not_())

    assert stream_row_checks(frame().lazy(), pap.DataFrameSchema({"n": pap.Column(pl.Int64, Check(negated))})) is None
    assert stream_row_checks(frame().lazy(), pap.DataFrameSchema({"n": pap.Column(pl.Int64, Check.gt(0))})) is not None


def test_checks_already_shown_are_counted_without_their_cases() -> None:
    schema = per_batch(SCHEMA, lambda name: None, 5, first=False)
    cases, counts = streamed_checks(frame(), schema, 5, {("n", "greater_than_or_equal_to(0)")})
    assert counts.filter(pl.col("column") == "n", pl.col("check") == "greater_than_or_equal_to(0)")["count"].item() > 0
    assert cases.filter(pl.col("column") == "n", pl.col("check") == "greater_than_or_equal_to(0)").height == 0


def test_schemas_it_does_not_cover_go_to_pandera() -> None:
    warns = pap.DataFrameSchema({"n": pap.Column(pl.Int64, Check.ge(0, raise_warning=True))})
    regex = pap.DataFrameSchema({"^n.*$": pap.Column(pl.Int64, Check.ge(0), regex=True)})
    table = pap.DataFrameSchema({"n": pap.Column(pl.Int64)}, checks=[Check.ge(0)])
    for schema in (warns, regex, table):
        assert stream_row_checks(frame().lazy(), schema) is None
