"""Mapping of lower-layer errors to problem details, on a bare app (no database)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from app.bodylimit import BodySizeLimitMiddleware
from app.errors import (
    Conflict,
    NotFound,
    ProblemError,
    install_error_handlers,
    map_routing_errors,
)
from routing.errors import (
    DuplicateCall,
    IllegalTransition,
    InvalidConfig,
    QueueInUse,
    RoutingError,
    UnknownAgent,
    UnknownQueue,
)
from tests.api.test_config_api import assert_problem


@pytest.fixture
def client() -> httpx.AsyncClient:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware, max_body_bytes=1024)

    @app.get("/illegal")
    async def illegal() -> None:
        raise IllegalTransition("1001", "logged_out", "ready")

    @app.get("/unknown")
    async def unknown() -> None:
        raise UnknownAgent("4242")

    @app.get("/invalid")
    async def invalid() -> None:
        raise InvalidConfig("queue 7", "requires an unknown skill")

    @app.get("/queue")
    async def queue() -> None:
        raise UnknownQueue("7")

    @app.get("/duplicate")
    async def duplicate() -> None:
        raise DuplicateCall("c1")

    @app.get("/in-use")
    async def in_use() -> None:
        raise QueueInUse("7", 3)

    @app.get("/routing")
    async def routing() -> None:
        raise RoutingError("something the core refused")

    @app.get("/state")
    async def state() -> None:
        raise Conflict("Agent is on a call.", agent_id="1001", state="on_call")

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("password=hunter2 in SELECT * FROM users")

    @app.post("/echo")
    async def echo(body: dict[str, str]) -> dict[str, str]:
        return body

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://t")


async def test_routing_errors_map_by_class(client: httpx.AsyncClient) -> None:
    async with client:
        body = assert_problem(await client.get("/illegal"), 409, "illegal-transition")
        assert "cannot ready while logged_out" in body["detail"]
        assert (body["agent_id"], body["state"], body["action"]) == ("1001", "logged_out", "ready")
        # An unknown id is ``not-found`` on every route, naming the resource.
        body = assert_problem(await client.get("/unknown"), 404, "not-found")
        assert (body["resource"], body["id"]) == ("agent", "4242")
        body = assert_problem(await client.get("/queue"), 404, "not-found")
        assert (body["resource"], body["id"]) == ("queue", "7")
        assert_problem(await client.get("/invalid"), 422, "invalid-config")
        assert_problem(await client.get("/duplicate"), 409, "duplicate-call")
        assert assert_problem(await client.get("/in-use"), 409, "queue-in-use")["calls"] == 3
        assert_problem(await client.get("/routing"), 409, "routing-error")
        body = assert_problem(await client.get("/state"), 409, "conflict")
        assert body["state"] == "on_call" and body["instance"] == "/state"


def test_map_routing_errors_chains_the_cause() -> None:
    with pytest.raises(NotFound) as info, map_routing_errors():
        raise UnknownAgent("4242")
    assert isinstance(info.value.__cause__, UnknownAgent)


def test_every_id_is_documented() -> None:
    """``docs/errors.md`` lists every error id a problem class can carry."""
    import pathlib

    doc = (pathlib.Path(__file__).parents[2] / "docs" / "errors.md").read_text()
    classes: list[type[ProblemError]] = [ProblemError]
    ids = set()
    while classes:
        klass = classes.pop()
        if klass.__module__ == "app.errors" and klass.__name__ != "HttpProblem":
            ids.add(klass.error_id)
        classes.extend(klass.__subclasses__())
    missing = sorted(i for i in ids if f"`{i}`" not in doc)
    assert not missing


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
