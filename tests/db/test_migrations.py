"""Migrations are static, reversible, and agree with the models."""

from __future__ import annotations

import os
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from pydantic import SecretStr
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine

import app.agentlog.models
import app.ha.models
import app.reports.models  # noqa: F401 - its tables on Base.metadata
from app.db import DatabaseError, alembic_config, open_database, upgrade
from app.models import Base
from app.partitions import include_name
from app.settings import DatabaseSettings
from tests.conftest import _admin_execute


def _downgrade(connection: sa.Connection) -> None:
    from alembic import command

    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.downgrade(cfg, "base")


def _upgrade_to(connection: sa.Connection, revision: str) -> None:
    from alembic import command

    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


def _tables(connection: sa.Connection) -> set[str]:
    return set(sa.inspect(connection).get_table_names())


def _diff(connection: sa.Connection) -> list[Any]:
    ctx = MigrationContext.configure(
        connection, opts={"compare_type": True, "include_name": include_name}
    )
    return list(compare_metadata(ctx, Base.metadata))


async def test_upgrade_downgrade_upgrade_on_a_fresh_database(pg_admin_url: URL) -> None:
    name = f"sbtest_{os.getpid()}_migrations"
    await _admin_execute(
        pg_admin_url, f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"'
    )
    engine = create_async_engine(pg_admin_url.set(database=name), poolclass=sa.NullPool)
    try:
        await upgrade(engine)
        async with engine.connect() as conn:
            tables = await conn.run_sync(_tables)
        assert set(Base.metadata.tables) <= tables
        assert "alembic_version" in tables

        async with engine.begin() as conn:
            await conn.run_sync(_downgrade)
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) == {"alembic_version"}

        await upgrade(engine)
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await engine.dispose()
        await _admin_execute(pg_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_devices_migration_logs_out_sessions_on_refused_dial_strings(
    pg_admin_url: URL,
) -> None:
    """A session saved on a free-text device from before 0004 is not restored on it."""
    name = f"sbtest_{os.getpid()}_migration_0004"
    await _admin_execute(
        pg_admin_url, f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"'
    )
    engine = create_async_engine(pg_admin_url.set(database=name), poolclass=sa.NullPool)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade_to, "0003")
            await conn.execute(
                sa.text(
                    "INSERT INTO agent_sessions (agent_id, device, state) VALUES"
                    " ('1001', 'PJSIP/1001', 'ready'),"
                    " ('1002', 'PJSIP/1002,1,U(evil^x)', 'ready'),"
                    " ('1003', 'PJSIP/+8613800138000@trunk', 'paused'),"
                    " ('1004', 'Local/1004@agents', 'paused')"
                )
            )
        await upgrade(engine)
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.text("SELECT agent_id, state, device FROM agent_sessions ORDER BY 1")
                )
            ).all()
        assert [tuple(r) for r in rows] == [
            ("1001", "ready", "PJSIP/1001"),
            ("1002", "logged_out", None),
            ("1003", "logged_out", None),
            ("1004", "paused", "Local/1004@agents"),
        ]
    finally:
        await engine.dispose()
        await _admin_execute(pg_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_models_and_migrated_schema_agree(database: Any) -> None:
    async with database.engine.connect() as conn:
        diff = await conn.run_sync(_diff)
    assert diff == [], diff


async def test_identity_of_agents_starts_at_1001(fresh_database_settings: Any) -> None:
    settings = await fresh_database_settings()
    async with open_database(settings, migrate=False) as db, db.engine.begin() as conn:
        agent_id = await conn.scalar(
            sa.text("INSERT INTO agents (name, device) VALUES ('a', 'PJSIP/x') RETURNING id")
        )
    assert agent_id == 1001


async def test_unreachable_database_is_a_clear_error_without_the_password() -> None:
    settings = DatabaseSettings(
        url=SecretStr("postgresql+asyncpg://sb:hunter2-secret@127.0.0.1:1/none")
    )
    try:
        await open_database(settings)
    except DatabaseError as exc:
        assert "hunter2-secret" not in str(exc)
        assert "127.0.0.1" in str(exc)
    else:
        raise AssertionError("expected DatabaseError")
