"""Cron expressions read as cron and Airflow read them, turned into APScheduler triggers.

APScheduler 3 numbers weekdays from Monday = 0 (its `from_crontab` keeps that), where cron and Airflow
use Sunday = 0: `0 3 * * 1` would train on Tuesdays in the worker and on Mondays in Airflow. The day of
week is therefore translated to day names here, and every schedule is in UTC like Airflow's default.
"""

from __future__ import annotations

import datetime as dt

from apscheduler.triggers.cron import CronTrigger

from salescast.errors import ConfigurationError

_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # cron's numbering; 7 is Sunday again


def cron_trigger(expr: str, setting: str = "cron expression") -> CronTrigger:
    """A UTC trigger for a 5-field cron expression (or @daily, @weekly, ...); ConfigurationError names
    the setting and the expression when it is not one."""
    fields = _ALIASES.get(expr.strip().lower(), expr).split()
    if len(fields) != 5:
        raise ConfigurationError(
            f"{setting} {expr!r} is not a cron expression: it needs 5 fields (minute hour day month weekday)"
        )
    minute, hour, day, month, weekday = fields
    if day != "*" and weekday != "*":
        # cron fires when either field matches, APScheduler only when both do: refuse rather than differ.
        raise ConfigurationError(
            f"{setting} {expr!r} restricts both the day of month and the day of week; restrict only one"
        )
    try:
        return CronTrigger(
            minute=minute, hour=hour, day=day, month=month, day_of_week=_weekdays(weekday), timezone=dt.UTC
        )
    except ValueError as exc:
        raise ConfigurationError(f"{setting} {expr!r} is not a valid cron expression: {exc}") from exc


def _weekdays(field: str) -> str:
    """A cron day-of-week field (numbers, names, ranges, steps) as APScheduler day names."""
    if field == "*":
        return "*"
    days: set[int] = set()
    for item in field.lower().split(","):
        span, has_step, step_text = item.partition("/")
        step = int(step_text) if has_step else 1
        if span == "*":
            first, last = 0, 6
        else:
            start, has_end, end = span.partition("-")
            first = _day_number(start)
            last = _day_number(end) if has_end else (6 if has_step else first)
        if step < 1 or last < first:
            raise ValueError(f"invalid day of week {item!r}")
        days.update(day % 7 for day in range(first, last + 1, step))
    return ",".join(_DAY_NAMES[day] for day in sorted(days))


def _day_number(text: str) -> int:
    if text in _DAY_NAMES:
        return _DAY_NAMES.index(text)
    if not text.isdigit() or int(text) > 7:
        raise ValueError(f"invalid day of week {text!r}: use 0-7 (0 and 7 are Sunday) or sun-sat")
    return int(text)
