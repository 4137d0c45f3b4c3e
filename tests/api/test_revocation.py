"""Token revocation: a token stops working as soon as its user is disabled, demoted,
deleted, changes password or logs out -- not when it expires."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, WebSocket
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from app.auth import (
    Principal,
    Role,
    TokenVersions,
    VersionLoader,
    authenticate_websocket,
    create_access_token,
    websocket_subprotocol,
)
from app.errors import install_error_handlers
from app.live.protocol import Close
from app.settings import DatabaseSettings
from tests.api.conftest import Api, make_settings
from tests.api.test_auth_api import make_agent, make_supervisor
from tests.api.test_config_api import assert_problem


async def user_id_of(api: Api, username: str) -> int:
    r = await api.client.get("/api/v1/users", params={"limit": 200}, headers=api.admin)
    assert r.status_code == 200, r.text
    (found,) = [u["id"] for u in r.json()["items"] if u["username"] == username]
    return int(found)


async def assert_works(api: Api, token: str) -> None:
    r = await api.client.get("/api/v1/auth/me", headers=api.auth(token))
    assert r.status_code == 200, r.text


async def assert_revoked(api: Api, token: str) -> dict[str, Any]:
    r = await api.client.get("/api/v1/auth/me", headers=api.auth(token))
    body = assert_problem(r, 401, "unauthorized")
    assert r.headers["www-authenticate"] == "Bearer"
    return body


async def test_disabled_user_token_is_refused(api: Api) -> None:
    _, token = await make_agent(api, "rv-disabled")
    uid = await user_id_of(api, "rv-disabled")
    await assert_works(api, token)
    r = await api.client.patch(f"/api/v1/users/{uid}", json={"active": False}, headers=api.admin)
    assert r.status_code == 200, r.text
    assert "revoked" in (await assert_revoked(api, token))["detail"]
    # Enabled again: the old token stays revoked, a new login works.
    r = await api.client.patch(f"/api/v1/users/{uid}", json={"active": True}, headers=api.admin)
    assert r.status_code == 200, r.text
    await assert_revoked(api, token)
    await assert_works(api, await api.token("rv-disabled", "rv-disabled-password"))


async def test_demoted_user_token_is_refused(api: Api) -> None:
    token = await make_supervisor(api, "rv-demoted")
    uid = await user_id_of(api, "rv-demoted")
    agent_id, _ = await make_agent(api, "rv-demoted-seat")
    r = await api.client.patch(
        f"/api/v1/users/{uid}", json={"role": "agent", "agent_id": agent_id}, headers=api.admin
    )
    assert r.status_code == 200, r.text
    await assert_revoked(api, token)
    # The supervisor-only route too, not just /me.
    assert_problem(
        await api.client.get("/api/v1/agents", headers=api.auth(token)), 401, "unauthorized"
    )


async def test_deleted_admin_token_cannot_create_an_admin(api: Api) -> None:
    r = await api.client.post(
        "/api/v1/users",
        json={"username": "rv-admin", "password": "rv-admin-password", "role": "admin"},
        headers=api.admin,
    )
    assert r.status_code == 201, r.text
    uid = int(r.json()["id"])
    token = await api.token("rv-admin", "rv-admin-password")
    r = await api.client.delete(f"/api/v1/users/{uid}", headers=api.admin)
    assert r.status_code == 204, r.text
    r = await api.client.post(
        "/api/v1/users",
        json={"username": "rv-evil", "password": "rv-evil-password", "role": "admin"},
        headers=api.auth(token),
    )
    assert_problem(r, 401, "unauthorized")
    r = await api.client.get("/api/v1/users", params={"role": "admin"}, headers=api.admin)
    assert "rv-evil" not in [u["username"] for u in r.json()["items"]]


async def test_password_change_revokes_tokens(api: Api) -> None:
    _, token = await make_agent(api, "rv-password")
    uid = await user_id_of(api, "rv-password")
    r = await api.client.patch(
        f"/api/v1/users/{uid}", json={"password": "a-new-password"}, headers=api.admin
    )
    assert r.status_code == 200, r.text
    await assert_revoked(api, token)
    await assert_works(api, await api.token("rv-password", "a-new-password"))


async def test_logout_revokes_every_token_of_the_user(api: Api) -> None:
    _, first = await make_agent(api, "rv-logout")
    second = await api.token("rv-logout", "rv-logout-password")
    r = await api.client.post("/api/v1/auth/logout", headers=api.auth(first))
    assert r.status_code == 204, r.text
    await assert_revoked(api, first)
    await assert_revoked(api, second)
    assert_problem(
        await api.client.post("/api/v1/auth/logout", headers=api.auth(first)), 401, "unauthorized"
    )
    await assert_works(api, await api.token("rv-logout", "rv-logout-password"))


async def test_unrelated_changes_keep_tokens(api: Api) -> None:
    _, token = await make_agent(api, "rv-keep")
    uid = await user_id_of(api, "rv-keep")
    r = await api.client.patch(f"/api/v1/users/{uid}", json={"active": True}, headers=api.admin)
    assert r.status_code == 200, r.text
    await assert_works(api, token)


async def test_token_without_version_is_refused(api: Api) -> None:
    import jwt

    claims = jwt.decode(api.admin_token, options={"verify_signature": False})
    del claims["ver"]
    secret = api.settings.auth.jwt_secret.get_secret_value()
    old_style = jwt.encode(claims, secret, algorithm="HS256")
    await assert_revoked_or_invalid(api, old_style)


async def assert_revoked_or_invalid(api: Api, token: str) -> None:
    r = await api.client.get("/api/v1/auth/me", headers=api.auth(token))
    assert_problem(r, 401, "unauthorized")


async def _version_1(user_id: int) -> int:
    return 1


async def _database_down(user_id: int) -> int:
    raise ConnectionRefusedError("database down")


@pytest.mark.parametrize(
    ("load", "code"), [(_version_1, Close.UNAUTHORIZED), (_database_down, Close.TRY_AGAIN)]
)
async def test_websocket_handshake_checks_the_token_version(load: VersionLoader, code: int) -> None:
    """A revoked token is refused at the handshake (4401); an unreadable version is 1013."""
    settings = make_settings(DatabaseSettings())
    app = FastAPI()
    install_error_handlers(app)
    app.state.token_versions = TokenVersions(load)

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await authenticate_websocket(websocket, settings, role=Role.AGENT)
        await websocket.accept(subprotocol=websocket_subprotocol(websocket))
        await websocket.close()

    token = create_access_token(Principal("7", "old", Role.SUPERVISOR, token_version=0), settings)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="error")
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}/ws?token={token}") as client:
            with pytest.raises(ConnectionClosed) as info:
                await client.recv()
            assert info.value.rcvd is not None and info.value.rcvd.code == code
    finally:
        server.should_exit = True
        await task
