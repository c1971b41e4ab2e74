"""A run's time and the window of data it covers.

A run's time (``as_of``) is when it was scheduled to start, or now for a manual run. Its window is a
half-open interval ``[start, end)`` of that length:

- without ``align``: it ends at the run's time, ``[as_of - length, as_of)``;
- with ``align`` (day, week or month): it ends at the last boundary at or before the run's time
  (midnight; Monday 00:00; the 1st of the month 00:00), so a run on Monday 07:00 with
  ``length: 7d, align: week`` covers the previous Monday 00:00 to this Monday 00:00.

Boundaries and lengths are counted on the wall clock of the schedule's time zone, so a day is a
calendar day across a daylight-saving change and a month is a calendar month.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Any, Literal
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta

__all__ = ["Alignment", "RunTime", "Window", "WindowLength", "parse_as_of", "parse_window_length"]

Alignment = Literal["day", "week", "month"]

_LENGTH = re.compile(r"^\s*(\d+)\s*([a-z]+)\s*$", re.IGNORECASE)
_UNITS = {
    "h": "hours", "hour": "hours", "hours": "hours",
    "d": "days", "day": "days", "days": "days",
    "w": "weeks", "week": "weeks", "weeks": "weeks",
    "month": "months", "months": "months",
}


@dataclass(frozen=True)
class WindowLength:
    """A length on the wall clock: ``7 days`` or ``1 months`` (a month is a calendar month)."""

    amount: int
    unit: str  # hours, days, weeks or months

    @property
    def delta(self) -> relativedelta:
        return relativedelta(**{self.unit: self.amount})

    def __str__(self) -> str:
        return f"{self.amount} {self.unit.removesuffix('s') if self.amount == 1 else self.unit}"


def parse_window_length(value: str | int) -> WindowLength:
    """'7d', '1 month', '2 weeks', '24h' -> a WindowLength; a bare number is days."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = f"{value}d"
    match = _LENGTH.match(str(value))
    unit = _UNITS.get(match.group(2).lower()) if match else None
    if match is None or unit is None or int(match.group(1)) <= 0:
        raise ValueError(f"expected a window length such as '7d', '24h', '2 weeks' or '1 month', got {value!r}")
    return WindowLength(int(match.group(1)), unit)


@dataclass(frozen=True)
class Window:
    """The data a run covers: ``start`` inclusive, ``end`` exclusive; ``last_day`` is the last day in it."""

    start: datetime
    end: datetime

    @property
    def last_day(self) -> date:
        return (self.end - timedelta(microseconds=1)).date()

    @property
    def first_day(self) -> date:
        return self.start.date()

    @classmethod
    def ending_at(cls, as_of: datetime, length: WindowLength, align: Alignment | None = None) -> Window:
        end = _align(as_of, align) if align else as_of
        # Wall-clock arithmetic, then the zone's offset for that wall time: a day stays a calendar day.
        naive_start = end.replace(tzinfo=None) - length.delta
        return cls(naive_start.replace(tzinfo=end.tzinfo), end)

    def label(self) -> str:
        """``2026-11-23..2026-11-29``: the first and last day, as in a Prefect tag."""
        return f"{self.first_day.isoformat()}..{self.last_day.isoformat()}"

    def to_dict(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "last_day": self.last_day.isoformat()}


@dataclass(frozen=True)
class RunTime:
    """When a run is for (``as_of``, in the schedule's time zone) and, if the config has one, its window."""

    as_of: datetime
    window: Window | None = None

    @classmethod
    def for_config(cls, as_of: datetime, window: Any | None, tz: str = "UTC") -> RunTime:
        """``window`` is the config's ``window`` (anything with ``length`` and ``align``), or None."""
        as_of = as_of.astimezone(ZoneInfo(tz))
        if window is None:
            return cls(as_of)
        return cls(as_of, Window.ending_at(as_of, window.parsed_length, window.align))

    def template_context(self) -> dict[str, Any]:
        """The variables a config's ``{{ }}`` sees: ``as_of`` always, ``window`` when the config has one."""
        return {"as_of": self.as_of} | ({"window": self.window} if self.window else {})

    def to_dict(self) -> dict[str, Any]:
        return {"as_of": self.as_of.isoformat(), "window": self.window.to_dict() if self.window else None}


def parse_as_of(text: str, tz: str | tzinfo = "UTC") -> datetime:
    """An ISO date or date-time (``2026-11-02T07:00``); without an offset it is read in ``tz``."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"expected an ISO date or date-time such as 2026-11-02T07:00, got {text!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(tz) if isinstance(tz, str) else tz)
    return parsed


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _align(moment: datetime, align: Alignment) -> datetime:
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0, fold=0)
    if align == "week":
        midnight -= timedelta(days=midnight.weekday())  # Monday, as ISO 8601 counts weeks
    elif align == "month":
        midnight = midnight.replace(day=1)
    # Rebuild from wall time so the offset is the boundary's own (not the run's, across a DST change).
    return midnight.replace(tzinfo=None).replace(tzinfo=moment.tzinfo)
