"""Seeding: deterministic patterns, consistency, refusal without --reset."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from app.crm import lookup_caller, normalize_phone
from app.db import open_database
from app.seed import (
    DEMO_PASSWORD,
    DEMO_PASSWORD_HASH,
    SeedError,
    customer_phone,
    has_second_phone,
    is_vip,
    queue_dnis,
    seed,
    unknown_phone,
)

TODAY = date(2026, 6, 15)


def test_documented_patterns() -> None:
    assert customer_phone(1) == "13100000001"
    assert customer_phone(1_000_000, 1) == "18001000000"
    assert normalize_phone(customer_phone(42)) == customer_phone(42)
    assert unknown_phone(5).startswith("199") and len(unknown_phone(5)) == 11
    assert queue_dnis(1) == "4008001001"
    assert PasswordHasher().verify(DEMO_PASSWORD_HASH, DEMO_PASSWORD)
    with pytest.raises(ValueError):
        customer_phone(0)


async def test_seed_small_dataset_is_consistent_and_poppable(fresh_database_settings: Any) -> None:
    settings = await fresh_database_settings()
    async with open_database(settings, migrate=False) as db:
        report = await seed(db, customers=3000, agents=30, queues=12, reset=False, today=TODAY)
        assert report.customers == 3000 and report.agents == 30 and report.queues == 12
        assert report.phones == 3000 + 1000
        assert report.users == 30 + 7

        async with db.engine.connect() as conn:

            async def one(q: str) -> Any:
                return (await conn.execute(sa.text(q))).scalar_one()

            assert await one("SELECT min(id) FROM agents") == 1001
            assert await one("SELECT count(*) FROM customers WHERE vip") == sum(
                is_vip(i) for i in range(1, 3001)
            )
            # Every queue has a DNIS and at least one member who meets its skills.
            assert await one("SELECT count(DISTINCT queue_id) FROM queue_dnis") == 12
            assert await one("SELECT count(DISTINCT queue_id) FROM agent_queues") == 12
            assert (
                await one(
                    "SELECT count(*) FROM agent_queues aq JOIN queue_skills qs USING (queue_id)"
                    " LEFT JOIN agent_skills s ON s.agent_id = aq.agent_id AND s.skill_id = qs.skill_id"
                    " WHERE s.level IS NULL OR s.level < qs.min_level"
                )
                == 0
            )
            assert (
                await one(
                    "SELECT count(*) FROM (SELECT agent_id FROM agent_skills GROUP BY agent_id"
                    " HAVING count(*) NOT BETWEEN 4 AND 8) x"
                )
                == 0
            )
            # Indexes dropped for the load are all back.
            assert (
                await one(
                    "SELECT count(*) FROM pg_indexes WHERE indexname IN ('pk_customer_phones',"
                    " 'ix_interactions_customer_id_at', 'ix_cases_customer_id_open')"
                )
                == 3
            )
            # Some recent purchases, some running plans, some expired ones.
            assert (
                await one(
                    "SELECT count(*) FROM products WHERE purchase_date > DATE '2026-06-15' - 90"
                )
                > 0
            )
            assert (
                await one(
                    "SELECT count(*) FROM products WHERE protection_plan_end >= DATE '2026-06-15'"
                )
                > 0
            )
            assert (
                await one(
                    "SELECT count(*) FROM products WHERE protection_plan_end < DATE '2026-06-15'"
                )
                > 0
            )
            assert await one("SELECT count(*) FROM cases WHERE status = 'open'") > 0

        async with db.sessionmaker() as session:
            for cid in (1, 3, 2999):
                pop = await lookup_caller(session, customer_phone(cid), today=TODAY)
                assert pop is not None and pop.customer.id == cid
                if has_second_phone(cid):
                    second = await lookup_caller(session, customer_phone(cid, 1), today=TODAY)
                    assert second is not None and second.customer.id == cid
            assert await lookup_caller(session, unknown_phone(1), today=TODAY) is None

        with pytest.raises(SeedError, match="--reset"):
            await seed(db, customers=10, agents=2, queues=2, reset=False, today=TODAY)
        again = await seed(db, customers=10, agents=2, queues=2, reset=True, today=TODAY)
        assert again.customers == 10
        async with db.engine.connect() as conn:
            assert (await conn.execute(sa.text("SELECT count(*) FROM customers"))).scalar() == 10
