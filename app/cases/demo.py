"""Demo mode: a complaint that climbs the ladder within minutes (owner -> supervisor ->
manager), so ``make run`` shows the escalation without waiting a working day."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Agent, Case, CaseCategory, CaseEvent, CaseKind, CaseStatus, Customer, User
from app.settings import CaseSettings

# The demo center works around the clock, so a short clock runs down at any hour.
ROUND_THE_CLOCK = CaseSettings(
    work_start=time(0, 0),
    work_end=time(23, 59, 59, 999999),
    weekdays=[0, 1, 2, 3, 4, 5, 6],
    scheduler_interval_s=2.0,
)


async def add_climbing_complaint(
    session: AsyncSession, *, now: datetime, step: timedelta = timedelta(minutes=2)
) -> int | None:
    """A fresh complaint owned by the first agent user, due ``step`` from ``now``; each
    next level follows ``step`` later.  ``None`` when there is no customer or agent user."""
    row = (
        await session.execute(
            sa.select(User.id, Agent.team_id)
            .join(Agent, Agent.id == User.agent_id)
            .where(User.role == "agent")
            .order_by(User.id)
            .limit(1)
        )
    ).one_or_none()
    customer = await session.scalar(sa.select(Customer.id).order_by(Customer.id).limit(1))
    if row is None or customer is None:
        return None
    category = await session.scalar(
        sa.select(CaseCategory.id).where(CaseCategory.code == "service-attitude")
    )
    case = Case(
        customer_id=customer,
        opened_at=now,
        status=CaseStatus.OPEN,
        kind=CaseKind.COMPLAINT,
        subject="Demo: rude technician, no call back",
        due_at=now + step,
        stage="accepted",
        category_id=category,
        channel="phone",
        owner_user_id=row.id,
        team_id=row.team_id,
        notes="Seeded by demo mode: watch it climb on /cases (escalated to me).",
        next_escalation_at=now + step,
    )
    session.add(case)
    await session.flush()
    session.add(
        CaseEvent(
            case_id=case.id, at=now, user_id=row.id, kind="created", to_stage="accepted", level=0
        )
    )
    await session.commit()
    return case.id
