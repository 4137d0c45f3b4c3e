"""Alembic environment (async).

Two ways in:
- Programmatic (``app.db.upgrade``): the caller passes a live connection in
  ``config.attributes["connection"]``; we migrate through it and leave logging alone.
- The ``alembic`` command: the URL comes from the application settings
  (``SWITCHBOARD_DATABASE__URL``; unset → the embedded server in
  ``SWITCHBOARD_DATABASE__EMBEDDED_DIR``), never from ``alembic.ini``.
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

import sqlalchemy as sa
from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine

import app.agentlog.models
import app.ha.models
import app.reports.models  # noqa: F401 - its tables on Base.metadata
from app.models import Base
from app.partitions import include_name

config = context.config
target_metadata = Base.metadata


def _configure_and_run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        include_name=include_name,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _settings_url() -> sa.URL:
    from app.db import start_embedded
    from app.settings import Settings

    settings = Settings().database
    if settings.url is not None:
        return sa.make_url(settings.url.get_secret_value())
    return start_embedded(settings.embedded_dir)


async def _run_online() -> None:
    engine = create_async_engine(_settings_url(), poolclass=sa.NullPool)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_configure_and_run)
            await conn.commit()
    finally:
        await engine.dispose()


def _run_offline() -> None:
    context.configure(
        url=str(_settings_url()),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _configure_and_run(connection)
elif context.is_offline_mode():
    _run_offline()
else:
    if config.config_file_name is not None:
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    asyncio.run(_run_online())
