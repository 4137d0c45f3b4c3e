"""Demo mode's complaint climbs owner -> supervisor -> manager within minutes on the
round-the-clock policy (what ``make run`` shows on /cases)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.cases import escalation
from app.cases.demo import ROUND_THE_CLOCK, add_climbing_complaint
from app.cases.routes import policy_from
from app.models import Agent, Customer, User


async def test_demo_complaint_reaches_the_manager_in_minutes(session: AsyncSession) -> None:
    seat = Agent(name="demo", device="PJSIP/demo")
    session.add_all([seat, Customer(name="demo customer")])
    await session.flush()
    session.add(User(username="demo-agent-x", password_hash="x", role="agent", agent_id=seat.id))
    await session.flush()
    now = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)  # a Sunday night: the demo still runs
    case_id = await add_climbing_complaint(session, now=now)
    assert case_id is not None
    policy = policy_from(ROUND_THE_CLOCK)
    levels = []
    for minutes in (1, 2, 3, 4, 10):
        fired = await escalation.fire_due(
            session, now=now + timedelta(minutes=minutes, seconds=1), policy=policy, limit=100
        )
        levels += [f.level for f in fired if f.case_id == case_id]
    assert levels == [1, 2]
