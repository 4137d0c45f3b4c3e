"""Cases on a real PostgreSQL with an injected clock: create with SLA due instants,
stage changes and their events, bad input leaving nothing written, and the escalation
ladder firing each level exactly once (also across a "restart": a new scheduler)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Role
from app.cases import escalation, service, sla
from app.cases.scheduler import EscalationScheduler
from app.cases.schemas import AssignIn, CaseIn, EscalateIn, StageIn
from app.db import Database
from app.errors import (
    CaseTeamOutOfScope,
    Conflict,
    DueInPast,
    IllegalStageChange,
    NotFound,
    UnknownCategory,
)
from app.models import Agent, Case, CaseEvent, CaseKind, CaseSeverity, Customer, Team, User

SHANGHAI = ZoneInfo("Asia/Shanghai")
POLICY = sla.SlaPolicy(hours=sla.WorkingHours(tz=SHANGHAI))
T0 = datetime(2026, 12, 3, 10, tzinfo=SHANGHAI)  # Thursday


async def _world(session: AsyncSession) -> tuple[service.Actor, service.Actor, int, int, int]:
    team = Team(name=f"cases-{id(session)}")
    other = Team(name=f"other-{id(session)}")
    session.add_all([team, other])
    await session.flush()
    seat = Agent(name="a", device="PJSIP/x", team_id=team.id)
    session.add(seat)
    await session.flush()
    agent = User(username=f"ag-{id(session)}", password_hash="x", role="agent", agent_id=seat.id)
    sup = User(
        username=f"sup-{id(session)}", password_hash="x", role="supervisor", agent_id=seat.id
    )
    customer = Customer(name="张伟")
    session.add_all([agent, sup, customer])
    await session.flush()
    a = await service.actor_for(session, user_id=agent.id, role=Role.AGENT)
    s = await service.actor_for(session, user_id=sup.id, role=Role.SUPERVISOR)
    assert s.teams == frozenset({team.id})
    return a, s, customer.id, team.id, other.id


async def _count(session: AsyncSession, table: type) -> int:
    return int(await session.scalar(sa.select(sa.func.count()).select_from(table)) or 0)


async def test_create_due_same_day_and_stage_flow(session: AsyncSession) -> None:
    agent, sup, cid, team, _ = await _world(session)
    out = await service.create(
        session,
        actor=agent,
        now=T0,
        policy=POLICY,
        body=CaseIn(
            customer_id=cid,
            subject="washer leaks",
            category="product-quality",
            call_id="pbx1/1.1",
            notes="third call",
        ),
    )
    assert out.due_at == datetime(2026, 12, 3, 18, tzinfo=SHANGHAI)
    assert out.team_id == team and out.owner_user_id == agent.user_id
    assert out.category == "product-quality" and out.stage == "registered"
    assert out.next_escalation_at == out.due_at and out.escalated_to == "owner"
    for to in ("accepted", "handling", "replied"):
        out = await service.change_stage(
            session,
            actor=agent,
            case_id=out.id,
            body=StageIn.model_validate({"to": to}),
            now=T0,
        )
    with pytest.raises(IllegalStageChange):
        await service.change_stage(
            session, actor=agent, case_id=out.id, body=StageIn(to="archived"), now=T0
        )
    closed = await service.change_stage(
        session, actor=agent, case_id=out.id, body=StageIn(to="closed", reason="fixed"), now=T0
    )
    assert closed.status == "closed" and closed.next_escalation_at is None and not closed.overdue
    detail = await service.get(session, actor=sup, case_id=out.id, now=T0)
    assert [e.kind for e in detail.events] == ["created"] + ["stage"] * 4
    assert detail.events[-1].reason == "fixed" and detail.events[-1].user_id == agent.user_id


async def test_bad_input_writes_nothing(session: AsyncSession) -> None:
    agent, sup, cid, _, other = await _world(session)
    before = (await _count(session, Case), await _count(session, CaseEvent))
    with pytest.raises(UnknownCategory):
        await service.create(
            session,
            actor=agent,
            now=T0,
            policy=POLICY,
            body=CaseIn(customer_id=cid, subject="x", category="nonsense"),
        )
    with pytest.raises(DueInPast):
        await service.create(
            session,
            actor=agent,
            now=T0,
            policy=POLICY,
            body=CaseIn(customer_id=cid, subject="x", due_at=T0 - timedelta(minutes=1)),
        )
    with pytest.raises(CaseTeamOutOfScope):
        await service.create(
            session,
            actor=sup,
            now=T0,
            policy=POLICY,
            body=CaseIn(customer_id=cid, subject="x", team_id=other),
        )
    with pytest.raises(NotFound):
        await service.create(
            session, actor=agent, now=T0, policy=POLICY, body=CaseIn(customer_id=2**40, subject="x")
        )
    assert (await _count(session, Case), await _count(session, CaseEvent)) == before


async def test_overdue_is_an_instant_and_lists_filter(session: AsyncSession) -> None:
    agent, sup, cid, team, _ = await _world(session)
    out = await service.create(
        session, actor=agent, now=T0, policy=POLICY, body=CaseIn(customer_id=cid, subject="x")
    )
    at_17 = T0.replace(hour=17)
    at_1801 = T0.replace(hour=18, minute=1)
    assert not (await service.get(session, actor=agent, case_id=out.id, now=at_17)).overdue
    assert (await service.get(session, actor=agent, case_id=out.id, now=at_1801)).overdue
    mine = await service.list_cases(session, actor=agent, now=at_1801, mine=True, overdue=True)
    assert [c.id for c in mine] == [out.id]
    board = await service.list_cases(session, actor=sup, now=at_17, overdue=True, team_id=team)
    assert board == []


async def test_ladder_fires_each_level_once(session: AsyncSession) -> None:
    agent, sup, cid, _, _ = await _world(session)
    out = await service.create(
        session, actor=agent, now=T0, policy=POLICY, body=CaseIn(customer_id=cid, subject="x")
    )
    early = await escalation.fire_due(session, now=T0.replace(hour=17), policy=POLICY, limit=10)
    assert out.id not in [f.case_id for f in early]
    due = T0.replace(hour=18)
    first = await escalation.fire_due(session, now=due, policy=POLICY, limit=10)
    assert [(f.case_id, f.level) for f in first if f.case_id == out.id] == [(out.id, 1)]
    # The same instant again (a second scheduler, or one restarted): nothing fires twice.
    again = await escalation.fire_due(session, now=due, policy=POLICY, limit=10)
    assert out.id not in [f.case_id for f in again]
    case = await service.get(session, actor=sup, case_id=out.id, now=due)
    assert case.escalated_to == "supervisor"
    # The supervisor gets the owner's span again: 8 working hours (Friday 17:00).
    assert case.next_escalation_at == datetime(2026, 12, 4, 17, tzinfo=SHANGHAI)
    esc = await service.list_cases(session, actor=sup, now=due, escalated_to_me=True)
    assert out.id in [c.id for c in esc]
    top = await escalation.fire_due(
        session, now=datetime(2026, 12, 7, tzinfo=UTC), policy=POLICY, limit=10
    )
    assert (out.id, 2) in [(f.case_id, f.level) for f in top]
    case = await service.get(session, actor=sup, case_id=out.id, now=due)
    assert case.escalated_to == "manager" and case.next_escalation_at is None
    assert [e.level for e in case.ladder] == [1, 2]
    assert all(e.user_id is None for e in case.ladder)


async def test_urgent_complaint_starts_at_the_manager(session: AsyncSession) -> None:
    agent, _, cid, _, _ = await _world(session)
    out = await service.create(
        session,
        actor=agent,
        now=T0,
        policy=POLICY,
        body=CaseIn(
            customer_id=cid, subject="fire", severity=CaseSeverity.URGENT, kind=CaseKind.COMPLAINT
        ),
    )
    assert out.escalated_to == "manager" and out.next_escalation_at is None
    assert out.due_at == datetime(2026, 12, 8, 10, tzinfo=SHANGHAI)


async def test_manual_escalation_and_take_over(session: AsyncSession) -> None:
    agent, sup, cid, _, _ = await _world(session)
    out = await service.create(
        session, actor=agent, now=T0, policy=POLICY, body=CaseIn(customer_id=cid, subject="x")
    )
    up = await escalation.escalate(
        session, actor=sup, case_id=out.id, body=EscalateIn(reason="angry"), now=T0, policy=POLICY
    )
    assert up.escalated_to == "supervisor"
    took = await service.assign(session, actor=sup, case_id=out.id, body=AssignIn(), now=T0)
    assert took.owner_user_id == sup.user_id
    top = await escalation.escalate(
        session, actor=sup, case_id=out.id, body=EscalateIn(), now=T0, policy=POLICY
    )
    assert top.escalated_to == "manager"
    with pytest.raises(Conflict):
        await escalation.escalate(
            session, actor=sup, case_id=out.id, body=EscalateIn(), now=T0, policy=POLICY
        )
    # The agent no longer owns it: it cannot see it.
    with pytest.raises(NotFound):
        await service.get(session, actor=agent, case_id=out.id, now=T0)
    detail = await service.get(session, actor=sup, case_id=out.id, now=T0)
    assert [e.kind for e in detail.events] == ["created", "escalated", "taken-over", "escalated"]


async def test_scheduler_restart_mid_sla_fires_once(database: Database) -> None:
    """A scheduler stopped before the clock runs out and a new one started after: the
    level fires exactly once, from the persisted clock."""
    async with database.sessionmaker() as session:
        agent, _, cid, _, _ = await _world(session)
        out = await service.create(
            session, actor=agent, now=T0, policy=POLICY, body=CaseIn(customer_id=cid, subject="r")
        )
    now = [T0.replace(hour=12)]
    heard: list[int] = []

    def scheduler() -> EscalationScheduler:
        return EscalationScheduler(
            database.sessionmaker,
            POLICY,
            clock=lambda: now[0],
            notify=lambda fired: heard.extend(f.case_id for f in fired),
        )

    first = scheduler()
    await first.start()
    await first.run_once()
    await first.stop()
    assert out.id not in heard  # 12:00: not due yet
    now[0] = T0.replace(hour=18, minute=5)
    await scheduler().run_once()
    await scheduler().run_once()
    assert heard.count(out.id) == 1
    async with database.sessionmaker() as session:
        events = (
            await session.scalars(
                sa.select(CaseEvent.level).where(
                    CaseEvent.case_id == out.id, CaseEvent.kind == "escalated"
                )
            )
        ).all()
    assert list(events) == [1]
