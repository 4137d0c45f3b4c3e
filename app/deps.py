"""FastAPI dependency aliases for what the lifespan put on ``app.state``.

Invariants:
- The lifespan (``app.main``) is the only place that creates the settings, the database
  and the call center; request handlers reach them only through these dependencies.
- ``SessionDep`` yields one ``AsyncSession`` per request.  Nothing is committed unless
  the handler (or a service function) calls ``await session.commit()``; whatever is not
  committed is rolled back when the request ends, so a failed request writes nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database
from app.errors import ServiceUnavailable
from app.settings import Settings


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_database(request: Request) -> Database:
    db: Database | None = getattr(request.app.state, "db", None)
    if db is None:
        raise ServiceUnavailable("The database is not available.")
    return db


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    db = get_database(request)
    async with db.sessionmaker() as session:
        try:
            yield session
        finally:
            # Explicit: anything the handler did not commit is discarded.
            if session.in_transaction():
                await session.rollback()


def get_callcenter(request: Request) -> Any:
    """The live runtime's ``CallCenter`` (``None`` while the live runtime is a placeholder)."""
    return getattr(request.app.state, "callcenter", None)


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
CallCenterDep = Annotated[Any, Depends(get_callcenter)]
