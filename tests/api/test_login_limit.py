"""Sign-in throttling: per user name, per client address, and a bound on argon2 at once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from app.loginlimit import LoginLimiter, SlidingWindow
from app.main import create_app
from tests.api.conftest import (
    ADMIN_PASSWORD,
    Api,
    RecordingCallCenter,
    make_settings,
    recording_runtime,
)
from tests.api.test_config_api import assert_problem

PER_USER = 3
PER_ADDRESS = 6
WINDOW_S = 60.0
MAX_VERIFYING = 4


class Clock:
    """The limiter's clock, moved by hand: windows do not depend on how fast argon2 runs."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


CLOCK = Clock()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def limited(fresh_database_settings: Any) -> AsyncIterator[Api]:
    """An app whose ``login_limiter`` (an ``app.state`` part, like ``token_versions``)
    runs on ``CLOCK``, with the limits of ``settings.auth`` below."""
    settings = make_settings(await fresh_database_settings())
    settings.auth.login_failures_per_user = PER_USER
    settings.auth.login_failures_per_address = PER_ADDRESS
    settings.auth.login_window_s = WINDOW_S
    settings.auth.login_max_verifying = MAX_VERIFYING
    callcenter = RecordingCallCenter()
    app = create_app(settings, live_runtime=recording_runtime(callcenter))
    built: LoginLimiter = app.state.login_limiter  # from settings.auth
    assert (built.users.limit, built.addresses.limit) == (PER_USER, PER_ADDRESS)
    assert (built.users.window_s, built.max_verifying) == (WINDOW_S, MAX_VERIFYING)
    app.state.login_limiter = LoginLimiter(
        per_user=PER_USER,
        per_address=PER_ADDRESS,
        window_s=WINDOW_S,
        max_verifying=MAX_VERIFYING,
        clock=CLOCK,
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        api = Api(client=client, callcenter=callcenter, settings=settings, app=app)
        api.admin_token = await api.token("admin", ADMIN_PASSWORD)
        yield api


def client_from(api: Api, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=api.app, raise_app_exceptions=False, client=(address, 5))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def make_user(api: Api, username: str) -> None:
    r = await api.client.post(
        "/api/v1/users",
        json={"username": username, "password": f"{username}-pw", "role": "supervisor"},
        headers=api.admin,
    )
    assert r.status_code == 201, r.text


async def sign_in(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/token", json={"username": username, "password": password}
    )


def assert_throttled(r: httpx.Response) -> int:
    body = assert_problem(r, 429, "too-many-requests")
    retry_after = int(r.headers["retry-after"])
    assert 1 <= retry_after <= WINDOW_S + 1
    assert body["retry_after"] == retry_after
    return retry_after


async def test_wrong_passwords_lock_the_user_name_until_the_window_passes(
    limited: Api, caplog: pytest.LogCaptureFixture
) -> None:
    await make_user(limited, "ll-user")
    caplog.set_level(logging.WARNING)
    async with client_from(limited, "10.0.0.1") as c:
        for _ in range(PER_USER):
            assert_problem(await sign_in(c, "ll-user", "wrong-secret-9"), 401, "unauthorized")
        # Locked: even the right password is refused now, before it is checked.
        retry_after = assert_throttled(await sign_in(c, "ll-user", "ll-user-pw"))
    # From another address too: the lock is on the user name.
    async with client_from(limited, "10.0.0.2") as c:
        assert_throttled(await sign_in(c, "ll-user", "ll-user-pw"))
    locked = [r.getMessage() for r in caplog.records if "locked out" in r.getMessage()]
    assert len(locked) == 1 and "ll-user" in locked[0] and "10.0.0.1" in locked[0]
    assert "wrong-secret-9" not in caplog.text
    CLOCK.now += retry_after
    async with client_from(limited, "10.0.0.1") as c:
        r = await sign_in(c, "ll-user", "ll-user-pw")
        assert r.status_code == 200, r.text


async def test_failures_from_one_address_lock_other_user_names(limited: Api) -> None:
    CLOCK.now += 2 * WINDOW_S  # nothing left from the other tests
    async with client_from(limited, "10.0.1.1") as c:
        for i in range(PER_ADDRESS):  # one failure per name: no user name is locked
            assert_problem(await sign_in(c, f"ll-probe-{i}", "guess"), 401, "unauthorized")
        assert_throttled(await sign_in(c, "ll-another", "guess"))
        assert_throttled(await sign_in(c, "admin", ADMIN_PASSWORD))
    # Other addresses are not affected.
    async with client_from(limited, "10.0.1.2") as c:
        assert (await sign_in(c, "admin", ADMIN_PASSWORD)).status_code == 200


async def test_concurrent_attempts_do_not_all_run_argon2(limited: Api) -> None:
    limiter: LoginLimiter = limited.app.state.login_limiter
    limiter.peak_verifying = 0
    clients = [client_from(limited, f"10.0.2.{i}") for i in range(48)]
    try:
        answers = await asyncio.gather(
            *(sign_in(c, f"ll-flood-{i}", "guess") for i, c in enumerate(clients))
        )
    finally:
        for c in clients:
            await c.aclose()
    statuses = sorted(r.status_code for r in answers)
    assert set(statuses) <= {401, 429}
    throttled = [r for r in answers if r.status_code == 429]
    assert throttled, statuses
    for r in throttled:
        assert_throttled(r)
    assert 1 <= limiter.peak_verifying <= MAX_VERIFYING
    assert limiter.verifying == 0
    # A real sign-in goes through right after the flood.
    async with client_from(limited, "10.0.2.200") as c:
        assert (await sign_in(c, "admin", ADMIN_PASSWORD)).status_code == 200


def test_sliding_window_prunes_and_counts() -> None:
    window = SlidingWindow(limit=2, window_s=10.0)
    assert not window.add("a", 0.0)
    assert window.retry_after("a", 1.0) == 0.0
    assert window.add("a", 5.0)
    assert window.retry_after("a", 6.0) == pytest.approx(4.0)
    assert window.retry_after("a", 10.5) == 0.0  # the first failure left the window
    for i in range(100):
        window.add(f"k{i}", 20.0)
    window.prune(31.0)
    assert len(window) == 0
