"""Call history routes (``/calls``): the durable outcome log, newest first.

Invariants:
- Keyset pagination on ``(arrived_at DESC, id DESC)`` (index ``ix_calls_arrived_at_id``);
  the cursor is opaque and stable while new calls arrive.
- An agent sees only calls it was offered or answered; asking for another agent's calls
  is a 403, and another agent's call by id is a 404 (its existence is not revealed).
  Supervisors and admins see every call.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy.ext.asyncio import AsyncSession

from app import models
from app.api import schemas
from app.api.pagination import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    decode_time_id_cursor,
    encode_cursor,
    in_utc_range,
)
from app.auth import CurrentUser, Principal, Role
from app.deps import SessionDep, reject_unknown_query
from app.errors import Forbidden, NotFound, ValidationFailed
from app.text import SingleLine
from routing.commands import CallResult

router = APIRouter(prefix="/calls", tags=["calls"])


def _own_calls(agent_id: int) -> Any:
    return sa.or_(
        models.Call.answered_by == agent_id,
        sa.literal(agent_id) == sa.any_(models.Call.agents_offered),
    )


def _seat(principal: Principal) -> int | None:
    """The agent seat whose calls this principal may see; ``None``: every call."""
    if principal.has_role(Role.SUPERVISOR):
        return None
    if principal.agent_id is None or not principal.agent_id.isdigit():
        raise Forbidden("This account has no agent seat.")
    return int(principal.agent_id)


async def list_calls(
    session: AsyncSession,
    *,
    seat: int | None,
    since: datetime | None,
    until: datetime | None,
    queue_id: int | None,
    agent_id: int | None,
    result: CallResult | None,
    limit: int,
    cursor: str | None,
    caller: str | None = None,
) -> schemas.Page[schemas.CallRead]:
    stmt = sa.select(models.Call)
    if caller is not None:
        stmt = stmt.where(models.Call.caller == caller)  # ix_calls_caller_arrived_at
    if seat is not None:
        stmt = stmt.where(_own_calls(seat))
    if since is not None:
        stmt = stmt.where(models.Call.arrived_at >= since)
    if until is not None:
        stmt = stmt.where(models.Call.arrived_at < until)
    if queue_id is not None:
        stmt = stmt.where(models.Call.queue_id == queue_id)
    if agent_id is not None:
        stmt = stmt.where(_own_calls(agent_id))
    if result is not None:
        stmt = stmt.where(models.Call.result == result)
    after = decode_time_id_cursor(cursor)
    if after is not None:
        stmt = stmt.where(sa.tuple_(models.Call.arrived_at, models.Call.id) < sa.tuple_(*after))
    stmt = stmt.order_by(models.Call.arrived_at.desc(), models.Call.id.desc()).limit(limit + 1)
    rows = list((await session.scalars(stmt)).all())
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(last.arrived_at, last.id)
    return schemas.Page(
        items=[schemas.CallRead.model_validate(r) for r in rows[:limit]], next_cursor=next_cursor
    )


def _aware(name: str, value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValidationFailed(
            f"{name} needs a time zone (e.g. 2026-01-31T08:00:00Z).",
            errors=[{"loc": ["query", name], "msg": "naive datetime", "type": "timezone_aware"}],
        )
    if not in_utc_range(value):  # e.g. 0001-01-01T00:00+05:00 is in year 0 in UTC
        raise ValidationFailed(
            f"{name} is outside the years 1-9999 once converted to UTC.",
            errors=[{"loc": ["query", name], "msg": "out of range", "type": "datetime_range"}],
        )
    return value


@router.get(
    "",
    summary="Call history, newest first (agents: their own calls)",
    dependencies=[Depends(reject_unknown_query)],
)
async def get_calls(
    session: SessionDep,
    principal: CurrentUser,
    since: Annotated[
        datetime | None,
        Query(alias="from", description="Arrived at or after (ISO 8601, with zone)"),
    ] = None,
    until: Annotated[datetime | None, Query(alias="to", description="Arrived before")] = None,
    queue_id: Annotated[int | None, Query(ge=1, le=schemas.INT4_MAX)] = None,
    agent_id: Annotated[
        int | None,
        Query(ge=1, le=schemas.INT4_MAX, description="Offered to or answered by"),
    ] = None,
    caller: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=64,
            pattern=r"^[0-9A-Za-z+*#._-]+$",
            description="Caller number, exact",
        ),
    ] = None,
    result: CallResult | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> schemas.Page[schemas.CallRead]:
    seat = _seat(principal)
    if seat is not None and agent_id is not None and agent_id != seat:
        raise Forbidden("An agent may list only its own calls.", agent_id=agent_id)
    return await list_calls(
        session,
        seat=seat,
        since=_aware("from", since),
        until=_aware("to", until),
        queue_id=queue_id,
        agent_id=agent_id,
        result=result,
        limit=limit,
        cursor=cursor,
        caller=caller,
    )


@router.get(
    "/{call_id:path}",
    summary='One call with its events (call_id is "<server>/<uniqueid>")',
    responses={404: {"description": "Unknown call (problem details)"}},
)
async def get_call(
    session: SessionDep,
    principal: CurrentUser,
    call_id: Annotated[str, Path(min_length=1, max_length=200), SingleLine],
) -> schemas.CallDetailRead:
    seat = _seat(principal)
    stmt = sa.select(models.Call).where(models.Call.call_id == call_id)
    if seat is not None:
        stmt = stmt.where(_own_calls(seat))
    call = await session.scalar(stmt)
    if call is None:
        raise NotFound(f"Call {call_id!r} does not exist.", resource="call", id=call_id)
    events = (
        await session.scalars(
            sa.select(models.CallEvent)
            .where(models.CallEvent.call_id == call_id)
            .order_by(models.CallEvent.at, models.CallEvent.id)
        )
    ).all()
    base = schemas.CallRead.model_validate(call).model_dump()
    return schemas.CallDetailRead(
        **base, events=[schemas.CallEventRead.model_validate(e) for e in events]
    )
