"""A seeded generator of messy CSV files, the kinds real-world exports hold."""

from __future__ import annotations

import random
from collections.abc import Callable

LINE_ENDS = {"lf": "\n", "crlf": "\r\n", "cr": "\r", "mixed": None}
_WORDS = ["north", "south", "café", "a, b", 'say "hi"', "x", ""]


def _quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"' if any(c in value for c in ',"\n\r') else value


COLUMNS: dict[str, Callable[[random.Random, int], str]] = {
    "int": lambda r, i: str(r.randint(-1000, 10**6)),
    "float": lambda r, i: r.choice([f"{r.uniform(-5, 5):.4f}", "nan", "1e300", "-0.0"]),
    "bool": lambda r, i: r.choice(["true", "false"]),
    "text": lambda r, i: r.choice(_WORDS),
    "nulls": lambda r, i: r.choice(["", str(i)]),
    "time_of_day": lambda r, i: f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:00",
    "date_only": lambda r, i: f"20{r.randint(10, 29)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}",
    "datetime": lambda r, i: (f"2024-02-{r.randint(1, 28):02d} {r.randint(0, 23):02d}:00:{r.randint(0, 59):02d}"
                              f".{r.randint(0, 999999):06d}"),
    "tz_aware": lambda r, i: (f"2017-01-0{r.randint(1, 9)}T0{r.randint(0, 9)}:00:00"
                              f"{r.choice(['+0000', '+05:30', 'Z', '-0800'])}"),
    "mixed": lambda r, i: r.choice([str(r.randint(0, 9)), "n/a", "3.5", "seven"]),
    "thousands": lambda r, i: f"{r.randint(1, 999)},{r.randint(0, 999):03d}",
    "currency": lambda r, i: r.choice(["$", "€", "£"]) + f"{r.uniform(0, 900):.2f}",
    "quoted_newline": lambda r, i: r.choice(["line one\nline two", "plain", "a\r\nb"]),
}
HEADERS = ["plain", "empty", "duplicate", "padded"]


def messy_csv(seed: int, *, columns: int | None = None, rows: int | None = None) -> tuple[bytes, set[str]]:
    """(file bytes, the cases it holds): a seeded mix of column kinds, header quirks, line ends and a BOM."""
    r = random.Random(seed)
    kinds = [r.choice(list(COLUMNS)) for _ in range(columns or r.randint(2, 8))]
    rows = rows if rows is not None else r.randint(1, 40)
    names = [f"{kind}_{i}" for i, kind in enumerate(kinds)]
    header_case = r.choice(HEADERS)
    if header_case == "empty":
        names[0] = ""
    elif header_case == "duplicate" and len(names) > 1:
        names[1] = names[0]
    elif header_case == "padded":
        names = [f"  {n} " for n in names]
    ending = r.choice(list(LINE_ENDS))
    lines = [",".join(_quote(n) for n in names)]
    lines += [",".join(_quote(COLUMNS[k](r, i)) for k in kinds) for i in range(rows)]
    if ending == "mixed":
        text = "".join(line + r.choice(["\n", "\r\n", "\r"]) for line in lines)
    else:
        text = LINE_ENDS[ending].join(lines) + LINE_ENDS[ending]
    bom = r.random() < 0.3
    cases = {*kinds, f"header:{header_case}", f"line_ends:{ending}", *(["bom"] if bom else [])}
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"), cases
