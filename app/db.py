"""Database lifecycle: connect (or start an embedded PostgreSQL), migrate, close.

Invariants:
- No engine exists at import time; ``open_database(settings)`` builds one and
  ``Database.close()`` disposes it.  ``open_database`` is awaitable *and* an async context
  manager (``async with open_database(s) as db``).
- With ``settings.url`` unset, an embedded PostgreSQL 16 (``pgserver``) runs in
  ``settings.embedded_dir`` and we connect over its unix socket to the ``switchboard``
  database (created if missing).  pgserver is blocking, so it runs in a worker thread.
  The embedded server is shared per data directory inside the process and stopped by
  pgserver at interpreter exit (not by ``close()``), so several ``Database`` objects and
  test modules can use one server.  Only a server this process started is stopped: one
  found running (another process's, or left from before) is attached to and left alone.  Whether the embedded server may be used at all is
  the settings' decision (``Settings.check_database``: demo mode or asked for), not
  this module's; pgserver is the ``demo`` extra, absent from the runtime image.
- Migrations are Alembic's (``migrations/``), applied to head by the same ``env.py`` the
  ``alembic`` command uses, when ``migrate=True``.
- The URL may carry a password: it lives in a ``SecretStr`` and is only ever logged
  through ``safe_url()`` (password masked).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Generator
from pathlib import Path
from types import TracebackType
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.settings import DatabaseSettings

log = logging.getLogger(__name__)

EMBEDDED_DATABASE = "switchboard"
# What a read may raise when the database cannot answer (down, refused, pool exhausted,
# connection lost) or refuses the statement: for callers that degrade instead of failing.
DATABASE_UNREACHABLE: tuple[type[Exception], ...] = (
    sa.exc.SQLAlchemyError,
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")
REPO_ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS_DIR = REPO_ROOT / "migrations"


class DatabaseError(Exception):
    """The database could not be started, reached or migrated."""


def safe_url(url: URL | str) -> str:
    """The URL with any password masked, for logs and error messages."""
    return make_url(url).render_as_string(hide_password=True)


def start_embedded(embedded_dir: Path, database: str = EMBEDDED_DATABASE) -> URL:
    """Start (or attach to) the embedded PostgreSQL in ``embedded_dir``; blocking.

    Creates ``database`` if missing and returns an asyncpg URL over the unix socket.
    """
    try:  # lazily: only the embedded mode needs it, and the runtime image lacks it
        from pgserver.postgres_server import get_server
    except ImportError as exc:
        raise DatabaseError(
            "the embedded PostgreSQL needs pgserver (the 'demo' extra: "
            "pip install -r requirements-demo.lock); or set SWITCHBOARD_DATABASE__URL"
        ) from exc

    embedded_dir = embedded_dir.expanduser().resolve()
    embedded_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        from pgserver.utils import PostmasterInfo

        found = PostmasterInfo.read_from_pgdata(embedded_dir) if embedded_dir.exists() else None
        attached = found is not None and found.is_running()
        # pgserver stops the server when its last registered process exits; a server we
        # merely attached to is not ours to stop.
        server = get_server(embedded_dir, cleanup_mode=None if attached else "stop")
    except Exception as exc:  # pgserver raises bare subprocess / assertion errors
        raise DatabaseError(
            f"could not start embedded PostgreSQL in {embedded_dir}: {exc}"
        ) from exc
    if not _IDENTIFIER.fullmatch(database):
        raise DatabaseError(f"invalid database name {database!r}: use [a-z_][a-z0-9_]*")
    socket_dir = server.get_postmaster_info().socket_dir
    # Safe to interpolate: the name matched _IDENTIFIER above.
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")  # noqa: S608
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
        log.info("created database %s in embedded PostgreSQL at %s", database, embedded_dir)
    return URL.create(
        "postgresql+asyncpg",
        username="postgres",
        database=database,
        query={"host": str(socket_dir)},
    )


def _run_upgrade(connection: sa.Connection, revision: str) -> None:
    from alembic import command

    cfg = alembic_config()
    # env.py sees this connection and migrates through it instead of opening its own.
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


def alembic_config() -> Any:
    """The Alembic config of this repository (``alembic.ini`` + ``migrations/``)."""
    from alembic.config import Config

    cfg = Config(str(REPO_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply Alembic migrations up to ``revision`` through ``engine``."""
    async with engine.begin() as conn:
        await conn.run_sync(_run_upgrade, revision)


class Database:
    """An engine, its session factory, and how it was reached."""

    def __init__(self, engine: AsyncEngine, *, embedded_dir: Path | None = None) -> None:
        self.engine: AsyncEngine = engine
        self.sessionmaker: async_sessionmaker[AsyncSession] = async_sessionmaker(
            engine, expire_on_commit=False
        )
        self.embedded_dir = embedded_dir

    @property
    def url(self) -> str:
        """The connection URL with the password masked (safe to log)."""
        return safe_url(self.engine.url)

    async def close(self) -> None:
        await self.engine.dispose()

    def __repr__(self) -> str:
        return f"Database({self.url})"


class _Opening:
    """``await open_database(...)`` or ``async with open_database(...) as db``."""

    def __init__(self, settings: DatabaseSettings, migrate: bool) -> None:
        self._settings = settings
        self._migrate = migrate
        self._db: Database | None = None

    def __await__(self) -> Generator[Any, None, Database]:
        return _open(self._settings, migrate=self._migrate).__await__()

    async def __aenter__(self) -> Database:
        self._db = await _open(self._settings, migrate=self._migrate)
        return self._db

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._db is not None:
            await self._db.close()


def open_database(settings: DatabaseSettings, *, migrate: bool = True) -> _Opening:
    """Connect (starting the embedded server when no URL is set) and migrate to head.

    Use as ``db = await open_database(s)`` (then ``await db.close()``) or as
    ``async with open_database(s) as db``.  Raises ``DatabaseError`` when the server
    cannot be reached or migrated; nothing is left open in that case.
    """
    return _Opening(settings, migrate)


async def _open(settings: DatabaseSettings, *, migrate: bool) -> Database:
    embedded_dir: Path | None = None
    if settings.url is None:
        embedded_dir = settings.embedded_dir
        url = await asyncio.to_thread(start_embedded, embedded_dir)
    else:
        try:
            url = make_url(settings.url.get_secret_value())
        except sa.exc.ArgumentError:
            raise DatabaseError("SWITCHBOARD_DATABASE__URL is not a valid database URL") from None
    engine = create_async_engine(
        url,
        pool_size=settings.pool_size,
        max_overflow=settings.pool_size,
        pool_pre_ping=True,  # a restarted server must not hand us dead connections
        echo=settings.echo,
        connect_args={"timeout": 10},
    )
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
        if migrate:
            await upgrade(engine)
    except Exception as exc:
        await engine.dispose()
        raise DatabaseError(f"could not open database {safe_url(url)}: {exc}") from exc
    log.info("database ready at %s", safe_url(url))
    return Database(engine, embedded_dir=embedded_dir)


async def check(db: Database) -> bool:
    """Readiness probe: can we run a query within 2 s?"""
    try:
        async with asyncio.timeout(2.0), db.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 — any failure means "not ready"; said once in the log
        log.warning("database check failed: %s", type(exc).__name__)
        return False
    return True
