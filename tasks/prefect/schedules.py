"""A config's ``schedule`` as the Prefect schedule object a deployment carries."""

from __future__ import annotations

from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule, RRuleSchedule

from tasks.config.schema import ScheduleConfig


def prefect_schedule(schedule: ScheduleConfig) -> CronSchedule | IntervalSchedule | RRuleSchedule:
    if schedule.cron is not None:
        return CronSchedule(cron=schedule.cron, timezone=schedule.timezone)
    if schedule.rrule is not None:
        return RRuleSchedule(rrule=schedule.rrule, timezone=schedule.timezone)
    return IntervalSchedule(interval=schedule.interval_timedelta, timezone=schedule.timezone)
