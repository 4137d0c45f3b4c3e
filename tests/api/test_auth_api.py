"""Authentication and role enforcement: tokens, refusals per role, websocket close codes."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import uvicorn
from fastapi import FastAPI, WebSocket
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from app.auth import (
    AgentSelfOrSupervisor,
    Principal,
    Role,
    TokenVersions,
    authenticate_websocket,
    create_access_token,
    hash_password,
    verify_password,
    websocket_subprotocol,
)
from app.errors import install_error_handlers
from app.live.protocol import Close
from app.settings import DatabaseSettings
from tests.api.conftest import ADMIN_PASSWORD, Api, make_settings
from tests.api.test_config_api import assert_problem
from tests.polling import wait_for


async def make_agent(api: Api, username: str) -> tuple[int, str]:
    r = await api.client.post(
        "/api/v1/agents",
        json={
            "name": username,
            "device": f"PJSIP/{username}",
            "login": {"username": username, "password": f"{username}-password"},
        },
        headers=api.admin,
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"]), await api.token(username, f"{username}-password")


async def make_supervisor(api: Api, username: str) -> str:
    r = await api.client.post(
        "/api/v1/users",
        json={"username": username, "password": f"{username}-password", "role": "supervisor"},
        headers=api.admin,
    )
    assert r.status_code == 201, r.text
    return await api.token(username, f"{username}-password")


def test_password_hashing_is_argon2id() -> None:
    hashed = hash_password("s3cret-pass")
    assert hashed.startswith("$argon2id$")
    assert "s3cret-pass" not in hashed
    assert verify_password(hashed, "s3cret-pass")
    assert not verify_password(hashed, "wrong")
    assert not verify_password(None, "s3cret-pass")  # unknown user: same cost, never true
    assert not verify_password("not-a-hash", "s3cret-pass")


async def test_token_json_and_oauth2_form(api: Api) -> None:
    r = await api.client.post(
        "/api/v1/auth/token", json={"username": "admin", "password": ADMIN_PASSWORD}
    )
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["token_type"] == "bearer"
    assert body["role"] == "admin" and body["agent_id"] is None
    assert body["expires_in"] == api.settings.auth.token_ttl_s
    r = await api.client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": "admin", "password": ADMIN_PASSWORD},
    )
    assert r.status_code == 200, r.text
    me = await api.client.get("/api/v1/auth/me", headers=api.auth(r.json()["access_token"]))
    assert me.json()["username"] == "admin" and me.json()["role"] == "admin"


async def test_bad_logins_are_401_and_password_is_not_logged(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    for creds in (
        {"username": "admin", "password": "wrong-password-x"},
        {"username": "nobody", "password": "wrong-password-x"},
    ):
        r = await api.client.post("/api/v1/auth/token", json=creds)
        body = assert_problem(r, 401, "unauthorized")
        assert body["detail"] == "Invalid username or password."
        assert r.headers["www-authenticate"] == "Bearer"
    assert "login failed" in caplog.text
    assert "wrong-password-x" not in caplog.text
    assert_problem(
        await api.client.post("/api/v1/auth/token", json={"username": "admin"}),
        422,
        "validation-failed",
    )
    assert_problem(
        await api.client.post(
            "/api/v1/auth/token", content=b"{nope", headers={"content-type": "application/json"}
        ),
        400,
        "invalid-json",
    )
    assert_problem(
        await api.client.post(
            "/api/v1/auth/token", content=b"x", headers={"content-type": "text/plain"}
        ),
        415,
        "unsupported-media-type",
    )


async def test_missing_bad_and_expired_tokens(api: Api) -> None:
    c = api.client
    for path in (
        "/api/v1/agents",
        "/api/v1/auth/me",
        "/api/v1/calls",
        "/api/v1/crm/lookup?phone=1",
    ):
        assert_problem(await c.get(path), 401, "unauthorized")
    assert_problem(await c.get("/api/v1/agents", headers=api.auth("garbage")), 401, "unauthorized")
    principal = Principal(user_id="1", username="admin", role=Role.ADMIN)
    expired = create_access_token(principal, api.settings, now=time.time() - 3600)
    body = assert_problem(
        await c.get("/api/v1/agents", headers=api.auth(expired)), 401, "unauthorized"
    )
    assert "expired" in body["detail"]
    forged_settings = make_settings(api.settings.database)
    forged_settings.auth.jwt_secret = forged_settings.auth.jwt_secret.__class__(
        "another-secret-" * 3
    )
    forged = create_access_token(principal, forged_settings)
    assert_problem(await c.get("/api/v1/agents", headers=api.auth(forged)), 401, "unauthorized")


async def test_roles_are_enforced(api: Api) -> None:
    c = api.client
    _, agent = await make_agent(api, "role-agent")
    supervisor = await make_supervisor(api, "role-sup")
    # Agents read nothing of the configuration.
    for path in ("/api/v1/agents", "/api/v1/queues", "/api/v1/skills", "/api/v1/users"):
        assert_problem(await c.get(path, headers=api.auth(agent)), 403, "forbidden")
    # Supervisors read but do not write.
    assert (await c.get("/api/v1/agents", headers=api.auth(supervisor))).status_code == 200
    assert (await c.get("/api/v1/users", headers=api.auth(supervisor))).status_code == 200
    body = assert_problem(
        await c.post("/api/v1/skills", json={"name": "x"}, headers=api.auth(supervisor)),
        403,
        "forbidden",
    )
    assert body["required_role"] == "admin"
    assert_problem(
        await c.post(
            "/api/v1/users",
            json={"username": "evil", "password": "evil-password", "role": "admin"},
            headers=api.auth(supervisor),
        ),
        403,
        "forbidden",
    )
    # Agents may look up callers (the screen pop) - 404/422, not 403.
    r = await c.get("/api/v1/crm/lookup", params={"phone": "13800000000"}, headers=api.auth(agent))
    assert r.status_code == 404


async def test_agent_self_or_supervisor(api: Api) -> None:
    """An agent acts only on itself: exercised through a route using the dependency."""
    own_id, agent = await make_agent(api, "self-agent")
    other_id, _ = await make_agent(api, "other-agent")
    supervisor = await make_supervisor(api, "self-sup")

    app = FastAPI()
    install_error_handlers(app)
    app.state.settings = api.settings
    app.state.token_versions = api.app.state.token_versions

    @app.post("/agents/{agent_id}/ready")
    async def ready(agent_id: str, principal: AgentSelfOrSupervisor) -> dict[str, str]:
        return {"agent_id": agent_id, "by": principal.username}

    import httpx

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        r = await client.post(f"/agents/{own_id}/ready", headers=api.auth(agent))
        assert r.json() == {"agent_id": str(own_id), "by": "self-agent"}
        assert_problem(
            await client.post(f"/agents/{other_id}/ready", headers=api.auth(agent)),
            403,
            "forbidden",
        )
        r = await client.post(f"/agents/{other_id}/ready", headers=api.auth(supervisor))
        assert r.status_code == 200
        assert_problem(await client.post(f"/agents/{own_id}/ready"), 401, "unauthorized")


async def _every_user_at_version_0(user_id: int) -> int:
    return 0


def _ws_app(settings: object) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.state.token_versions = TokenVersions(_every_user_at_version_0)

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        principal = await authenticate_websocket(websocket, settings, role=Role.SUPERVISOR)  # type: ignore[arg-type]
        await websocket.accept(subprotocol=websocket_subprotocol(websocket))
        await websocket.send_json({"user": principal.username})
        await websocket.close()

    return app


async def test_websocket_authentication() -> None:
    """Over real loopback TCP: the close code must reach a real websocket client."""
    settings = make_settings(DatabaseSettings())
    sup = create_access_token(Principal("7", "sup", Role.SUPERVISOR), settings)
    agent = create_access_token(Principal("8", "ag", Role.AGENT, "1001"), settings)
    server = uvicorn.Server(
        uvicorn.Config(
            _ws_app(settings), host="127.0.0.1", port=0, lifespan="off", log_level="error"
        )
    )
    task = asyncio.create_task(server.serve())
    try:
        await wait_for(lambda: server.started, what="uvicorn start")
        port = server.servers[0].sockets[0].getsockname()[1]
        base = f"ws://127.0.0.1:{port}/ws"
        async with connect(f"{base}?token={sup}") as ws:
            assert json.loads(await ws.recv()) == {"user": "sup"}
        async with connect(base, subprotocols=[Subprotocol("bearer"), Subprotocol(sup)]) as ws:
            assert ws.subprotocol == "bearer"
            assert json.loads(await ws.recv()) == {"user": "sup"}
        refusals: list[tuple[str, list[Subprotocol] | None, int]] = [
            (base, None, Close.UNAUTHORIZED),
            (f"{base}?token=bad", None, Close.UNAUTHORIZED),
            (base, [Subprotocol("bearer"), Subprotocol("x.y.z")], Close.UNAUTHORIZED),
            (f"{base}?token={agent}", None, Close.FORBIDDEN),
        ]
        for url, protocols, code in refusals:
            async with connect(url, subprotocols=protocols) as ws:
                with pytest.raises(ConnectionClosed) as info:
                    await ws.recv()
                assert info.value.rcvd is not None and info.value.rcvd.code == code
    finally:
        server.should_exit = True
        await task
