"""Department time: the local date decides due dates and lateness."""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo


def local_date(moment: datetime, tz_name: str) -> date:
    """The calendar date of ``moment`` in the department's time zone."""
    return moment.astimezone(ZoneInfo(tz_name)).date()


def local_iso(moment: datetime, tz_name: str) -> str:
    """``moment`` in the department's time zone, ISO 8601 with offset, to the second."""
    return moment.astimezone(ZoneInfo(tz_name)).isoformat(timespec="seconds")


def local_words(moment: datetime, tz_name: str) -> str:
    """``moment`` in the department's time zone, in words: "3:45 PM on Tuesday, December 1, 2026 (CST)"."""
    local = moment.astimezone(ZoneInfo(tz_name))
    hour = local.hour % 12 or 12
    return (f"{hour}:{local:%M} {'AM' if local.hour < 12 else 'PM'} on "
            f"{local:%A}, {local:%B} {local.day}, {local.year} ({local.tzname()})")
