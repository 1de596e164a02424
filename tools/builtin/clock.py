from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tools.registry import builtin_tool


@builtin_tool("current_time", "The current date, weekday and time, in UTC or a named IANA time zone.")
def current_time(timezone: Annotated[str, "IANA time zone, e.g. 'Europe/Paris'"] = "UTC") -> str:
    try:
        zone = ZoneInfo(timezone) if timezone and timezone != "UTC" else UTC
    except (ZoneInfoNotFoundError, ValueError):
        return f"Error: unknown time zone {timezone!r}."
    now = datetime.now(zone)
    # The weekday spelled out: given only a timestamp, the 1.5B model named the wrong day.
    return f"{now.isoformat(timespec='seconds')} ({now.strftime('%A, %d %B %Y')})"
