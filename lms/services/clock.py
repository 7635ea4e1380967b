"""Department time: the local date decides due dates and lateness, and every date a person reads
is written one way, in words ("December 1, 2026"; "December 1, 2026, 7:12 a.m. CST")."""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo


def local_date(moment: datetime, tz_name: str) -> date:
    """The calendar date of ``moment`` in the department's time zone."""
    return moment.astimezone(ZoneInfo(tz_name)).date()


def local_iso(moment: datetime, tz_name: str) -> str:
    """``moment`` in the department's time zone, ISO 8601 with offset, to the second."""
    return moment.astimezone(ZoneInfo(tz_name)).isoformat(timespec="seconds")


def as_moment(value: datetime | str) -> datetime:
    """An aware instant from a datetime or from the ISO 8601 text records keep ("…-06:00");
    a naive datetime is UTC, as the database stores them."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo("UTC"))
    return moment


def date_words(day: date) -> str:
    """A calendar date as people write it: "December 1, 2026" (strftime's %-d is not portable)."""
    return f"{day:%B} {day.day}, {day.year}"


def datetime_words(moment: datetime | str, tz_name: str) -> str:
    """An instant in the department's time zone, in words: "December 1, 2026, 7:12 a.m. CST"."""
    local = as_moment(moment).astimezone(ZoneInfo(tz_name))
    hour = local.hour % 12 or 12
    return f"{date_words(local.date())}, {hour}:{local:%M} {'a.m.' if local.hour < 12 else 'p.m.'} {local.tzname()}"


def days_until(due: date, today: date) -> int:
    """Whole days from the department's ``today`` to ``due``: negative once overdue."""
    return (due - today).days
