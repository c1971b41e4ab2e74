"""A config's schedule in words, for what ``analyst serve`` and ``analyst deploy`` print."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tasks.config import ScheduleConfig

_UNITS = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))


def describe_schedule(schedule: ScheduleConfig | None, now: datetime | None = None) -> str:
    """``At 07:00 on Monday (Europe/Paris); next 2026-11-30 07:00 CET``, ``every 1 hour``, ...

    ``now`` (default: the current time) dates the next run of a cron schedule.
    """
    if schedule is None:
        return "no schedule (runs only when triggered)"
    zone = ZoneInfo(schedule.timezone)
    if schedule.interval is not None:
        return f"every {_duration(schedule.interval_timedelta)}"
    if schedule.rrule is not None:
        return f"RRULE {schedule.rrule} ({schedule.timezone})"
    assert schedule.cron is not None  # the schema requires one of interval, rrule, cron
    return _describe_cron(schedule.cron, zone, now or datetime.now(zone))


def _describe_cron(cron: str, zone: ZoneInfo, now: datetime) -> str:
    try:
        # cronsim is installed with Prefect (through pydocket); its English is a courtesy, so
        # fall back to the bare expression if it is missing or reads a field differently.
        from cronsim import CronSim, CronSimError  # noqa: PLC0415 - may be missing: caught below

        sim = CronSim(cron, now.astimezone(zone))
        words, upcoming = sim.explain(), next(sim)
    except (ImportError, CronSimError, StopIteration, ValueError):
        return f"cron {cron!r} ({zone.key})"
    return f"{words} ({zone.key}); cron {cron!r}; next {upcoming:%Y-%m-%d %H:%M %Z}"


def _duration(delta: timedelta | None) -> str:
    seconds = round(delta.total_seconds()) if delta else 0
    parts = []
    for unit, size in _UNITS:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {unit}{'' if count == 1 else 's'}")
    return " ".join(parts) or "0 seconds"
