"""A column kept, batch by batch, for the checks that need all of its rows (``unique``, ...).

Runs of consecutive integers, the usual id column, are kept as (first value, length): exact, and
nothing in memory however long the file. A column that is one increasing run from batch to batch
has no duplicates, so its ``unique`` check needs no values at all; any other column is kept as its
values.
"""

from __future__ import annotations

import polars as pl


class HeldColumn:
    def __init__(self, name: str, dtype: pl.DataType):
        self.name, self.dtype = name, dtype
        self._pieces: list[pl.Series | tuple[int, int]] = []

    def add(self, values: pl.Series) -> None:
        if values.len() == 0:
            return
        if (run := _run(values)) is None:
            self._pieces.append(values)
            return
        last = self._pieces[-1] if self._pieces else None
        if isinstance(last, tuple) and last[0] + last[1] == run[0]:
            self._pieces[-1] = (last[0], last[1] + run[1])
        else:
            self._pieces.append(run)

    def increasing(self) -> bool:
        """Whether every value so far is greater than the one before it: then none repeats."""
        runs = [piece for piece in self._pieces if isinstance(piece, tuple)]
        return len(runs) == len(self._pieces) and all(later[0] >= earlier[0] + earlier[1]
                                                      for earlier, later in zip(runs, runs[1:]))

    def values(self) -> pl.Series:
        return pl.concat([piece if isinstance(piece, pl.Series)
                          else pl.int_range(piece[0], piece[0] + piece[1], eager=True).cast(self.dtype)
                          for piece in self._pieces] or [pl.Series(dtype=self.dtype)], rechunk=False
                         ).alias(self.name)


def _run(values: pl.Series) -> tuple[int, int] | None:
    """(first, length) when ``values`` are consecutive integers without nulls."""
    if not values.dtype.is_integer() or values.null_count():
        return None
    first, count = int(values[0]), values.len()
    if int(values[-1]) - first != count - 1:
        return None
    return (first, count) if (values.slice(1) - values.slice(0, count - 1) == 1).all() else None
