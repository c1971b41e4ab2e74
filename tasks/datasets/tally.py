"""What one pass over a dataset found, merged batch by batch: the summary (rows, types, nulls, first
rows), the failing checks with their true counts, and each check's first failure cases, numbered
by their row in the file. Its size depends on the number of checks, not of rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl

CASES = {"column": pl.String, "check": pl.String, "failure_case": pl.String, "index": pl.Int64}
COUNTS = {"column": pl.String, "check": pl.String, "count": pl.Int64}
KEYS = ["column", "check"]
KEY_TYPES = {"column": pl.String, "check": pl.String}
_EXAMPLES = " failure case examples:"  # where pandera's warning text turns from the check to its cases


class Tally:
    def __init__(self, limit: int, head_rows: int):
        self.limit, self.head_rows = limit, head_rows
        self.rows = 0
        self.schema: pl.Schema | None = None
        self.null_counts: dict[str, int] = {}
        self.head: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self._cases = pl.DataFrame(schema=CASES)
        self._counts: dict[tuple[str | None, str], int] = {}
        self._shown: dict[tuple[str | None, str], int] = {}  # cases kept per check

    def add_rows(self, batch: pl.DataFrame) -> None:
        """Count a batch's rows and nulls (call after its failures: they are numbered from ``rows``)."""
        if self.schema is None:
            self.schema = batch.schema
            self.null_counts = dict.fromkeys(batch.columns, 0)
        if batch.width:
            for name, nulls in zip(batch.columns, batch.null_count().row(0)):
                self.null_counts[name] += int(nulls)
        if len(self.head) < self.head_rows:
            self.head += batch.head(self.head_rows - len(self.head)).rows(named=True)
        self.rows += batch.height

    def add_failures(self, cases: pl.DataFrame, counts: pl.DataFrame, offset: int | None = None) -> None:
        """A batch's failure cases (rows numbered within the batch) and counts; ``offset``: the
        batch's first row in the file (default: the rows counted so far)."""
        for row in counts.iter_rows(named=True):
            key = (row["column"], row["check"])
            self._counts[key] = self._counts.get(key, 0) + row["count"]
        if cases.height and (full := self.full()):  # a check that fails often: its later cases add nothing
            cases = cases.join(pl.DataFrame(list(full), schema=KEY_TYPES, orient="row"), on=KEYS, how="anti",
                               nulls_equal=True)
        if cases.height == 0:
            return
        shift = self.rows if offset is None else offset
        merged = pl.concat([self._cases, cases.with_columns(pl.col("index") + shift)], how="vertical_relaxed")
        self._cases = merged.filter(pl.int_range(pl.len()).over(KEYS) < self.limit)
        self._shown = {(row[0], row[1]): row[2] for row in self._cases.group_by(KEYS).len().iter_rows()}

    def full(self) -> set[tuple[str | None, str]]:
        """The checks that have their ``limit`` of failure cases."""
        return {key for key, shown in self._shown.items() if shown >= self.limit}

    def add_note(self, note: str) -> None:
        """A note, unless one about the same check came first: a warning check warns on every
        batch it fails, with that batch's examples."""
        same = note.partition(_EXAMPLES)[0]
        if not any(n.partition(_EXAMPLES)[0] == same for n in self.notes):
            self.notes.append(note)

    def failures(self, order: Callable[[str | None, str, int], tuple[int, ...]]) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(cases, counts), checks listed in ``order`` (a sort key over column, check and when the
        check first failed), the cases of a check in row order."""
        ranked = sorted(enumerate(self._counts), key=lambda item: order(item[1][0], item[1][1], item[0]))
        place = pl.DataFrame({"column": [k[0] for _, k in ranked], "check": [k[1] for _, k in ranked],
                              "_place": range(len(ranked))}, schema={**KEY_TYPES, "_place": pl.Int64})
        counts = pl.DataFrame({"column": [k[0] for _, k in ranked], "check": [k[1] for _, k in ranked],
                               "count": [self._counts[k] for _, k in ranked]}, schema=COUNTS)
        cases = (self._cases.join(place, on=KEYS, how="left", nulls_equal=True, maintain_order="left")
                 .sort("_place", maintain_order=True, nulls_last=True).drop("_place"))
        return cases, counts
