"""Fixtures for the REST API tests: one app per module on its own fresh database.

The app is built with ``create_app(settings, live_runtime=...)`` and its lifespan is
entered for real (database opened and migrated, bootstrap admin created).  The live
call-center runtime is replaced by ``RecordingCallCenter`` so these tests do not depend
on the routing/telephony runtime; it records ``config_changed`` calls (which the API
must make) and reports AMI server status for ``/ready``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
import pytest_asyncio
from pydantic import SecretStr

from app.db import Database
from app.live.runtime import LiveOptions
from app.main import LiveRuntime, create_app
from app.settings import AuthSettings, Settings
from cti.types import ServerStatus

ADMIN_PASSWORD = "admin-secret-for-tests"
JWT_SECRET = "test-jwt-secret-0123456789-abcdefghijklmnop"


@dataclass
class RecordingCallCenter:
    """A ``LiveService`` double: records configuration changes, reports set servers."""

    changes: list[tuple[list[str], list[str]]] = field(default_factory=list)
    servers: list[ServerStatus] = field(default_factory=list)

    async def config_changed(self, *, agent_ids: list[str], queue_ids: list[str]) -> None:
        self.changes.append((list(agent_ids), list(queue_ids)))

    def server_status(self) -> list[dict[str, object]]:
        return [asdict(s) for s in self.servers]

    def calls_in_queue(self, queue_id: str) -> int:
        return 0  # no routing core: nothing waits


def recording_runtime(callcenter: RecordingCallCenter) -> LiveRuntime:
    @asynccontextmanager
    async def runtime(
        settings: Settings, db: Database, options: LiveOptions
    ) -> AsyncIterator[RecordingCallCenter]:
        yield callcenter

    return runtime


@dataclass
class Api:
    client: httpx.AsyncClient
    callcenter: RecordingCallCenter
    settings: Settings
    app: Any
    admin_token: str = ""

    def auth(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    @property
    def admin(self) -> dict[str, str]:
        return self.auth(self.admin_token)

    async def token(self, username: str, password: str) -> str:
        r = await self.client.post(
            "/api/v1/auth/token", json={"username": username, "password": password}
        )
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])


def make_settings(database: Any) -> Settings:
    return Settings(
        demo=False,  # production rules: the defaults would be refused
        database=database,
        auth=AuthSettings(
            jwt_secret=SecretStr(JWT_SECRET),
            admin_password=SecretStr(ADMIN_PASSWORD),
            token_ttl_s=600,
        ),
    )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def api(fresh_database_settings: Any) -> AsyncIterator[Api]:
    settings = make_settings(await fresh_database_settings())
    callcenter = RecordingCallCenter()
    app = create_app(settings, live_runtime=recording_runtime(callcenter))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        api = Api(client=client, callcenter=callcenter, settings=settings, app=app)
        api.admin_token = await api.token("admin", ADMIN_PASSWORD)
        yield api
