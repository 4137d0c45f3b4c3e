"""Every operation of the OpenAPI document, fed generated requests (schemathesis) as an
admin and as an agent, on a throw-away database: no 5xx (but the documented 503 of
live-control routes: this app runs without the live call center), and every documented response
conforms to its schema.

Bounded for ``make test`` (a few examples per operation, derandomized so a failure
reproduces); the probe that found the 500s fixed in ``test_no_server_errors`` ran
thousands.  Operations that would end the caller's own session (logout, password
change, the admin deleting or disabling itself) are kept away from the two users the
run authenticates as, so the rest of the run is not all 401s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import response_schema_conformance

from app.main import create_app
from tests.api.conftest import ADMIN_PASSWORD, RecordingCallCenter, make_settings, recording_runtime
from tests.serving import serve, shut_down

EXAMPLES_PER_OPERATION = 5
# Operations that end the session they are called with.
SELF_ENDING = {("POST", "/api/v1/auth/logout"), ("POST", "/api/v1/auth/password")}


def _login(base: str, username: str, password: str) -> str:
    r = requests.post(
        f"{base}/api/v1/auth/token", json={"username": username, "password": password}, timeout=30
    )
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def _setup_agent(base: str, admin: dict[str, str]) -> tuple[str, set[int]]:
    """An agent user (with its agent) to run as; returns its token and the protected ids."""
    r = requests.post(
        f"{base}/api/v1/agents",
        json={
            "name": "st-agent",
            "device": "PJSIP/st-agent",
            "login": {"username": "st-agent", "password": "st-agent-password"},
        },
        headers=admin,
        timeout=30,
    )
    assert r.status_code == 201, r.text
    agent_id = int(r.json()["id"])
    r = requests.get(f"{base}/api/v1/users", params={"limit": 200}, headers=admin, timeout=30)
    user_ids = {int(u["id"]) for u in r.json()["items"]}
    return _login(base, "st-agent", "st-agent-password"), user_ids | {agent_id}


def _run(base: str) -> list[str]:
    """Run the generated requests; return the failures (empty when all held)."""
    admin_token = _login(base, "admin", ADMIN_PASSWORD)
    admin = {"Authorization": f"Bearer {admin_token}"}
    agent_token, protected = _setup_agent(base, admin)
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    failures: list[str] = []
    session = requests.Session()
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an Err raises: the document is ours
        if (operation.method.upper(), operation.path) in SELF_ENDING:
            continue
        for who, token in (("admin", admin_token), ("agent", agent_token)):
            check = _checker(session, base, who, token, protected, failures)
            test: Callable[[], None] = settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )(given(case=operation.as_strategy())(check))
            test()
    return failures


def _live_absent(response: Any) -> bool:
    """The documented 503 of live-control routes: this app runs without the live core."""
    if response.status_code != 503:
        return False
    return bool(response.json().get("error_id") == "service-unavailable")


def _checker(
    session: requests.Session,
    base: str,
    who: str,
    token: str,
    protected: set[int],
    failures: list[str],
) -> Callable[[Any], None]:
    def check(case: Any) -> None:
        params = case.path_parameters or {}
        if any(isinstance(v, int) and v in protected for v in params.values()):
            return  # the run's own users and agent stay as they are
        headers = {"Authorization": f"Bearer {token}"}
        where = f"{who} {case.method} {case.formatted_path}"
        response = case.call(base_url=base, session=session, headers=headers, timeout=30)
        if response.status_code >= 500 and not _live_absent(response):
            failures.append(f"{where}: {response.status_code} {response.text[:500]}")
            return
        try:
            case.validate_response(response, checks=[response_schema_conformance])
        except (AssertionError, BaseExceptionGroup) as exc:  # schemathesis failure groups
            failures.append(f"{where}: {exc!r}"[:2000])

    return check


@pytest.mark.asyncio(loop_scope="session")
async def test_generated_requests_cause_no_server_error(fresh_database_settings: Any) -> None:
    app_settings = make_settings(await fresh_database_settings())
    app = create_app(app_settings, live_runtime=recording_runtime(RecordingCallCenter()))
    server, task, port = await serve(app, name="schemathesis-api")
    try:
        failures = await asyncio.to_thread(_run, f"http://127.0.0.1:{port}")
    finally:
        await shut_down(server, task)
    assert not failures, "\n\n".join(failures[:20])
