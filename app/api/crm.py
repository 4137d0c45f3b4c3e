"""CRM lookup route: the screen pop for a phone number (``/crm``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from app import crm
from app.auth import CurrentUser
from app.deps import SessionDep
from app.errors import InvalidPhoneNumber, NotFound

router = APIRouter(prefix="/crm", tags=["crm"])


@router.get(
    "/lookup",
    summary="Look up a caller by phone number (the screen pop)",
    responses={
        404: {"description": "No customer has this number (problem details)"},
        422: {"description": "Malformed phone number: invalid-phone-number (problem details)"},
    },
)
async def lookup(
    session: SessionDep,
    _: CurrentUser,  # any agent or supervisor: agents see pops of the calls they take
    phone: Annotated[str, Query(min_length=1, max_length=64, description="Caller number")],
) -> crm.ScreenPop:
    # Entitlement is a matter of calendar days where the service runs.
    today = datetime.now(UTC).astimezone().date()
    try:
        pop = await crm.lookup_caller(session, phone, today=today)
    except crm.InvalidPhoneNumber as exc:
        raise InvalidPhoneNumber(
            f"{phone!r} is not a phone number.",
            errors=[{"loc": ["query", "phone"], "msg": str(exc), "type": "invalid_phone_number"}],
        ) from exc
    if pop is None:
        raise NotFound("No customer has this phone number.", resource="customer")
    return pop
