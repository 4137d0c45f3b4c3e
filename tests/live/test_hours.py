"""Opening hours -> open/closed (pure)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from app.live.loader import is_open

SHANGHAI = ZoneInfo("Asia/Shanghai")
HOURS = {
    "timezone": "Asia/Shanghai",
    "weekly": {"mon": [["08:00", "12:00"], ["13:00", "20:00"]], "sat": [["10:00", "00:00"]]},
}


def at(y: int, mo: int, d: int, h: int, mi: int = 0) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=SHANGHAI).timestamp()


def test_intervals_in_the_queue_time_zone() -> None:
    # 2026-11-23 is a Monday.
    assert is_open(HOURS, at(2026, 11, 23, 8, 0))
    assert not is_open(HOURS, at(2026, 11, 23, 7, 59))
    assert not is_open(HOURS, at(2026, 11, 23, 12, 30))  # lunch break
    assert is_open(HOURS, at(2026, 11, 23, 19, 59))
    assert not is_open(HOURS, at(2026, 11, 23, 20, 0))  # end is exclusive
    assert not is_open(HOURS, at(2026, 11, 24, 10, 0))  # Tuesday: no intervals
    assert is_open(HOURS, at(2026, 11, 28, 23, 59))  # Saturday until midnight


def test_no_hours_means_always_open_and_garbage_means_open() -> None:
    assert is_open(None, 0.0)
    assert is_open({}, 0.0)
    assert is_open({"timezone": "Nowhere/Land", "weekly": {}}, 0.0)
    assert is_open({"timezone": "UTC", "weekly": {"mon": [["25:00", "x"]]}}, at(2026, 11, 23, 9))
