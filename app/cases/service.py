"""Case writes and reads, one transaction each: validated first, then the case and its
events committed together, or nothing is written.

Scope: an agent sees and changes the cases it owns; a supervisor those of its teams
(``Actor.teams``; ``None``: every team); admins every case.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Role
from app.cases import sla, stages
from app.cases.schemas import AssignIn, CaseDetail, CaseEventOut, CaseIn, CaseOut, StageIn
from app.errors import (
    CaseTeamOutOfScope,
    DueInPast,
    Forbidden,
    IllegalStageChange,
    NotFound,
    UnknownCategory,
)
from app.models import (
    Agent,
    Case,
    CaseCategory,
    CaseEvent,
    CaseSeverity,
    CaseStatus,
    Customer,
    Team,
    User,
)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: the user id, role, and the teams a supervisor leads (``None``: all)."""

    user_id: int
    role: Role
    teams: frozenset[int] | None = None

    @property
    def is_supervisor(self) -> bool:
        return self.role.at_least(Role.SUPERVISOR)


async def actor_for(session: AsyncSession, *, user_id: int, role: Role) -> Actor:
    """A supervisor leads the team of its own seat, if it has one (else every team)."""
    teams: frozenset[int] | None = None
    if role == Role.SUPERVISOR:
        team = await session.scalar(
            sa.text(
                "SELECT a.team_id FROM users u JOIN agents a ON a.id = u.agent_id WHERE u.id = :u"
            ),
            {"u": user_id},
        )
        teams = frozenset({team}) if team is not None else None
    return Actor(user_id=user_id, role=role, teams=teams)


def _check_team(actor: Actor, team_id: int | None) -> None:
    if actor.role == Role.SUPERVISOR and actor.teams is not None and team_id not in actor.teams:
        raise CaseTeamOutOfScope(f"Team {team_id} is not one of yours.", team_id=team_id)


def _may_see(actor: Actor, case: Case) -> bool:
    if actor.role.at_least(Role.ADMIN):
        return True
    if actor.is_supervisor:
        return actor.teams is None or case.team_id in actor.teams
    return case.owner_user_id == actor.user_id


def to_out(case: Case, category: str | None, *, now: datetime) -> CaseOut:
    return CaseOut(
        id=case.id,
        customer_id=case.customer_id,
        kind=case.kind.value,
        category=category,
        channel=case.channel,
        severity=case.severity.value,
        subject=case.subject,
        notes=case.notes,
        call_id=case.call_id,
        valid=case.valid,
        referred=case.referred,
        department=case.department,
        stage=case.stage,
        status=case.status.value,
        owner_user_id=case.owner_user_id,
        team_id=case.team_id,
        opened_at=case.opened_at,
        closed_at=case.closed_at,
        due_at=case.due_at,
        overdue=is_overdue(case.due_at, case.stage, now=now),
        escalation_level=case.escalation_level,
        escalated_to=stages.LEVELS[case.escalation_level],
        next_escalation_at=case.next_escalation_at,
    )


def is_overdue(due: datetime | None, stage: str, *, now: datetime) -> bool:
    """Overdue is a comparison of instants, not of dates."""
    return due is not None and stage not in stages.CLOSED_STAGES and due <= now


def _event(case_id: int, now: datetime, actor: Actor | None, kind: str, **kw: Any) -> CaseEvent:
    return CaseEvent(
        case_id=case_id, at=now, user_id=actor.user_id if actor else None, kind=kind, **kw
    )


async def _category_id(session: AsyncSession, code: str | None) -> int | None:
    if code is None:
        return None
    found = await session.scalar(
        sa.select(CaseCategory.id).where(CaseCategory.code == code, CaseCategory.active)
    )
    if found is None:
        raise UnknownCategory(
            f"{code!r} is not a case category.",
            category=code,
            errors=[{"loc": ["body", "category"], "msg": "unknown category", "type": "unknown"}],
        )
    return found


async def _team_of_user(session: AsyncSession, user_id: int) -> int | None:
    """The team of the user's own seat, if it has one."""
    return await session.scalar(
        sa.select(Agent.team_id).join(User, User.agent_id == Agent.id).where(User.id == user_id)
    )


async def create(
    session: AsyncSession, *, actor: Actor, body: CaseIn, now: datetime, policy: sla.SlaPolicy
) -> CaseOut:
    """Register a case owned by the actor; its clock starts now (urgent: at the manager)."""
    if await session.get(Customer, body.customer_id) is None:
        raise NotFound(
            f"Customer {body.customer_id} does not exist.",
            resource="customer",
            id=body.customer_id,
        )
    category_id = await _category_id(session, body.category)
    team_id = (
        body.team_id if body.team_id is not None else await _team_of_user(session, actor.user_id)
    )
    if team_id is not None and await session.get(Team, team_id) is None:
        raise NotFound(f"Team {team_id} does not exist.", resource="team", id=team_id)
    _check_team(actor, team_id)
    urgent = body.severity == CaseSeverity.URGENT
    if body.due_at is not None:
        if body.due_at.tzinfo is None or body.due_at <= now:
            raise DueInPast(
                "A due time must be a future instant with a time zone.",
                due_at=body.due_at.isoformat(),
                errors=[{"loc": ["body", "due_at"], "msg": "in the past", "type": "due_in_past"}],
            )
        due = body.due_at
    else:
        due = sla.due_at(
            now,
            policy,
            kind=body.kind.value,
            urgent=urgent,
            referred=body.referred,
            category=body.category,
        )
    level = stages.TOP_LEVEL if urgent and body.kind.value == "complaint" else 0
    case = Case(
        customer_id=body.customer_id,
        opened_at=now,
        status=CaseStatus.OPEN,
        kind=body.kind,
        severity=body.severity,
        subject=body.subject,
        due_at=due,
        stage="registered",
        category_id=category_id,
        channel=body.channel,
        valid=body.valid,
        referred=body.referred,
        owner_user_id=actor.user_id,
        team_id=team_id,
        department=body.department,
        call_id=body.call_id,
        notes=body.notes,
        escalation_level=level,
        next_escalation_at=(
            None
            if level == stages.TOP_LEVEL
            else sla.next_escalation(now, now, due, policy, first=True)
        ),
    )
    session.add(case)
    await session.flush()
    session.add(_event(case.id, now, actor, "created", to_stage="registered", level=level))
    if level:
        session.add(_event(case.id, now, actor, "escalated", level=level, reason="urgent"))
    await session.commit()
    return to_out(case, body.category, now=now)


async def _load(session: AsyncSession, actor: Actor, case_id: int, *, lock: bool) -> Case:
    stmt = sa.select(Case).where(Case.id == case_id)
    if lock:
        stmt = stmt.with_for_update()
    case = (await session.scalars(stmt)).one_or_none()
    if case is None or not _may_see(actor, case):
        if case is not None and actor.is_supervisor:
            raise CaseTeamOutOfScope(
                f"Case {case_id} belongs to another team.", team_id=case.team_id
            )
        raise NotFound(f"Case {case_id} does not exist.", resource="case", id=case_id)
    return case


async def _category_code(session: AsyncSession, category_id: int | None) -> str | None:
    if category_id is None:
        return None
    return await session.scalar(sa.select(CaseCategory.code).where(CaseCategory.id == category_id))


async def get(session: AsyncSession, *, actor: Actor, case_id: int, now: datetime) -> CaseDetail:
    case = await _load(session, actor, case_id, lock=False)
    rows = (
        await session.scalars(
            sa.select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)
        )
    ).all()
    events = [CaseEventOut.model_validate(e, from_attributes=True) for e in rows]
    out = to_out(case, await _category_code(session, case.category_id), now=now)
    return CaseDetail(
        **out.model_dump(), events=events, ladder=[e for e in events if e.kind == "escalated"]
    )


async def change_stage(
    session: AsyncSession, *, actor: Actor, case_id: int, body: StageIn, now: datetime
) -> CaseOut:
    case = await _load(session, actor, case_id, lock=True)
    if not stages.allowed(case.stage, body.to):
        raise IllegalStageChange(
            f"A case in stage {case.stage} cannot move to {body.to}.",
            case_id=case_id,
            stage=case.stage,
            to=body.to,
        )
    session.add(
        _event(
            case_id,
            now,
            actor,
            "stage",
            from_stage=case.stage,
            to_stage=body.to,
            reason=body.reason,
        )
    )
    case.stage = body.to
    if body.to in stages.CLOSED_STAGES:
        if case.status != CaseStatus.CLOSED:
            case.closed_at = now
        case.status = CaseStatus.CLOSED
        case.next_escalation_at = None
    else:
        case.status = CaseStatus.OPEN
        case.closed_at = None
    await session.commit()
    return to_out(case, await _category_code(session, case.category_id), now=now)


async def assign(
    session: AsyncSession, *, actor: Actor, case_id: int, body: AssignIn, now: datetime
) -> CaseOut:
    """Hand the case to an owner and/or team (supervisors and up), or take it over."""
    if not actor.is_supervisor:
        raise Forbidden(
            "Assigning a case requires the supervisor role.", required_role="supervisor"
        )
    case = await _load(session, actor, case_id, lock=True)
    if case.stage == "archived":
        raise IllegalStageChange(
            f"Case {case_id} is archived.", case_id=case_id, stage=case.stage, to=case.stage
        )
    owner = body.owner_user_id if body.owner_user_id is not None else actor.user_id
    if await session.get(User, owner) is None:
        raise NotFound(f"User {owner} does not exist.", resource="user", id=owner)
    if body.team_id is not None:
        if await session.get(Team, body.team_id) is None:
            raise NotFound(f"Team {body.team_id} does not exist.", resource="team", id=body.team_id)
        _check_team(actor, body.team_id)
        case.team_id = body.team_id
    kind = "taken-over" if body.owner_user_id is None else "assigned"
    session.add(
        _event(
            case_id,
            now,
            actor,
            kind,
            level=case.escalation_level,
            reason=body.reason or f"owner {case.owner_user_id} -> {owner}",
        )
    )
    case.owner_user_id = owner
    await session.commit()
    return to_out(case, await _category_code(session, case.category_id), now=now)


async def list_cases(
    session: AsyncSession,
    *,
    actor: Actor,
    now: datetime,
    mine: bool = False,
    open_only: bool = True,
    stage: str | None = None,
    category: str | None = None,
    team_id: int | None = None,
    overdue: bool | None = None,
    escalated_to_me: bool = False,
    limit: int = 200,
) -> list[CaseOut]:
    """Cases in the actor's scope, soonest due first."""
    stmt = sa.select(Case, CaseCategory.code).outerjoin(
        CaseCategory, CaseCategory.id == Case.category_id
    )
    if mine or not actor.is_supervisor:
        stmt = stmt.where(Case.owner_user_id == actor.user_id)
    elif actor.role == Role.SUPERVISOR and actor.teams is not None:
        stmt = stmt.where(Case.team_id.in_(actor.teams))
    if team_id is not None:
        _check_team(actor, team_id)
        stmt = stmt.where(Case.team_id == team_id)
    if open_only:
        stmt = stmt.where(Case.status == CaseStatus.OPEN)
    if stage is not None:
        stmt = stmt.where(Case.stage == stage)
    if category is not None:
        stmt = stmt.where(CaseCategory.code == category)
    if overdue is not None:
        late = sa.and_(Case.due_at <= now, Case.stage.not_in(stages.CLOSED_STAGES))
        stmt = stmt.where(late if overdue else sa.not_(late))
    if escalated_to_me:
        level = 0
        if actor.role.at_least(Role.ADMIN):
            level = stages.TOP_LEVEL
        elif actor.is_supervisor:
            level = 1
        stmt = stmt.where(Case.escalation_level == level)
    stmt = stmt.order_by(Case.due_at.asc().nulls_last(), Case.id).limit(limit)
    rows = (await session.execute(stmt)).all()
    return [to_out(case, code, now=now) for case, code in rows]


async def categories(session: AsyncSession) -> list[CaseCategory]:
    return list((await session.scalars(sa.select(CaseCategory).order_by(CaseCategory.id))).all())
