"""Real-browser tests: Debian's headless Chromium, driven by Playwright, against the real
service (uvicorn on a loopback port, embedded PostgreSQL, AMI simulators on loopback).

One service per test module; every test uses its own agents and, where it counts calls,
its own queue, so tests do not see each other's traffic.  People sign in through the
sign-in page with real passwords (argon2 hashes in the ``users`` table).

Screenshots of every page land in ``artifacts/screenshots/`` (gitignored) for a human to
look at; the assertions never depend on them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import expect

from app import models
from app.auth import hash_password
from app.db import Database, open_database
from app.live import LiveOptions
from app.main import create_app
from cti.simulator import AsteriskSimulator, DeviceProfile, SimUser
from tests.live import conftest as live

CHROMIUM = os.environ.get("SWITCHBOARD_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"

SIM_USER = "switchboard"
SIM_SECRET = "browser-sim-secret"
SUPERVISOR = ("lead", "lead-password-123")
AGENT_PASSWORD = "agent-password-123"  # every agent user: agent<id> / this

TODAY = date.today()
# The VIP customer: one product under a protection plan, one older and not entitled.
VIP_PHONE = "13800138000"
VIP_NAME = "王芳 Wang Fang"
PLAN_END = TODAY + timedelta(days=400)
# A member who bought 10 days ago: entitled for 90 days from purchase.
NEW_PHONE = "13900139000"
NEW_NAME = "Li Na"
NEW_PURCHASE = TODAY - timedelta(days=10)
UNKNOWN_PHONE = "13700137000"

# Queues: (id, name, dnis, ring_timeout_s, wrapup_s).  Each scenario has its own queue
# and its own agents, so its counts are its own.
QUEUES = [
    (1, "Support", "6000", 10.0, 120.0),  # long wrap-up: ended by the disposition
    (2, "Wallboard line", "6001", 10.0, 1.0),
    (3, "Supervision", "6002", 10.0, 1.0),
    (4, "Resync line", "6003", 10.0, 1.0),  # no agents: its callers wait, then give up
]
AGENTS = {  # agent id -> (queue ids, team)
    1001: ((1,), "After-sales"),
    1002: ((1,), "After-sales"),
    1011: ((2,), "Call center"),
    1021: ((3,), "VIP team"),
    1022: ((3,), "VIP team"),
}


# CI machines are shared and have two cores: give the page a little more time than
# Playwright's 5 s default before an expectation fails (a pass returns at once anyway).
expect.set_options(timeout=10_000)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


async def populate(db: Database) -> None:
    """Queues, agents with users, a supervisor, dispositions and three kinds of callers."""
    async with db.sessionmaker() as s:
        s.add(models.Skill(id=1, name="general"))
        teams = {name: models.Team(name=name) for _, name in AGENTS.values()}
        s.add_all(teams.values())
        for qid, name, _, ring, wrap in QUEUES:
            s.add(
                models.Queue(id=qid, name=name, ring_timeout_s=ring, wrapup_s=wrap, escalation=[])
            )
        await s.flush()
        for qid, _, dnis, _, _ in QUEUES:
            s.add(models.QueueDnis(dnis=dnis, queue_id=qid))
            s.add(models.QueueSkill(queue_id=qid, skill_id=1, min_level=1))
        agent_hash = hash_password(AGENT_PASSWORD)
        for aid, (_queues, team) in AGENTS.items():
            s.add(
                models.Agent(
                    id=aid, name=f"Agent {aid}", device=f"PJSIP/{aid}", team_id=teams[team].id
                )
            )
        await s.flush()
        for aid, (queues, _) in AGENTS.items():
            s.add(models.AgentSkill(agent_id=aid, skill_id=1, level=3))
            for qid in queues:
                s.add(models.AgentQueue(agent_id=aid, queue_id=qid))
            s.add(
                models.User(
                    username=f"agent{aid}",
                    password_hash=agent_hash,
                    role=models.Role.AGENT,
                    agent_id=aid,
                )
            )
        s.add(
            models.User(
                username=SUPERVISOR[0],
                password_hash=hash_password(SUPERVISOR[1]),
                role=models.Role.SUPERVISOR,
            )
        )
        s.add(models.Disposition(code="resolved", label="Resolved on first call"))
        s.add(models.Disposition(code="callback", label="Callback needed"))

        vip = models.Customer(name=VIP_NAME, vip=True, member=True)
        new = models.Customer(name=NEW_NAME, vip=False, member=True)
        s.add_all([vip, new])
        await s.flush()
        s.add(models.CustomerPhone(phone=VIP_PHONE, customer_id=vip.id, label="mobile"))
        s.add(models.CustomerPhone(phone=NEW_PHONE, customer_id=new.id, label="mobile"))
        s.add(
            models.Product(
                customer_id=vip.id,
                model="Fridge BCD-470",
                sku="BCD-470WDPG",
                serial="HR2024-88812",
                purchase_date=TODAY - timedelta(days=700),
                protection_plan_end=PLAN_END,
            )
        )
        s.add(
            models.Product(
                customer_id=vip.id,
                model="Air conditioner KFR-35",
                sku="KFR-35",
                purchase_date=TODAY - timedelta(days=2000),
            )
        )
        s.add(
            models.Product(
                customer_id=new.id, model="Washer XQG100", sku="XQG100", purchase_date=NEW_PURCHASE
            )
        )
        s.add(
            models.Interaction(
                customer_id=vip.id,
                at=datetime.now(UTC) - timedelta(days=2),
                channel="phone",
                agent_id=1002,
                summary="Fridge noisy; technician visit booked",
            )
        )
        s.add(
            models.Case(
                customer_id=vip.id,
                opened_at=datetime.now(UTC) - timedelta(days=2),
                kind=models.CaseKind.REPAIR,
                severity=models.CaseSeverity.URGENT,
                subject="Compressor noise",
                due_at=datetime.now(UTC) + timedelta(days=1),
            )
        )
        await s.commit()


@dataclass
class Service(live.Service):
    """The live tests' service, plus the calls this module placed."""

    calls: list[str] = field(default_factory=list)

    def place_call(self, dnis: str, caller: str, patience_s: float | None = None) -> str:
        sim = self.sims[0]
        uid = sim.place_call(dnis=dnis, caller_num=caller, caller_name="", patience_s=patience_s)
        call_id = f"{sim.name}/{uid}"
        self.calls.append(call_id)
        return call_id


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def service(
    fresh_database_settings: Callable[[], Awaitable[Any]], tmp_path_factory: Any
) -> AsyncIterator[Service]:
    db_settings = await fresh_database_settings()
    async with open_database(db_settings, migrate=False) as db:
        await populate(db)
    settings = live.service_settings(db_settings, tmp_path_factory.mktemp("spill"), "browser")
    sim = AsteriskSimulator(name="pbx1", users={SIM_USER: SimUser(SIM_SECRET)}, seed=1)
    await sim.start()
    for aid in AGENTS:
        sim.set_device(f"PJSIP/{aid}", DeviceProfile(ring_s=1.0, talk_s=60.0))
    app = create_app(
        settings,
        live_options=LiveOptions(
            servers=[live.sim_server(sim, SIM_USER, SIM_SECRET)],
            wallboard_interval_s=0.25,
            lookup_timeout_s=2.0,
        ),
    )
    svc = Service(app=app, settings=settings, sims=[sim])
    await svc.start(start_timeout=10.0, poll_interval=0.05, timeout_graceful_shutdown=3)
    try:
        yield svc
    finally:
        await svc.stop()
        await sim.close()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


class PageErrors:
    """Collects uncaught page errors and console errors; a test asserts there are none."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def attach(self, page: Any) -> None:
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on(
            "console",
            lambda msg: self.errors.append(f"console: {msg.text}") if msg.type == "error" else None,
        )

    def besides(self, *expected: str) -> list[str]:
        """The errors that contain none of the ``expected`` texts."""
        return [e for e in self.errors if not any(x in e for x in expected)]


async def choose_disposition(page: Any, code: str) -> None:
    """Pick ``code`` from the list, or type it where the page had to fall back to a field."""
    select = page.locator("select#disposition")
    if await select.count():
        await select.select_option(code)
    else:
        await page.locator("input#disposition").fill(code)


@pytest_asyncio.fixture(loop_scope="session")
async def open_page(
    browser: Any, service: Service
) -> AsyncIterator[Callable[..., Awaitable[tuple[Any, PageErrors]]]]:
    """``await open_page(width, height)`` -> (page, errors) in a fresh browser context."""
    contexts: list[Any] = []

    async def make(width: int = 1440, height: int = 900) -> tuple[Any, PageErrors]:
        ctx = await browser.new_context(
            viewport={"width": width, "height": height}, base_url=service.base_url
        )
        ctx.set_default_timeout(10_000)
        contexts.append(ctx)
        page = await ctx.new_page()
        errors = PageErrors()
        errors.attach(page)
        return page, errors

    yield make
    for ctx in contexts:
        with contextlib.suppress(Exception):
            await ctx.close()


async def sign_in(page: Any, path: str, username: str, password: str) -> None:
    """Open ``path``; the page sends us to sign in; sign in and land back on ``path``."""
    await page.goto(path)
    await page.wait_for_url("**/signin?next=*")
    await page.get_by_label("User name").fill(username)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"**{path}")


async def screenshot(page: Any, name: str, *, full_page: bool = True) -> None:
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)
