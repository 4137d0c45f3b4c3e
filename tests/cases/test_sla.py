"""Working-time arithmetic of the SLA clocks (pure, no wall clock): same day vs three
days, working hours, days off, time zones, escalation shares; properties by hypothesis."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.cases import sla

SHANGHAI = ZoneInfo("Asia/Shanghai")
HOURS = sla.WorkingHours(tz=SHANGHAI)  # Mon-Fri 09:00-18:00
POLICY = sla.SlaPolicy(hours=HOURS)


def sh(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)  # type: ignore[arg-type,misc]


def test_ordinary_complaint_is_due_at_the_end_of_the_same_working_day() -> None:
    # Thursday 2026-12-03 10:00 in Shanghai is 02:00 UTC.
    due = sla.due_at(sh(2026, 12, 3, 10), POLICY, kind="complaint", urgent=False, referred=False)
    assert due == sh(2026, 12, 3, 18)
    assert due.astimezone(UTC) == datetime(2026, 12, 3, 10, tzinfo=UTC)
    # After hours on Friday: due at the end of Monday.
    late = sla.due_at(sh(2026, 12, 4, 20), POLICY, kind="complaint", urgent=False, referred=False)
    assert late == sh(2026, 12, 7, 18)


def test_referred_or_urgent_is_due_after_three_working_days() -> None:
    opened = sh(2026, 12, 3, 10)  # Thursday
    for urgent, referred in ((True, False), (False, True)):
        due = sla.due_at(opened, POLICY, kind="complaint", urgent=urgent, referred=referred)
        assert due == sh(2026, 12, 8, 10)  # Thu, Fri, Mon full days -> Tuesday 10:00
    repair = sla.due_at(opened, POLICY, kind="repair", urgent=False, referred=False)
    assert repair == sh(2026, 12, 8, 10)


def test_configurable_per_kind_and_category() -> None:
    policy = sla.SlaPolicy(
        hours=HOURS, long_days_by_kind={"repair": 5}, long_days_by_category={"billing": 1}
    )
    opened = sh(2026, 12, 3, 10)
    assert sla.due_at(opened, policy, kind="repair", urgent=False, referred=False) == sh(
        2026, 12, 10, 10
    )
    assert sla.due_at(
        opened, policy, kind="complaint", urgent=True, referred=False, category="billing"
    ) == sh(2026, 12, 4, 10)


def test_time_zone_decides_the_working_day() -> None:
    # 23:00 UTC on Wednesday is 07:00 Thursday in Shanghai: due Thursday 18:00 there.
    opened = datetime(2026, 12, 2, 23, tzinfo=UTC)
    due = sla.due_at(opened, POLICY, kind="complaint", urgent=False, referred=False)
    assert due == sh(2026, 12, 3, 18)
    utc_policy = sla.SlaPolicy(hours=sla.WorkingHours(tz=ZoneInfo("UTC")))
    # In UTC the same instant is after hours on Wednesday: due Thursday 18:00 UTC.
    assert sla.due_at(opened, utc_policy, kind="complaint", urgent=False, referred=False) == (
        datetime(2026, 12, 3, 18, tzinfo=UTC)
    )


def test_escalation_share_and_next_levels() -> None:
    policy = sla.SlaPolicy(hours=HOURS, escalate_share=0.5)
    opened = sh(2026, 12, 3, 10)
    due = sla.due_at(opened, policy, kind="complaint", urgent=False, referred=False)
    first = sla.next_escalation(opened, opened, due, policy, first=True)
    assert first == sh(2026, 12, 3, 14)  # half of 10:00-18:00
    assert sla.next_escalation(first, opened, due, policy, first=False) == sh(2026, 12, 3, 18)


def test_bad_calendars_are_refused() -> None:
    with pytest.raises(ValueError):
        sla.WorkingHours(tz=SHANGHAI, start=time(18), end=time(9))
    with pytest.raises(ValueError):
        sla.WorkingHours(tz=SHANGHAI, weekdays=frozenset())
    with pytest.raises(ValueError):
        sla.end_of_working_day(datetime(2026, 12, 3, 10), HOURS)  # naive
    with pytest.raises(ValueError):
        sla.SlaPolicy(hours=HOURS, escalate_share=0)


instants = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)
)
durations = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=40))
zones = st.sampled_from([SHANGHAI, ZoneInfo("UTC"), ZoneInfo("Europe/Berlin")])
weekdays = st.frozensets(st.integers(0, 6), min_size=1)


@settings(max_examples=300, deadline=None)
@given(instants, durations, zones, weekdays)
def test_add_then_measure_gives_the_duration_back(
    at: datetime, duration: timedelta, tz: ZoneInfo, days: frozenset[int]
) -> None:
    hours = sla.WorkingHours(tz=tz, weekdays=days)
    end = sla.add_working_time(at, duration, hours)
    assert end >= at
    assert sla.working_time_between(at, end, hours) == duration


@settings(max_examples=300, deadline=None)
@given(instants, durations, durations, zones)
def test_adding_is_monotonic_and_composes(
    at: datetime, a: timedelta, b: timedelta, tz: ZoneInfo
) -> None:
    hours = sla.WorkingHours(tz=tz)
    one = sla.add_working_time(at, a, hours)
    both = sla.add_working_time(at, a + b, hours)
    assert one <= both
    if a > timedelta(0):
        assert sla.add_working_time(one, b, hours) == both


@settings(max_examples=300, deadline=None)
@given(instants, zones, weekdays)
def test_same_day_due_is_a_working_day_end_after_opening(
    at: datetime, tz: ZoneInfo, days: frozenset[int]
) -> None:
    hours = sla.WorkingHours(tz=tz, weekdays=days)
    due = sla.end_of_working_day(at, hours)
    local = due.astimezone(tz)
    assert due > at
    assert local.time() == hours.end and local.weekday() in days
    # Never a whole working day skipped: no working time lies between at and the
    # start of due's day unless at is inside that day.
    assert sla.working_time_between(at, due, hours) <= hours.day_length


def test_policy_from_settings_per_kind_and_category() -> None:
    from app.cases.routes import policy_from
    from app.settings import Settings

    settings = Settings.model_validate(
        {
            "cases": {
                "timezone": "Asia/Shanghai",
                "same_day_kinds": ["complaint", "inquiry"],
                "long_days_by_kind": {"repair": 5},
                "long_days_by_category": {"billing": 1},
            }
        }
    ).cases
    policy = policy_from(settings)
    opened = sh(2026, 12, 3, 10)
    assert sla.due_at(opened, policy, kind="inquiry", urgent=False, referred=False) == sh(
        2026, 12, 3, 18
    )
    assert sla.due_at(opened, policy, kind="repair", urgent=False, referred=False) == sh(
        2026, 12, 10, 10
    )
    assert sla.due_at(
        opened, policy, kind="complaint", urgent=True, referred=False, category="billing"
    ) == sh(2026, 12, 4, 10)
