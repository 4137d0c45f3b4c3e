"""SLA clocks in working time: pure functions of instants (timezone-aware datetimes).

A due time is an instant, never a calendar date: "due today" means the end of today's
working hours in the center's time zone.  Nothing here reads the wall clock; callers
pass ``now``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_MAX_DAYS = 3660  # a walk through working days gives up after ten years


@dataclass(frozen=True, slots=True)
class WorkingHours:
    """The center's working day: ``start``-``end`` local time on ``weekdays`` (0 = Monday)."""

    tz: ZoneInfo
    start: time = time(9, 0)
    end: time = time(18, 0)
    weekdays: frozenset[int] = frozenset(range(5))

    def __post_init__(self) -> None:
        if self.start >= self.end:
            raise ValueError("working hours must start before they end")
        if not self.weekdays or not self.weekdays <= frozenset(range(7)):
            raise ValueError("working weekdays must be a non-empty subset of 0..6")

    def window(self, day: date) -> tuple[datetime, datetime] | None:
        """The working interval of local ``day`` as UTC instants, or ``None`` on a day off.

        UTC, because arithmetic between two datetimes of one ``ZoneInfo`` is wall-clock
        arithmetic and would be an hour off across a daylight-saving change.
        """
        if day.weekday() not in self.weekdays:
            return None
        return (
            datetime.combine(day, self.start, tzinfo=self.tz).astimezone(UTC),
            datetime.combine(day, self.end, tzinfo=self.tz).astimezone(UTC),
        )

    @property
    def day_length(self) -> timedelta:
        d = date(2000, 1, 3)
        return datetime.combine(d, self.end) - datetime.combine(d, self.start)


def _aware(at: datetime) -> None:
    if at.tzinfo is None:
        raise ValueError("an instant needs a time zone")


def _windows_from(at: datetime, hours: WorkingHours) -> Iterator[tuple[datetime, datetime]]:
    """Working intervals that end after ``at``, in order (the first may contain ``at``)."""
    day = at.astimezone(hours.tz).date()
    for _ in range(_MAX_DAYS):
        w = hours.window(day)
        if w is not None and w[1] > at:
            yield w
        day += timedelta(days=1)


def end_of_working_day(at: datetime, hours: WorkingHours) -> datetime:
    """The end of the working day ``at`` falls in, or of the next one when ``at`` is after
    hours or on a day off (a complaint taken at 20:00 is due tomorrow evening)."""
    _aware(at)
    return next(_windows_from(at, hours))[1]


def add_working_time(at: datetime, duration: timedelta, hours: WorkingHours) -> datetime:
    """The instant ``duration`` of working time after ``at`` (time off the clock skipped).

    A zero duration from outside working hours stays at ``at``.
    """
    _aware(at)
    if duration < timedelta(0):
        raise ValueError("duration must not be negative")
    if duration == timedelta(0):
        return at
    left = duration
    for start, end in _windows_from(at, hours):
        begin = max(start, at)
        span = end - begin
        if left <= span:
            return begin + left
        left -= span
    raise ValueError("duration too long for the working calendar")


def working_time_between(a: datetime, b: datetime, hours: WorkingHours) -> timedelta:
    """Working time in ``[a, b)`` (zero when ``b <= a``)."""
    _aware(a)
    _aware(b)
    total = timedelta(0)
    if b <= a:
        return total
    for start, end in _windows_from(a, hours):
        if start >= b:
            break
        total += min(end, b) - max(start, a)
    return total


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    """When a case is due and when its clock escalates.

    - ``same_day_kinds``: ordinary cases of these kinds handled within the center are due
      at the end of the working day they were opened on;
    - everything else (referred to another department, urgent, other kinds) is due after
      ``long_days`` working days of working time (``long_days_by_kind`` overrides per kind,
      ``long_days_by_category`` per category code);
    - ``escalate_share``: a level escalates when this share of its span has passed
      (1.0: when the clock runs out); each next level gets the same span again.
    """

    hours: WorkingHours
    same_day_kinds: frozenset[str] = frozenset({"complaint"})
    long_days: float = 3.0
    long_days_by_kind: dict[str, float] = field(default_factory=dict)
    long_days_by_category: dict[str, float] = field(default_factory=dict)
    escalate_share: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.escalate_share <= 1:
            raise ValueError("escalate_share must be in (0, 1]")


def due_at(
    opened: datetime,
    policy: SlaPolicy,
    *,
    kind: str,
    urgent: bool,
    referred: bool,
    category: str | None = None,
) -> datetime:
    """The instant a case opened at ``opened`` is due."""
    if kind in policy.same_day_kinds and not urgent and not referred:
        return end_of_working_day(opened, policy.hours)
    days = policy.long_days_by_category.get(category or "", None)
    if days is None:
        days = policy.long_days_by_kind.get(kind, policy.long_days)
    return add_working_time(opened, policy.hours.day_length * days, policy.hours)


def next_escalation(
    last: datetime, opened: datetime, due: datetime, policy: SlaPolicy, *, first: bool
) -> datetime:
    """When the level reached at ``last`` escalates: ``escalate_share`` of the case's span
    (``opened`` to ``due`` in working time) after ``last``; the first level counts from
    ``opened``.  Never earlier than ``last``."""
    span = working_time_between(opened, due, policy.hours)
    if span <= timedelta(0):
        span = policy.hours.day_length
    step = span * policy.escalate_share
    if first:
        return max(last, add_working_time(opened, step, policy.hours))
    return add_working_time(last, step, policy.hours)
