"""The escalation ladder: owner (0) -> the owner's team supervisor (1) -> manager (2).

``fire_due`` is the scheduler's one step: it claims the earliest clocks that have run out
(``FOR UPDATE SKIP LOCKED``, so two processes never claim the same row), raises each case
one level, sets its next clock (none at the top) and records the escalation, all in one
transaction: a level fires once, and a crash before the commit leaves the clock due.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from app.cases import sla, stages
from app.cases.schemas import CaseOut, EscalateIn
from app.cases.service import Actor, _category_code, _event, _load, to_out
from app.errors import Conflict, Forbidden


@dataclass(frozen=True, slots=True)
class Fired:
    """One level reached: whom to tell (the case's team, or the managers at the top)."""

    case_id: int
    level: int
    team_id: int | None
    owner_user_id: int | None
    at: datetime


_CLAIM = sa.text(
    "SELECT id, opened_at, due_at, escalation_level, next_escalation_at, team_id,"
    " owner_user_id FROM cases WHERE next_escalation_at <= :now"
    " ORDER BY next_escalation_at LIMIT :n FOR UPDATE SKIP LOCKED"
)
_UPDATE = sa.text(
    "UPDATE cases c SET escalation_level = v.level, next_escalation_at = v.next"
    " FROM unnest(:ids, :levels, :nexts) AS v(id, level, next) WHERE c.id = v.id"
).bindparams(
    sa.bindparam("ids", type_=ARRAY(sa.BigInteger)),
    sa.bindparam("levels", type_=ARRAY(sa.SmallInteger)),
    sa.bindparam("nexts", type_=ARRAY(sa.DateTime(timezone=True))),
)
_EVENTS = sa.text(
    "INSERT INTO case_events (case_id, at, kind, level, reason)"
    " SELECT v.id, v.at, 'escalated', v.level, 'clock ran out'"
    " FROM unnest(:ids, :ats, :levels) AS v(id, at, level)"
).bindparams(
    sa.bindparam("ids", type_=ARRAY(sa.BigInteger)),
    sa.bindparam("ats", type_=ARRAY(sa.DateTime(timezone=True))),
    sa.bindparam("levels", type_=ARRAY(sa.SmallInteger)),
)


async def fire_due(
    session: AsyncSession, *, now: datetime, policy: sla.SlaPolicy, limit: int
) -> list[Fired]:
    """Escalate up to ``limit`` cases whose clock ran out by ``now``; commits."""
    rows = (await session.execute(_CLAIM, {"now": now, "n": limit})).all()
    fired: list[Fired] = []
    nexts: list[datetime | None] = []
    for i, r in enumerate(rows):
        if i and i % 50 == 0:
            # The working-time arithmetic is CPU: let the routing path run between rows.
            await asyncio.sleep(0)
        level = min(r.escalation_level + 1, stages.TOP_LEVEL)
        due = r.due_at or r.next_escalation_at
        nexts.append(
            None
            if level == stages.TOP_LEVEL
            else sla.next_escalation(r.next_escalation_at, r.opened_at, due, policy, first=False)
        )
        fired.append(Fired(r.id, level, r.team_id, r.owner_user_id, r.next_escalation_at))
    if fired:
        ids = [f.case_id for f in fired]
        levels = [f.level for f in fired]
        await session.execute(_UPDATE, {"ids": ids, "levels": levels, "nexts": nexts})
        await session.execute(_EVENTS, {"ids": ids, "ats": [f.at for f in fired], "levels": levels})
    await session.commit()
    return fired


async def escalate(
    session: AsyncSession,
    *,
    actor: Actor,
    case_id: int,
    body: EscalateIn,
    now: datetime,
    policy: sla.SlaPolicy,
) -> CaseOut:
    """Raise a case one level by hand (its owner or a supervisor in scope)."""
    case = await _load(session, actor, case_id, lock=True)
    if not actor.is_supervisor and case.owner_user_id != actor.user_id:
        raise Forbidden("Only the owner or a supervisor may escalate a case.")
    if case.stage in stages.CLOSED_STAGES or case.escalation_level >= stages.TOP_LEVEL:
        raise Conflict(
            f"Case {case_id} cannot climb further.",
            case_id=case_id,
            level=stages.LEVELS[case.escalation_level],
            stage=case.stage,
        )
    case.escalation_level += 1
    due = case.due_at or now
    case.next_escalation_at = (
        None
        if case.escalation_level == stages.TOP_LEVEL
        else sla.next_escalation(now, case.opened_at, due, policy, first=False)
    )
    session.add(
        _event(
            case_id,
            now,
            actor,
            "escalated",
            level=case.escalation_level,
            reason=body.reason or "by hand",
        )
    )
    await session.commit()
    return to_out(case, await _category_code(session, case.category_id), now=now)
