"""Customer writes and look-ups.  Each write is one transaction: validated first, then
committed whole, or nothing is written (a taken number is a 409 ``phone-in-use``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app import crm
from app.auth import Principal, Role
from app.customers import interactions
from app.customers.schemas import (
    CallInfo,
    CallPop,
    CustomerIn,
    CustomerOut,
    CustomerPatch,
    CustomerSummary,
    PhoneIn,
    PhoneOut,
    ProductIn,
    ProductOut,
    ProductPatch,
)
from app.errors import Conflict, Forbidden, InvalidPhoneNumber, NotFound, ValidationFailed
from app.models import Call, Customer, CustomerPhone, LiveCall, Product


class PhoneInUse(Conflict):
    error_id = "phone-in-use"
    title = "Phone number already belongs to a customer"


def normalize(raw: str, loc: list[Any]) -> str:
    try:
        return crm.normalize_phone(raw)
    except crm.InvalidPhoneNumber as exc:
        raise InvalidPhoneNumber(
            f"{raw!r} is not a phone number.",
            errors=[{"loc": loc, "msg": str(exc), "type": "invalid_phone_number"}],
        ) from exc


async def _customer(session: AsyncSession, customer_id: int, *, lock: bool = False) -> Customer:
    stmt = sa.select(Customer).where(Customer.id == customer_id)
    if lock:
        stmt = stmt.with_for_update()
    found = (await session.scalars(stmt)).one_or_none()
    if found is None:
        raise NotFound(
            f"Customer {customer_id} does not exist.", resource="customer", id=customer_id
        )
    return found


async def get(session: AsyncSession, customer_id: int) -> CustomerOut:
    c = await _customer(session, customer_id)
    phones = (
        await session.scalars(
            sa.select(CustomerPhone)
            .where(CustomerPhone.customer_id == customer_id)
            .order_by(CustomerPhone.phone)
        )
    ).all()
    products = (
        await session.scalars(
            sa.select(Product).where(Product.customer_id == customer_id).order_by(Product.id)
        )
    ).all()
    return CustomerOut(
        id=c.id,
        name=c.name,
        vip=c.vip,
        member=c.member,
        created_at=c.created_at,
        phones=[PhoneOut(phone=p.phone, label=p.label) for p in phones],
        products=[ProductOut.model_validate(p, from_attributes=True) for p in products],
    )


async def _add_phones(
    session: AsyncSession, customer_id: int, phones: list[tuple[str, PhoneIn]]
) -> None:
    """Insert the numbers; ``phone-in-use`` if any belongs to a customer already."""
    for number, body in phones:
        stmt = (
            pg_insert(CustomerPhone)
            .values(phone=number, customer_id=customer_id, label=body.label)
            .on_conflict_do_nothing(index_elements=["phone"])
            .returning(CustomerPhone.phone)
        )
        if (await session.execute(stmt)).scalar_one_or_none() is None:
            owner = await session.scalar(
                sa.select(CustomerPhone.customer_id).where(CustomerPhone.phone == number)
            )
            if owner != customer_id:  # the same customer twice is harmless
                raise PhoneInUse(
                    f"{number} already belongs to customer {owner}.",
                    phone=number,
                    customer_id=owner,
                )
        if body.call_id is not None:
            await interactions.link_call(session, body.call_id, number)


async def _call_caller(session: AsyncSession, call_id: str) -> str | None:
    caller = await session.scalar(sa.select(LiveCall.caller).where(LiveCall.call_id == call_id))
    if caller is None:
        caller = await session.scalar(sa.select(Call.caller).where(Call.call_id == call_id))
    return caller


async def _checked_phones(
    session: AsyncSession, phones: list[PhoneIn], loc: str
) -> list[tuple[str, PhoneIn]]:
    checked: list[tuple[str, PhoneIn]] = []
    for i, body in enumerate(phones):
        number = normalize(body.phone, ["body", loc, i, "phone"] if loc else ["body", "phone"])
        # A call not stored yet (its live row is written within a fraction of a second) is
        # taken at its word: its interaction follows when the outcome writer stores it.
        caller = None if body.call_id is None else await _call_caller(session, body.call_id)
        if caller is not None and normalize(caller, ["body", "call_id"]) != number:
            raise ValidationFailed(
                "The number is not the caller's number of that call.",
                errors=[
                    {
                        "loc": ["body", "phone"],
                        "msg": "not the call's caller",
                        "type": "phone_mismatch",
                    }
                ],
            )
        checked.append((number, body))
    return checked


async def create(session: AsyncSession, body: CustomerIn) -> CustomerOut:
    phones = await _checked_phones(session, body.phones, "phones")
    if len({n for n, _ in phones}) != len(phones):
        raise ValidationFailed(
            "A number is listed twice.",
            errors=[{"loc": ["body", "phones"], "msg": "duplicate number", "type": "duplicate"}],
        )
    c = Customer(name=body.name, vip=body.vip, member=body.member)
    session.add(c)
    await session.flush()
    await _add_phones(session, c.id, phones)
    for p in body.products:
        session.add(Product(customer_id=c.id, **p.model_dump()))
    await session.commit()
    return await get(session, c.id)


async def update(session: AsyncSession, customer_id: int, body: CustomerPatch) -> CustomerOut:
    c = await _customer(session, customer_id, lock=True)
    for key, value in body.model_dump(exclude_unset=True).items():
        if value is None:
            raise ValidationFailed(
                f"{key} cannot be null.",
                errors=[{"loc": ["body", key], "msg": "may not be null", "type": "null"}],
            )
        setattr(c, key, value)
    await session.commit()
    return await get(session, customer_id)


async def add_phone(session: AsyncSession, customer_id: int, body: PhoneIn) -> CustomerOut:
    await _customer(session, customer_id, lock=True)
    await _add_phones(session, customer_id, await _checked_phones(session, [body], ""))
    await session.commit()
    return await get(session, customer_id)


async def remove_phone(session: AsyncSession, customer_id: int, phone: str) -> None:
    await _customer(session, customer_id, lock=True)
    number = normalize(phone, ["path", "phone"])
    deleted = await session.scalar(
        sa.delete(CustomerPhone)
        .where(CustomerPhone.customer_id == customer_id, CustomerPhone.phone == number)
        .returning(CustomerPhone.phone)
    )
    if deleted is None:
        raise NotFound(f"Customer {customer_id} has no number {number}.", resource="phone")
    await session.commit()


async def add_product(session: AsyncSession, customer_id: int, body: ProductIn) -> CustomerOut:
    await _customer(session, customer_id, lock=True)
    session.add(Product(customer_id=customer_id, **body.model_dump()))
    await session.commit()
    return await get(session, customer_id)


async def update_product(
    session: AsyncSession, customer_id: int, product_id: int, body: ProductPatch
) -> CustomerOut:
    p = await session.scalar(
        sa.select(Product)
        .where(Product.id == product_id, Product.customer_id == customer_id)
        .with_for_update()
    )
    if p is None:
        raise NotFound(f"Product {product_id} does not exist.", resource="product", id=product_id)
    changes = body.model_dump(exclude_unset=True)
    for key in ("model", "sku", "purchase_date"):
        if key in changes and changes[key] is None:
            raise ValidationFailed(
                f"{key} cannot be null.",
                errors=[{"loc": ["body", key], "msg": "may not be null", "type": "null"}],
            )
    merged = ProductIn.model_validate(
        {
            "model": p.model,
            "sku": p.sku,
            "serial": p.serial,
            "purchase_date": p.purchase_date,
            "protection_plan_end": p.protection_plan_end,
        }
        | changes
    )
    for key, value in merged.model_dump().items():
        setattr(p, key, value)
    await session.commit()
    return await get(session, customer_id)


async def remove_product(session: AsyncSession, customer_id: int, product_id: int) -> None:
    deleted = await session.scalar(
        sa.delete(Product)
        .where(Product.id == product_id, Product.customer_id == customer_id)
        .returning(Product.id)
    )
    if deleted is None:
        raise NotFound(f"Product {product_id} does not exist.", resource="product", id=product_id)
    await session.commit()


async def search(
    session: AsyncSession,
    *,
    phone: str | None,
    name: str | None,
    serial: str | None,
    customer_id: int | None,
    after: tuple[str, int] | None,
    limit: int,
) -> tuple[list[CustomerSummary], tuple[str, int] | None]:
    """Customers matching every given criterion, ordered by (lower(name), id): keyset
    pages on the ``ix_customers_name_prefix`` index."""
    key = sa.func.lower(Customer.name)
    stmt = sa.select(Customer, key.label("k"))
    if phone is not None:
        number = normalize(phone, ["query", "phone"])
        stmt = stmt.where(
            Customer.id.in_(
                sa.select(CustomerPhone.customer_id).where(CustomerPhone.phone == number)
            )
        )
    if name is not None:
        escaped = name.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(key.like(escaped + "%", escape="\\"))
    if serial is not None:
        stmt = stmt.where(
            Customer.id.in_(sa.select(Product.customer_id).where(Product.serial == serial))
        )
    if customer_id is not None:
        stmt = stmt.where(Customer.id == customer_id)
    if after is not None:
        stmt = stmt.where(sa.tuple_(key, Customer.id) > sa.tuple_(sa.literal(after[0]), after[1]))
    rows = (await session.execute(stmt.order_by(key, Customer.id).limit(limit + 1))).all()
    items = [
        CustomerSummary(id=c.id, name=c.name, vip=c.vip, member=c.member) for c, _ in rows[:limit]
    ]
    more = len(rows) > limit
    last = rows[limit - 1] if more else None
    return items, ((last[1], last[0].id) if last is not None else None)


async def call_pop(
    session: AsyncSession, principal: Principal, call_id: str, *, windows: crm.RepeatWindows
) -> CallPop:
    """The call in progress (``live_calls``) or stored (``calls``) and its screen pop; an
    agent sees only a call it is or was on."""
    live = await session.scalar(sa.select(LiveCall).where(LiveCall.call_id == call_id))
    if live is not None:
        info = CallInfo(
            call_id=live.call_id,
            caller=live.caller,
            caller_name=live.caller_name,
            queue_id=live.queue_id,
            agent_id=live.agent_id,
            answered_at=live.answered_at,
        )
    else:
        stored = await session.scalar(sa.select(Call).where(Call.call_id == call_id))
        if stored is None:
            raise NotFound(f"Call {call_id} does not exist.", resource="call")
        info = CallInfo(
            call_id=stored.call_id,
            caller=stored.caller,
            queue_id=None if stored.queue_id is None else str(stored.queue_id),
            agent_id=None if stored.answered_by is None else str(stored.answered_by),
            answered_at=stored.answered_at,
            ended_at=stored.ended_at,
        )
    if not principal.has_role(Role.SUPERVISOR) and (
        principal.agent_id is None or principal.agent_id != info.agent_id
    ):
        raise Forbidden("This call is not yours.")
    now = datetime.now(UTC)
    try:
        pop = await crm.lookup_caller(
            session, info.caller, today=now.astimezone().date(), now=now, windows=windows
        )
    except crm.InvalidPhoneNumber:
        pop = None  # anonymous / withheld number: nothing to look up
    return CallPop(call=info, pop=pop)
