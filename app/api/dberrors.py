"""Database errors that escape a handler become problems, not 500s.

Invariants:
- Requests are validated at the edge (ranges, time zones, control characters); this is
  the net under that validation, so a value the edge let through is still a client
  error, and an unreachable database is still an answer.
- A value PostgreSQL (or asyncpg, before sending) cannot store or compare -- a number out
  of the column's range, a date it cannot represent, a NUL character -- is 422
  ``validation-failed``.  A constraint violation found on an implicit flush is what an
  explicit commit reports (409 ``conflict`` / 422).
- A database that is down, restarting or out of connections is 503
  ``service-unavailable`` on every route, the token endpoint included.  Nothing of the
  underlying error (SQL, host, password) reaches the body; the log names its class.
"""

from __future__ import annotations

import logging

import asyncpg
from fastapi import FastAPI, Request
from sqlalchemy import exc as sa_exc
from starlette.responses import JSONResponse

from app.api.service import integrity_problem
from app.errors import InternalError, ProblemError, ServiceUnavailable, ValidationFailed, render

logger = logging.getLogger(__name__)

UNAVAILABLE_DETAIL = "The database is not reachable; try again shortly."


def unavailable() -> ServiceUnavailable:
    return ServiceUnavailable(UNAVAILABLE_DETAIL, headers={"Retry-After": "5"})


def _is_data_error(exc: sa_exc.DBAPIError) -> bool:
    """SQLSTATE class 22 (data exception) from the server, or asyncpg's own ``DataError``
    for a parameter it cannot encode (SQLAlchemy wraps that one as a plain ``DBAPIError``)."""
    orig: object = exc.orig
    for candidate in (orig, getattr(orig, "__cause__", None)):
        if isinstance(candidate, asyncpg.exceptions.DataError):
            return True
        state = getattr(candidate, "sqlstate", None)
        if isinstance(state, str) and state.startswith("22"):
            return True
    return False


def problem_for_database_error(exc: BaseException) -> ProblemError | None:
    """The problem a database-layer error becomes; ``None``: not one we know (a 500)."""
    if isinstance(exc, sa_exc.IntegrityError):
        return integrity_problem(exc)
    if isinstance(exc, sa_exc.DataError) or (
        isinstance(exc, sa_exc.DBAPIError) and _is_data_error(exc)
    ):
        return ValidationFailed(
            "A value cannot be stored or compared: a number out of range, a date out of "
            "range or a control character such as NUL.",
            errors=[{"loc": ["request"], "msg": "value not storable", "type": "data_error"}],
        )
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated or isinstance(
            exc, sa_exc.InterfaceError | sa_exc.OperationalError
        ):
            return unavailable()
        return None
    if isinstance(
        exc,
        sa_exc.TimeoutError  # pool exhausted
        | OSError  # refused, reset, unreachable, timed out (TimeoutError is an OSError)
        | asyncpg.PostgresConnectionError
        | asyncpg.CannotConnectNowError
        | asyncpg.TooManyConnectionsError
        | asyncpg.InterfaceError,
    ):
        return unavailable()
    return None


async def _database_error_handler(request: Request, exc: Exception) -> JSONResponse:
    problem = problem_for_database_error(exc)
    if problem is None:
        logger.error(
            "unhandled database error on %s %s (%s)",
            request.method,
            request.url.path,
            type(exc).__name__,
            exc_info=exc,
        )
        return render(InternalError("An unexpected error occurred; it has been logged."), request)
    logger.warning(
        "%s %s -> %s %s (%s)",
        request.method,
        request.url.path,
        problem.status,
        problem.error_id,
        type(exc).__name__,
    )
    return render(problem, request)


def install_database_error_handlers(app: FastAPI) -> None:
    for klass in (
        sa_exc.DBAPIError,
        sa_exc.TimeoutError,
        OSError,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
    ):
        app.add_exception_handler(klass, _database_error_handler)
