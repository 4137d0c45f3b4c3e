"""CRM screen pop: phone normalization, entitlement rules, and the lookup query."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from app.crm import (
    EntitlementReason,
    InvalidPhoneNumber,
    lookup_caller,
    lookup_caller_asyncpg,
    normalize_phone,
    product_entitlement,
)
from app.models import (
    Case,
    CaseKind,
    CaseSeverity,
    CaseStatus,
    Customer,
    CustomerPhone,
    Interaction,
    Product,
)

TODAY = date(2026, 6, 15)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13800138000", "13800138000"),
        ("+86 138-0013-8000", "13800138000"),
        ("0086 138 0013 8000", "13800138000"),
        ("8613800138000", "13800138000"),
        ("(010) 6552-9988", "01065529988"),
        ("+1 415 555 0100", "0014155550100"),
        ("10086", "10086"),
    ],
)
def test_normalize_phone(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("anonymous", "only digits"),
        ("138-0013-800x", "only digits"),
        ("12", "3 to 20 digits"),
        ("1" * 21, "3 to 20 digits"),
        ("12800138000", "13-19"),
        ("+", "only digits"),
        ("\uff11\uff13\uff18" + "0" * 8, "only digits"),  # full-width digits
    ],
)
def test_malformed_phone_is_a_clear_error(raw: str, message: str) -> None:
    with pytest.raises(InvalidPhoneNumber, match=message):
        normalize_phone(raw)


def test_entitlement_within_90_days_inclusive() -> None:
    bought = TODAY - timedelta(days=90)
    e = product_entitlement(bought, None, today=TODAY)
    assert e.entitled and e.reason is EntitlementReason.NEW_PURCHASE and e.until == TODAY
    assert not product_entitlement(bought - timedelta(days=1), None, today=TODAY).entitled


def test_entitlement_protection_plan_running_and_expired() -> None:
    bought = date(2024, 1, 10)
    running = product_entitlement(bought, date(2027, 1, 10), today=TODAY)
    assert running.entitled and running.reason is EntitlementReason.PROTECTION_PLAN
    assert running.until == date(2027, 1, 10)
    expired = product_entitlement(date(2022, 1, 10), date(2025, 1, 10), today=TODAY)
    assert not expired.entitled and expired.reason is None and expired.until is None


def test_entitlement_reports_the_longer_running_reason() -> None:
    e = product_entitlement(TODAY - timedelta(days=1), TODAY + timedelta(days=1000), today=TODAY)
    assert e.reason is EntitlementReason.PROTECTION_PLAN
    short_plan = product_entitlement(
        TODAY - timedelta(days=1), TODAY + timedelta(days=5), today=TODAY
    )
    assert short_plan.reason is EntitlementReason.NEW_PURCHASE


async def _customer(session: AsyncSession, phone: str, **kw: object) -> Customer:
    c = Customer(
        name=kw.pop("name", "王芳"), vip=kw.pop("vip", False), member=kw.pop("member", True)
    )
    session.add(c)
    await session.flush()
    session.add(CustomerPhone(phone=phone, customer_id=c.id, label="mobile"))
    return c


async def test_lookup_builds_the_full_screen_pop_in_one_query(session: AsyncSession) -> None:
    c = await _customer(session, "13912345678", vip=True)
    session.add(CustomerPhone(phone="01065529988", customer_id=c.id, label="home"))
    session.add_all(
        [
            Product(
                customer_id=c.id,
                model="X1",
                sku="SKU-1",
                serial="S1",
                purchase_date=TODAY - timedelta(days=10),
            ),
            Product(
                customer_id=c.id,
                model="X2",
                sku="SKU-2",
                serial=None,
                purchase_date=date(2024, 3, 1),
                protection_plan_end=date(2027, 3, 1),
            ),
            Product(
                customer_id=c.id,
                model="X0",
                sku="SKU-0",
                serial="S0",
                purchase_date=date(2020, 3, 1),
                protection_plan_end=date(2023, 3, 1),
            ),
        ]
    )
    base = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
    session.add_all(
        Interaction(
            customer_id=c.id,
            at=base + timedelta(hours=h),
            channel="phone",
            agent_id=1001,
            summary=f"call {h}",
        )
        for h in range(8)
    )
    session.add_all(
        [
            Case(
                customer_id=c.id,
                opened_at=base,
                status=CaseStatus.OPEN,
                kind=CaseKind.REPAIR,
                severity=CaseSeverity.URGENT,
                subject="screen",
                due_at=base + timedelta(days=3),
            ),
            Case(
                customer_id=c.id,
                opened_at=base,
                status=CaseStatus.CLOSED,
                kind=CaseKind.COMPLAINT,
                subject="old",
            ),
        ]
    )
    await session.flush()

    statements: list[str] = []

    def count(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    sync_engine = session.bind.engine.sync_engine  # type: ignore[union-attr]
    event.listen(sync_engine, "before_cursor_execute", count)
    try:
        pop = await lookup_caller(session, "+86 139-1234-5678", today=TODAY)
        home = await lookup_caller(session, "010 6552 9988", today=TODAY, interactions=2)
    finally:
        event.remove(sync_engine, "before_cursor_execute", count)
    assert len(statements) == 2  # one query per lookup

    assert pop is not None and home is not None
    assert pop.customer.id == c.id and pop.customer.vip and pop.customer.member
    assert pop.phone == "13912345678"
    assert [p.model for p in pop.products] == ["X1", "X2", "X0"]  # newest purchase first
    by_model = {p.model: p.entitlement for p in pop.products}
    assert by_model["X1"].reason is EntitlementReason.NEW_PURCHASE
    assert by_model["X1"].until == TODAY - timedelta(days=10) + timedelta(days=90)
    assert by_model["X2"].reason is EntitlementReason.PROTECTION_PLAN
    assert not by_model["X0"].entitled
    assert pop.entitled and pop.entitlement_reason is EntitlementReason.PROTECTION_PLAN
    assert pop.entitled_until == date(2027, 3, 1)
    assert [i.summary for i in pop.interactions] == [f"call {h}" for h in (7, 6, 5, 4, 3)]
    assert [i.summary for i in home.interactions] == ["call 7", "call 6"]
    assert [k.subject for k in pop.open_cases] == ["screen"]
    assert pop.open_cases[0].overdue  # due 2026-06-04, today 2026-06-15
    # JSON-serialisable for the websocket.
    assert json.loads(pop.model_dump_json())["customer"]["name"] == "王芳"

    # The call center's path (plain asyncpg, same statement) builds the same pop.
    conn = await session.connection()
    apg = (await conn.get_raw_connection()).driver_connection
    assert await lookup_caller_asyncpg(apg, "+86 139-1234-5678", today=TODAY) == pop
    fast_home = await lookup_caller_asyncpg(apg, "010 6552 9988", today=TODAY, interactions=2)
    assert fast_home == home
    assert await lookup_caller_asyncpg(apg, "13000000009", today=TODAY) is None


async def test_lookup_of_customer_without_history(session: AsyncSession) -> None:
    await _customer(session, "15000000001", member=False)
    await session.flush()
    pop = await lookup_caller(session, "15000000001", today=TODAY)
    assert pop is not None
    assert pop.products == [] and pop.interactions == [] and pop.open_cases == []
    assert not pop.entitled and pop.entitlement_reason is None


async def test_unknown_number_is_none_and_malformed_raises(session: AsyncSession) -> None:
    assert await lookup_caller(session, "19999999999", today=TODAY) is None
    with pytest.raises(InvalidPhoneNumber):
        await lookup_caller(session, "not a number", today=TODAY)


async def test_open_case_due_this_morning_is_overdue_this_afternoon(
    session: AsyncSession,
) -> None:
    """Overdue compares instants: due at 10:00, looked up at 17:00 the same day."""
    c = await _customer(session, "13912340001")
    due = datetime(2026, 6, 15, 10, tzinfo=UTC)
    session.add(
        Case(
            customer_id=c.id,
            opened_at=due - timedelta(hours=2),
            status=CaseStatus.OPEN,
            kind=CaseKind.COMPLAINT,
            subject="noise",
            due_at=due,
        )
    )
    await session.flush()
    afternoon = due.replace(hour=17)
    pop = await lookup_caller(session, "13912340001", today=TODAY, now=afternoon)
    assert pop is not None and pop.open_cases[0].overdue
    assert pop.open_cases[0].stage == "registered"
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    apg = raw.driver_connection
    early = await lookup_caller_asyncpg(apg, "13912340001", today=TODAY, now=due.replace(hour=9))
    assert early is not None and not early.open_cases[0].overdue
