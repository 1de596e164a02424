"""The clock tool: the date, the weekday spelled out (small models misread a bare timestamp) and
the time, in a named zone."""

from __future__ import annotations

from datetime import datetime

from tools.builtin.clock import current_time


def test_the_clock_gives_the_timestamp_and_the_weekday_in_the_zone_asked_for() -> None:
    text = current_time("Asia/Tokyo")
    stamp, _, spelled = text.partition(" (")
    moment = datetime.fromisoformat(stamp)
    assert moment.utcoffset() is not None and moment.utcoffset().total_seconds() == 9 * 3600  # type: ignore[union-attr]
    assert spelled == moment.strftime("%A, %d %B %Y") + ")"


def test_an_unknown_zone_is_a_clear_error() -> None:
    assert current_time("Mars/Olympus") == "Error: unknown time zone 'Mars/Olympus'."
