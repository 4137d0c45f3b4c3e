"""The app as a whole: problem+json for bad input, body limit, OpenAPI, probes, secrets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from app.db import check
from app.main import create_app
from app.settings import AuthSettings, DatabaseSettings, Settings
from cti.types import ServerStatus
from tests.api.conftest import Api, RecordingCallCenter, recording_runtime
from tests.api.test_config_api import assert_problem


async def test_unknown_route_and_method_are_problems(api: Api) -> None:
    assert_problem(await api.client.get("/api/v1/nope", headers=api.admin), 404, "not-found")
    assert_problem(
        await api.client.put("/api/v1/skills", json={}, headers=api.admin),
        405,
        "method-not-allowed",
    )


async def test_invalid_json_and_schema_errors(api: Api) -> None:
    r = await api.client.post(
        "/api/v1/skills",
        content=b'{"name": ',
        headers={**api.admin, "content-type": "application/json"},
    )
    assert_problem(r, 400, "invalid-json")
    body = assert_problem(
        await api.client.post("/api/v1/skills", json={"name": ""}, headers=api.admin),
        422,
        "validation-failed",
    )
    assert body["errors"][0]["loc"] == ["body", "name"]
    assert "input" not in body["errors"][0]  # inputs may be passwords: never echoed
    assert_problem(
        await api.client.get("/api/v1/agents/not-a-number", headers=api.admin),
        422,
        "validation-failed",
    )
    assert_problem(
        await api.client.get("/api/v1/agents", params={"cursor": "%%%"}, headers=api.admin),
        422,
        "validation-failed",
    )


async def test_oversized_body_is_413_and_writes_nothing(api: Api) -> None:
    big = "x" * (70 * 1024)
    body = assert_problem(
        await api.client.post(
            "/api/v1/skills", json={"name": "big", "description": big}, headers=api.admin
        ),
        413,
        "payload-too-large",
    )
    assert body["max_bytes"] == 64 * 1024

    # No Content-Length: the limit must count streamed bytes.
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(80):
            yield b"x" * 1024

    r = await api.client.post(
        "/api/v1/skills",
        content=chunks(),
        headers={**api.admin, "content-type": "application/json"},
    )
    assert_problem(r, 413, "payload-too-large")
    names = [
        s["name"]
        for s in (await api.client.get("/api/v1/skills", headers=api.admin)).json()["items"]
    ]
    assert "big" not in names


async def test_openapi_lists_every_endpoint_with_bearer_security(api: Api) -> None:
    doc = (await api.client.get("/openapi.json")).json()
    paths = doc["paths"]
    for resource in ("agents", "queues", "skills", "teams", "dispositions", "users"):
        base = f"/api/v1/{resource}"
        assert {"get", "post"} <= set(paths[base]), resource
        item = next(p for p in paths if p.startswith(base + "/{"))
        assert {"get", "patch", "delete"} <= set(paths[item]), resource
    for path in (
        "/api/v1/auth/token",
        "/api/v1/auth/me",
        "/api/v1/crm/lookup",
        "/api/v1/calls",
        "/health",
        "/ready",
    ):
        assert path in paths, path
    assert any(p.startswith("/api/v1/calls/{") for p in paths)
    schemes = doc["components"]["securitySchemes"]
    assert any(s.get("scheme") == "bearer" for s in schemes.values())
    assert "security" in paths["/api/v1/agents"]["get"]
    assert "security" not in paths["/api/v1/auth/token"]["post"]
    token_body = paths["/api/v1/auth/token"]["post"]["requestBody"]["content"]
    assert {"application/json", "application/x-www-form-urlencoded"} <= set(token_body)
    tags = {t["name"] for t in doc["tags"]}
    assert {"agents", "queues", "crm", "calls", "auth"} <= tags


async def test_health_and_ready(api: Api) -> None:
    assert (await api.client.get("/health")).json() == {"status": "ok"}
    r = await api.client.get("/ready", headers=api.admin)
    assert r.status_code == 200 and r.json()["database"] is True
    # Without a token (or with a bad one): ready or not, nothing more.
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        assert (await api.client.get("/ready", headers=headers)).json() == {"status": "ready"}
    api.callcenter.servers = [
        ServerStatus(name="pbx1", connected=True),
        ServerStatus(name="pbx2", connected=False, last_error="connect 10.0.0.5:5038 refused"),
    ]
    try:
        body = assert_problem(
            await api.client.get("/ready", headers=api.admin), 503, "service-unavailable"
        )
        assert "pbx2" in body["detail"]
        assert [s["name"] for s in body["ami"]] == ["pbx1", "pbx2"]
        r = await api.client.get("/ready")
        body = assert_problem(r, 503, "service-unavailable")
        assert "ami" not in body and "database" not in body
        assert "pbx" not in r.text and "10.0.0.5" not in r.text and "5038" not in r.text
    finally:
        api.callcenter.servers = []


@pytest.mark.parametrize(
    "auth",
    [
        AuthSettings(),  # shipped JWT secret
        AuthSettings(jwt_secret=SecretStr("short")),
        AuthSettings(jwt_secret=SecretStr("y" * 40)),  # shipped admin password
    ],
)
async def test_default_secrets_refused_outside_demo(auth: AuthSettings, tmp_path: Path) -> None:
    settings = Settings(
        demo=False, auth=auth, database=DatabaseSettings(embedded_dir=tmp_path / "never-started")
    )
    app = create_app(settings)
    with pytest.raises(ValueError, match="SWITCHBOARD_AUTH__"):
        async with app.router.lifespan_context(app):
            pass
    assert not (tmp_path / "never-started").exists()  # refused before touching the database


GOOD_AUTH = AuthSettings(
    jwt_secret=SecretStr("database-tests-secret-" + "d" * 32),
    admin_password=SecretStr("database-tests-admin-password"),
)


async def test_missing_database_url_refused_outside_demo(tmp_path: Path) -> None:
    # A production service never falls back to a private PostgreSQL silently.
    settings = Settings(
        demo=False,
        auth=GOOD_AUTH,
        database=DatabaseSettings(embedded_dir=tmp_path / "never-started"),
    )
    app = create_app(settings)
    with pytest.raises(ValueError, match="SWITCHBOARD_DATABASE__URL must be set"):
        async with app.router.lifespan_context(app):
            pass
    assert not (tmp_path / "never-started").exists()  # refused before starting anything


async def test_url_and_embedded_together_refused(tmp_path: Path) -> None:
    settings = Settings(
        demo=False,
        auth=GOOD_AUTH,
        database=DatabaseSettings(
            url=SecretStr("postgresql+asyncpg://u:p@127.0.0.1:9/x"),
            embedded=True,
            embedded_dir=tmp_path / "never-started",
        ),
    )
    with pytest.raises(ValueError, match="not both"):
        settings.check_database()


def test_embedded_database_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_DATABASE__EMBEDDED", "true")
    monkeypatch.setenv("SWITCHBOARD_AMI__SERVERS", '[{"name": "pbx1", "host": "127.0.0.1"}]')
    monkeypatch.delenv("SWITCHBOARD_DATABASE__URL", raising=False)
    settings = Settings(_env_file=None)
    assert not settings.demo_mode and settings.database.embedded
    settings.check_database()  # asked for explicitly: accepted


def test_demo_mode_still_uses_the_embedded_database_unasked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("AMI__SERVERS", "DEMO", "DATABASE__URL", "DATABASE__EMBEDDED"):
        monkeypatch.delenv(f"SWITCHBOARD_{name}", raising=False)
    settings = Settings(_env_file=None)  # `make run` with nothing set
    assert settings.demo_mode and settings.database.url is None
    assert not settings.database.embedded
    settings.check_database()
    settings.check_secrets()


async def test_explicit_embedded_database_accepted_outside_demo(
    embedded_pgdata: Path | None,
) -> None:
    if embedded_pgdata is None:
        pytest.skip("the tests use an external PostgreSQL (SWITCHBOARD_TEST_DATABASE_URL)")
    # The session's embedded server: start_embedded attaches to it (no second PostgreSQL).
    settings = Settings(
        demo=False,
        auth=GOOD_AUTH,
        database=DatabaseSettings(embedded=True, embedded_dir=embedded_pgdata),
    )
    app = create_app(settings, live_runtime=recording_runtime(RecordingCallCenter()))
    async with app.router.lifespan_context(app):
        db = app.state.db
        assert db is not None and db.embedded_dir == embedded_pgdata
        assert await check(db)
