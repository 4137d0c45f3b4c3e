"""Mapping of lower-layer errors to problem details, on a bare app (no database)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from app.errors import IllegalStateChange, NotFound, ProblemError, install_error_handlers
from routing.errors import IllegalTransition, InvalidConfig, UnknownAgent
from tests.api.test_config_api import assert_problem


@pytest.fixture
def client() -> httpx.AsyncClient:
    app = FastAPI()
    install_error_handlers(app, max_body_bytes=1024)

    @app.get("/illegal")
    async def illegal() -> None:
        raise IllegalTransition("1001", "logged_out", "ready")

    @app.get("/unknown")
    async def unknown() -> None:
        raise UnknownAgent("4242")

    @app.get("/invalid")
    async def invalid() -> None:
        raise InvalidConfig("queue 7", "requires an unknown skill")

    @app.get("/state")
    async def state() -> None:
        raise IllegalStateChange("Agent is on a call.", agent_id="1001", state="on_call")

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("password=hunter2 in SELECT * FROM users")

    @app.post("/echo")
    async def echo(body: dict[str, str]) -> dict[str, str]:
        return body

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://t")


async def test_routing_errors_keep_their_ids(client: httpx.AsyncClient) -> None:
    async with client:
        body = assert_problem(await client.get("/illegal"), 409, "illegal-transition")
        assert "cannot ready while logged_out" in body["detail"]
        assert_problem(await client.get("/unknown"), 404, "unknown-agent")
        assert_problem(await client.get("/invalid"), 422, "invalid-config")
        body = assert_problem(await client.get("/state"), 409, "illegal-state-change")
        assert body["state"] == "on_call" and body["instance"] == "/state"


async def test_unexpected_errors_do_not_leak(client: httpx.AsyncClient) -> None:
    async with client:
        r = await client.get("/boom")
        assert_problem(r, 500, "internal-error")
        assert "hunter2" not in r.text and "SELECT" not in r.text


async def test_body_limit_is_configurable(client: httpx.AsyncClient) -> None:
    async with client:
        assert (await client.post("/echo", json={"a": "b" * 500})).status_code == 200
        assert_problem(await client.post("/echo", json={"a": "b" * 2000}), 413, "payload-too-large")


def test_problem_members() -> None:
    problem = NotFound("Agent 7 does not exist.", id=7).to_problem("/api/v1/agents/7")
    assert problem == {
        "type": "/errors/not-found",
        "title": "Not found",
        "status": 404,
        "detail": "Agent 7 does not exist.",
        "error_id": "not-found",
        "instance": "/api/v1/agents/7",
        "id": 7,
    }
    with pytest.raises(TypeError):
        ProblemError("x", status=500)
