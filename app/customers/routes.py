"""Customer routes (``/customers``).  Every route needs a signed-in user; agents may look
up, create customers and link a caller's number (with its call) to a customer;
supervisors and above edit customers, remove numbers and manage products."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from app.api.pagination import decode_cursor, encode_cursor
from app.auth import CurrentUser, Principal, Role, require_role
from app.crm import RepeatWindows
from app.customers import service
from app.customers.schemas import (
    CallPop,
    CustomerIn,
    CustomerOut,
    CustomerPage,
    CustomerPatch,
    PhoneIn,
    ProductIn,
    ProductPatch,
)
from app.deps import SessionDep, SettingsDep, reject_unknown_query
from app.errors import ValidationFailed

router = APIRouter(prefix="/customers", tags=["customers"])

SupervisorUser = Annotated[Principal, require_role(Role.SUPERVISOR)]
CustomerId = Annotated[int, Path(ge=1, le=2**63 - 1)]
ProductId = Annotated[int, Path(ge=1, le=2**63 - 1)]
_PROBLEMS: dict[int | str, dict[str, str]] = {
    404: {"description": "Unknown customer, product, number or call (problem details)"},
    409: {"description": "phone-in-use: the number belongs to another customer"},
    422: {"description": "validation-failed or invalid-phone-number (problem details)"},
}


def _cursor(cursor: str | None) -> tuple[str, int] | None:
    if cursor is None:
        return None
    key, last_id = decode_cursor(cursor, 2)
    if not isinstance(key, str) or not isinstance(last_id, int) or isinstance(last_id, bool):
        raise ValidationFailed(
            "The cursor is not one this API issued.",
            errors=[
                {"loc": ["query", "cursor"], "msg": "invalid cursor", "type": "invalid_cursor"}
            ],
        )
    return key, last_id


@router.get(
    "",
    summary="Look up customers by phone, name prefix, serial number or id (paginated)",
    responses=_PROBLEMS,
    dependencies=[Depends(reject_unknown_query)],
)
async def search(
    session: SessionDep,
    _: CurrentUser,
    phone: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    name: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    serial: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> CustomerPage:
    if phone is None and name is None and serial is None and id is None:
        raise ValidationFailed(
            "Give at least one of phone, name, serial, id.",
            errors=[{"loc": ["query"], "msg": "no criterion", "type": "missing"}],
        )
    items, last = await service.search(
        session,
        phone=phone,
        name=name,
        serial=serial,
        customer_id=id,
        after=_cursor(cursor),
        limit=limit,
    )
    return CustomerPage(items=items, next_cursor=encode_cursor(*last) if last else None)


@router.get(
    "/pop",
    summary="A call in progress (or just ended) with its screen pop (the desktop after a reload)",
    responses=_PROBLEMS,
    dependencies=[Depends(reject_unknown_query)],
)
async def call_pop(
    session: SessionDep,
    settings: SettingsDep,
    principal: CurrentUser,
    call_id: Annotated[str, Query(min_length=1, max_length=200)],
) -> CallPop:
    return await service.call_pop(
        session,
        principal,
        call_id,
        windows=RepeatWindows(settings.crm.repeat_short_h, settings.crm.repeat_long_h),
    )


@router.post("", status_code=201, summary="Create a customer", responses=_PROBLEMS)
async def create(session: SessionDep, _: CurrentUser, body: CustomerIn) -> CustomerOut:
    return await service.create(session, body)


@router.get("/{customer_id}", summary="A customer with numbers and products", responses=_PROBLEMS)
async def get(session: SessionDep, _: CurrentUser, customer_id: CustomerId) -> CustomerOut:
    return await service.get(session, customer_id)


@router.patch("/{customer_id}", summary="Edit a customer", responses=_PROBLEMS)
async def update(
    session: SessionDep, _: SupervisorUser, customer_id: CustomerId, body: CustomerPatch
) -> CustomerOut:
    return await service.update(session, customer_id, body)


@router.post(
    "/{customer_id}/phones",
    status_code=201,
    summary="Add a contact number (with call_id: link that call's caller; its contact follows)",
    responses=_PROBLEMS,
)
async def add_phone(
    session: SessionDep, _: CurrentUser, customer_id: CustomerId, body: PhoneIn
) -> CustomerOut:
    return await service.add_phone(session, customer_id, body)


@router.delete(
    "/{customer_id}/phones/{phone}",
    status_code=204,
    summary="Remove a contact number",
    responses=_PROBLEMS,
)
async def remove_phone(
    session: SessionDep,
    _: SupervisorUser,
    customer_id: CustomerId,
    phone: Annotated[str, Path(min_length=1, max_length=64)],
) -> Response:
    await service.remove_phone(session, customer_id, phone)
    return Response(status_code=204)


@router.post(
    "/{customer_id}/products", status_code=201, summary="Add a product", responses=_PROBLEMS
)
async def add_product(
    session: SessionDep, _: SupervisorUser, customer_id: CustomerId, body: ProductIn
) -> CustomerOut:
    return await service.add_product(session, customer_id, body)


@router.patch("/{customer_id}/products/{product_id}", summary="Edit a product", responses=_PROBLEMS)
async def update_product(
    session: SessionDep,
    _: SupervisorUser,
    customer_id: CustomerId,
    product_id: ProductId,
    body: ProductPatch,
) -> CustomerOut:
    return await service.update_product(session, customer_id, product_id, body)


@router.delete(
    "/{customer_id}/products/{product_id}",
    status_code=204,
    summary="Remove a product",
    responses=_PROBLEMS,
)
async def remove_product(
    session: SessionDep, _: SupervisorUser, customer_id: CustomerId, product_id: ProductId
) -> Response:
    await service.remove_product(session, customer_id, product_id)
    return Response(status_code=204)
