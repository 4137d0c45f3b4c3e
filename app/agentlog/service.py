"""Pause codes: keyword-only functions on an ``AsyncSession``, one transaction each."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.agentlog.models import PauseCode
from app.errors import Conflict, NotFound


async def list_codes(session: AsyncSession, *, include_inactive: bool) -> list[PauseCode]:
    stmt = sa.select(PauseCode).order_by(PauseCode.position, PauseCode.code)
    if not include_inactive:
        stmt = stmt.where(PauseCode.active.is_(True))
    return list((await session.scalars(stmt)).all())


async def get_code(session: AsyncSession, *, code: str) -> PauseCode:
    obj = await session.get(PauseCode, code)
    if obj is None:
        raise NotFound(f"Pause code {code!r} does not exist.", resource="pause-code", id=code)
    return obj


async def create_code(session: AsyncSession, *, data: dict[str, Any]) -> PauseCode:
    if await session.get(PauseCode, data["code"]) is not None:
        raise Conflict(f"Pause code {data['code']!r} already exists.", code=data["code"])
    obj = PauseCode(**data)
    session.add(obj)
    await session.commit()
    return obj


async def update_code(session: AsyncSession, *, code: str, changes: dict[str, Any]) -> PauseCode:
    obj = await get_code(session, code=code)
    for key, value in changes.items():
        setattr(obj, key, value)
    await session.commit()
    return obj


async def delete_code(session: AsyncSession, *, code: str) -> None:
    """Delete a code; the state log keeps the reason text of past pauses."""
    obj = await get_code(session, code=code)
    await session.delete(obj)
    await session.commit()
