"""A config's ``schedule`` as the Prefect schedule object a deployment carries, and its run times."""

from __future__ import annotations

import asyncio
from datetime import datetime

from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule, RRuleSchedule
from prefect.server.schemas import schedules as server_schedules

from tasks.config.schema import ScheduleConfig


def prefect_schedule(schedule: ScheduleConfig) -> CronSchedule | IntervalSchedule | RRuleSchedule:
    if schedule.cron is not None:
        return CronSchedule(cron=schedule.cron, timezone=schedule.timezone)
    if schedule.rrule is not None:
        return RRuleSchedule(rrule=schedule.rrule, timezone=schedule.timezone)
    return IntervalSchedule(interval=schedule.interval_timedelta, timezone=schedule.timezone)


MAX_OCCURRENCES = 500  # runs one backfill may create


def schedule_occurrences(schedule: ScheduleConfig, start: datetime, end: datetime,
                         limit: int = MAX_OCCURRENCES) -> list[datetime]:
    """The times ``schedule`` runs in ``[start, end]``, computed by Prefect's own scheduler code (so a
    backfill matches what the server schedules); at most ``limit``."""
    own = prefect_schedule(schedule)
    fields = own.model_dump()
    if schedule.interval is not None:  # counted from the range's start, not from when the object was made
        fields["anchor_date"] = start
    server = getattr(server_schedules, type(own).__name__).model_validate(fields)
    found = asyncio.run(server.get_dates(n=limit + 1, start=start, end=end))
    if len(found) > limit:
        raise ValueError(f"more than {limit} runs between {start.isoformat()} and {end.isoformat()}; "
                         "backfill a shorter range at a time")
    return [datetime.fromisoformat(d.isoformat()) for d in found]
