"""Shared database fixtures for every app test (names are stable: others depend on them).

A real PostgreSQL, never a mock.  By default one embedded PostgreSQL 16 (``pgserver``) is
started in a temporary directory for the whole test session and deleted afterwards.  Set
``SWITCHBOARD_TEST_DATABASE_URL`` (e.g. ``postgresql+asyncpg://u:p@host/postgres``, a role
with CREATEDB) to use an existing server instead; the databases created on it are dropped
at the end of the session.

Fixtures:
- ``embedded_pgdata`` (session) -> ``Path`` of the embedded server's data directory, or
  ``None`` when ``SWITCHBOARD_TEST_DATABASE_URL`` is set.
- ``pg_admin_url`` (session) -> ``sqlalchemy.URL`` of the server's maintenance database;
  used to CREATE/DROP databases.
- ``fresh_database_settings`` (session) -> ``async () -> DatabaseSettings``: a factory;
  each call creates a NEW, empty, migrated database (``CREATE DATABASE ... TEMPLATE`` of a
  database migrated once per session, ~0.1 s) and returns settings pointing at it.  Use it
  for module-scoped fixtures that need isolation (e.g. an app under test that commits)::

      @pytest_asyncio.fixture(scope="module", loop_scope="session")
      async def app_settings(fresh_database_settings):
          return Settings(database=await fresh_database_settings())

- ``database_settings`` (session) -> ``DatabaseSettings`` of one migrated database shared by
  the session (tests that commit into it must not assume it is empty).
- ``database`` (session) -> an opened ``app.db.Database`` on ``database_settings``.
- ``session`` (function) -> an ``AsyncSession`` bound to a connection inside an outer
  transaction that is rolled back after the test; ``session.commit()`` inside the test
  only releases a SAVEPOINT, so nothing the test writes survives it.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from app.db import Database, open_database, start_embedded
from app.settings import DatabaseSettings

TEST_URL_ENV = "SWITCHBOARD_TEST_DATABASE_URL"
_PREFIX = f"sbtest_{os.getpid()}"
_TEMPLATE = f"{_PREFIX}_template"

FreshDatabase = Callable[[], Awaitable[DatabaseSettings]]


@pytest.fixture(scope="session")
def embedded_pgdata() -> Iterator[Path | None]:
    """Data directory of the session's embedded PostgreSQL (None with an external server).

    ``app.db.start_embedded`` on this directory attaches to the running server, so a test
    can open the service's embedded database mode without starting a second PostgreSQL.
    """
    if os.environ.get(TEST_URL_ENV):
        yield None
        return
    from pgserver.postgres_server import get_server

    pgdata = Path(tempfile.mkdtemp(prefix="sbpg-")) / "data"
    start_embedded(pgdata, database="postgres")
    yield pgdata
    get_server(pgdata).cleanup()  # stops the server; cleanup_mode "stop" keeps files
    import shutil

    shutil.rmtree(pgdata.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_admin_url(embedded_pgdata: Path | None) -> URL:
    """URL of a maintenance database on the test server (embedded unless configured)."""
    if embedded_pgdata is None:
        return make_url(os.environ[TEST_URL_ENV])
    return start_embedded(embedded_pgdata, database="postgres")  # attaches: already running


async def _admin_execute(admin_url: URL, *statements: str) -> None:
    # CREATE/DROP DATABASE cannot run inside a transaction block.
    engine = create_async_engine(admin_url, poolclass=sa.NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            for statement in statements:
                await conn.execute(sa.text(statement))
    finally:
        await engine.dispose()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def fresh_database_settings(pg_admin_url: URL) -> AsyncIterator[FreshDatabase]:
    """Factory: ``await fresh_database_settings()`` -> settings of a new migrated database."""
    await _admin_execute(pg_admin_url, f'DROP DATABASE IF EXISTS "{_TEMPLATE}"')
    await _admin_execute(pg_admin_url, f'CREATE DATABASE "{_TEMPLATE}"')
    template_url = pg_admin_url.set(database=_TEMPLATE)
    template = await open_database(
        DatabaseSettings(url=SecretStr(template_url.render_as_string(hide_password=False)))
    )
    await template.close()  # a template must have no open connections when copied

    created: list[str] = []
    counter = itertools.count(1)

    async def make() -> DatabaseSettings:
        name = f"{_PREFIX}_{next(counter)}"
        await _admin_execute(pg_admin_url, f'CREATE DATABASE "{name}" TEMPLATE "{_TEMPLATE}"')
        created.append(name)
        url = pg_admin_url.set(database=name)
        return DatabaseSettings(
            url=SecretStr(url.render_as_string(hide_password=False)), pool_size=5
        )

    yield make

    await _admin_execute(
        pg_admin_url,
        *(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' for name in [*created, _TEMPLATE]),
    )


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def database_settings(fresh_database_settings: FreshDatabase) -> DatabaseSettings:
    return await fresh_database_settings()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def database(database_settings: DatabaseSettings) -> AsyncIterator[Database]:
    db = await open_database(database_settings, migrate=False)
    yield db
    await db.close()


@pytest_asyncio.fixture(loop_scope="session")
async def session(database: Database) -> AsyncIterator[AsyncSession]:
    async with database.engine.connect() as conn:
        outer = await conn.begin()
        db_session = AsyncSession(
            bind=conn, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )
        try:
            yield db_session
        finally:
            await db_session.close()
            await outer.rollback()
