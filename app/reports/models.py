"""Interval statistics: 15-minute rollups per queue, team and agent (kept after the
calls and the state log are purged).

Invariants:
- One ``interval_stats`` row per (kind, entity, interval start); every figure is a sum
  (counts and seconds) or a maximum, so an hour, a day or a month is the sum (or max)
  of its intervals.  Rates (service level, ASA, AHT, occupancy) are computed when read.
- A row is always *recomputed* from the source rows of its interval (``app.reports.rollup``):
  an interval written twice holds the same figures, so replays and restarts are harmless.
- Call figures belong to the interval the call *arrived* in; agent state time is split
  across the intervals it spans.  ``pause_stats`` holds paused seconds by reason.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.models import Base

KINDS = ("queue", "team", "agent")
_NOW = sa.text("now()")


def _count() -> Mapped[int]:
    return mapped_column(sa.Integer, server_default="0")


def _secs() -> Mapped[float]:
    return mapped_column(sa.Double, server_default="0")


class IntervalStats(Base):
    __tablename__ = "interval_stats"

    kind: Mapped[str] = mapped_column(sa.String(8), primary_key=True)
    entity_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    interval_start: Mapped[datetime] = mapped_column(primary_key=True)
    offered: Mapped[int] = _count()  # arrived in the queue (not in the greeting)
    answered: Mapped[int] = _count()
    answered_in_sl: Mapped[int] = _count()  # within the queue's own sl_target_s
    abandoned: Mapped[int] = _count()  # after the short-abandon threshold
    short_abandoned: Mapped[int] = _count()
    abandoned_in_ivr: Mapped[int] = _count()  # in the greeting, before the queue
    overflowed: Mapped[int] = _count()
    failed: Mapped[int] = _count()
    wait_answered_s: Mapped[float] = _secs()  # sum of waits of answered calls (ASA)
    max_wait_s: Mapped[float] = _secs()
    talk_s: Mapped[float] = _secs()
    wrapup_s: Mapped[float] = _secs()
    transfers: Mapped[int] = _count()
    rona: Mapped[int] = _count()  # offers not answered (queue: of its calls; agent: its own)
    offers: Mapped[int] = _count()  # offers rung (agents and teams)
    login_s: Mapped[float] = _secs()  # agent state time within the interval
    ready_s: Mapped[float] = _secs()
    reserved_s: Mapped[float] = _secs()
    on_call_s: Mapped[float] = _secs()
    wrap_state_s: Mapped[float] = _secs()
    paused_s: Mapped[float] = _secs()
    computed_at: Mapped[datetime] = mapped_column(server_default=_NOW)

    __table_args__ = (
        sa.CheckConstraint("kind IN ('queue', 'team', 'agent')", name="kind_known"),
        sa.Index("ix_interval_stats_kind_interval_start", "kind", "interval_start"),
    )


class DailyStats(Base):
    """The sums of a day's intervals (days of ``reports.timezone``), kept by adding each
    recomputed interval's change, so month reports read 30 rows per entity, not 2,880.
    ``max_wait_s`` only grows (the longest wait ever computed for the day)."""

    __tablename__ = "daily_stats"

    kind: Mapped[str] = mapped_column(sa.String(8), primary_key=True)
    entity_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    offered: Mapped[int] = _count()
    answered: Mapped[int] = _count()
    answered_in_sl: Mapped[int] = _count()
    abandoned: Mapped[int] = _count()
    short_abandoned: Mapped[int] = _count()
    abandoned_in_ivr: Mapped[int] = _count()
    overflowed: Mapped[int] = _count()
    failed: Mapped[int] = _count()
    wait_answered_s: Mapped[float] = _secs()
    max_wait_s: Mapped[float] = _secs()
    talk_s: Mapped[float] = _secs()
    wrapup_s: Mapped[float] = _secs()
    transfers: Mapped[int] = _count()
    rona: Mapped[int] = _count()
    offers: Mapped[int] = _count()
    login_s: Mapped[float] = _secs()
    ready_s: Mapped[float] = _secs()
    reserved_s: Mapped[float] = _secs()
    on_call_s: Mapped[float] = _secs()
    wrap_state_s: Mapped[float] = _secs()
    paused_s: Mapped[float] = _secs()

    __table_args__ = (
        sa.CheckConstraint("kind IN ('queue', 'team', 'agent')", name="kind_known"),
        sa.Index("ix_daily_stats_kind_day", "kind", "day"),
    )


class DailyPause(Base):
    __tablename__ = "daily_pause"

    kind: Mapped[str] = mapped_column(sa.String(8), primary_key=True)
    entity_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    reason: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    seconds: Mapped[float] = _secs()

    __table_args__ = (
        sa.CheckConstraint("kind IN ('team', 'agent')", name="kind_known"),
        sa.Index("ix_daily_pause_kind_day", "kind", "day"),
    )


class PauseStats(Base):
    __tablename__ = "pause_stats"

    kind: Mapped[str] = mapped_column(sa.String(8), primary_key=True)
    entity_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    interval_start: Mapped[datetime] = mapped_column(primary_key=True)
    reason: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    seconds: Mapped[float] = _secs()

    __table_args__ = (
        sa.CheckConstraint("kind IN ('team', 'agent')", name="kind_known"),
        sa.Index("ix_pause_stats_kind_interval_start", "kind", "interval_start"),
    )
