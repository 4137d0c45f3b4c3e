"""FastAPI dependency aliases for what the lifespan put on ``app.state``.

Invariants:
- The lifespan (``app.main``) is the only place that creates the settings, the database
  and the call center; request handlers reach them only through these dependencies.
- ``SessionDep`` yields one ``AsyncSession`` per request.  Nothing is committed unless
  the handler (or a service function) calls ``await session.commit()``; whatever is not
  committed is rolled back when the request ends, so a failed request writes nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database
from app.errors import ServiceUnavailable, ValidationFailed
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
                # A lost connection must not turn the request's own error into another.
                with contextlib.suppress(DBAPIError, OSError):
                    await session.rollback()


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]


# The query parameter names (aliases) a route declares, its dependencies' included, read
# from FastAPI's own dependant: never a list kept by hand beside the signature.
def _query_aliases(dependant: Dependant) -> frozenset[str]:
    names = {field.alias for field in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_aliases(sub)
    return frozenset(names)


def reject_unknown_query(request: Request) -> None:
    """Refuse query parameters the route does not declare (422), instead of ignoring them:
    ``?caler=`` silently returning every call looks like an answer and is not one."""
    declared = _query_aliases(request.scope["route"].dependant)
    unknown = sorted(set(request.query_params.keys()) - declared)
    if unknown:
        raise ValidationFailed(
            f"Unknown query parameter(s): {', '.join(unknown)}.",
            errors=[
                {"loc": ["query", name], "msg": "unknown parameter", "type": "extra_forbidden"}
                for name in unknown
            ],
        )
