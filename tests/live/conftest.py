"""The live service under test: real uvicorn on loopback, real PostgreSQL, AMI simulators.

One service per test module (start-up costs about a second); every test uses its own
agents (the ``agents`` fixture logs them out afterwards) so tests do not interfere.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
import uvicorn
import websockets
from pydantic import SecretStr

from app import models
from app.auth import Principal, Role, create_access_token
from app.db import Database, open_database
from app.live import LiveOptions
from app.main import create_app
from app.settings import AuthSettings, DatabaseSettings, OutcomeSettings, Settings
from cti.simulator import AsteriskSimulator, DeviceProfile, SimUser
from cti.types import AmiServer
from tests.polling import wait_for
from tests.serving import serve, shut_down

SIM_USER = "switchboard"
SIM_SECRET = "sim-secret"
VIP_PHONE = "13800138000"
PLAIN_PHONE = "13900139000"

# Queues: (id, name, dnis, ring_timeout_s, wrapup_s)
QUEUES = [
    (1, "support", "5000", 2.0, 0.5),
    (2, "sales", "5001", 2.0, 0.5),
    (3, "complaints", "5002", 2.0, 60.0),  # long wrap-up: ended by the disposition
]
AGENT_IDS = list(range(1001, 1031))


async def populate(db: Database) -> None:
    """A small, deterministic call center: 3 queues, 30 agents, a VIP customer."""
    today = date.today()
    async with db.sessionmaker() as s:
        s.add(models.Skill(id=1, name="general"))
        for qid, name, _dnis, ring, wrap in QUEUES:
            s.add(
                models.Queue(id=qid, name=name, ring_timeout_s=ring, wrapup_s=wrap, escalation=[])
            )
        await s.flush()
        for qid, _, dnis, _, _ in QUEUES:
            s.add(models.QueueDnis(dnis=dnis, queue_id=qid))
            s.add(models.QueueSkill(queue_id=qid, skill_id=1, min_level=1))
        for aid in AGENT_IDS:
            s.add(models.Agent(id=aid, name=f"Agent {aid}", device=f"PJSIP/{aid}"))
        await s.flush()
        for aid in AGENT_IDS:
            s.add(models.AgentSkill(agent_id=aid, skill_id=1, level=3))
            # The login of each agent, with the agent's id as user id (``Service.token``);
            # no usable password: tests mint tokens, which must name a real user.
            s.add(
                models.User(
                    id=aid,
                    username=f"agent{aid}",
                    password_hash="!",
                    role=models.Role.AGENT,
                    agent_id=aid,
                )
            )
            for qid, *_ in QUEUES:
                s.add(models.AgentQueue(agent_id=aid, queue_id=qid))
        s.add(models.Disposition(code="resolved", label="Resolved"))
        vip = models.Customer(name="张伟", vip=True, member=True)
        s.add(vip)
        plain = models.Customer(name="Li Na", vip=False)
        s.add(plain)
        await s.flush()
        s.add(models.CustomerPhone(phone=VIP_PHONE, customer_id=vip.id, label="mobile"))
        s.add(models.CustomerPhone(phone=PLAIN_PHONE, customer_id=plain.id, label="mobile"))
        s.add(
            models.Product(
                customer_id=vip.id,
                model="X1",
                sku="X1-128",
                purchase_date=today - timedelta(days=10),
            )
        )
        s.add(
            models.Interaction(
                customer_id=vip.id,
                at=datetime.now(UTC) - timedelta(days=3),
                channel="phone",
                summary="asked about delivery",
            )
        )
        await s.commit()


def service_settings(database: DatabaseSettings, spill_dir: Path, name: str) -> Settings:
    """Settings of a service under test: not demo, its own secrets, outcomes every 50 ms."""
    return Settings(
        demo=False,
        database=database,
        auth=AuthSettings(
            jwt_secret=SecretStr(f"{name}-tests-secret-" + "x" * 32),
            admin_password=SecretStr(f"{name}-tests-admin-password"),
        ),
        outcomes=OutcomeSettings(flush_interval_s=0.05, spill_dir=spill_dir),
    )


@dataclass
class Service:
    """The service under test on uvicorn (loopback); ``stop()``/``start()`` take it away
    and bring it back on the same port."""

    app: Any
    settings: Settings
    sims: list[AsteriskSimulator]
    port: int = 0
    tokens: dict[str, str] = field(default_factory=dict)
    free_agents: list[int] = field(default_factory=lambda: list(AGENT_IDS))
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def start(self, **serve_options: Any) -> None:
        """Serve the app (lifespan on) and wait until every simulator's AMI link is up."""
        self._server, self._task, self.port = await serve(
            self.app, name="uvicorn-under-test", port=self.port, **serve_options
        )

        def linked() -> bool:
            cc = self.callcenter
            if cc is None:
                return False
            status = cc.server_status()
            return len(status) == len(self.sims) and all(s.get("connected") for s in status)

        await wait_for(linked, what="AMI links connected")

    async def stop(self) -> None:
        """A clean stop: uvicorn exits, the lifespan with it (live state saved)."""
        if self._server is None or self._task is None:
            return
        await shut_down(self._server, self._task)
        self._server = self._task = None

    async def hangup_all(self) -> None:
        """End every call still in progress (so no call leaks into the next test)."""
        from routing.commands import HangupCall

        cc = self.callcenter
        for call_id in list(cc.state.calls):
            cc.link.execute(HangupCall(call_id))  # failures come back through the sink
        await wait_for(lambda: not cc.state.calls, what="all calls ended")

    @property
    def callcenter(self) -> Any:
        return self.app.state.callcenter

    @property
    def db(self) -> Database:
        db: Database = self.app.state.db
        return db

    def token(self, role: str = "supervisor", agent_id: str | None = None) -> str:
        key = f"{role}:{agent_id}"
        if key not in self.tokens:
            principal = Principal(  # user 1: the bootstrap admin; agents: see ``populate``
                user_id="1" if agent_id is None else agent_id,
                username=key,
                role=Role(role),
                agent_id=agent_id,
            )
            self.tokens[key] = create_access_token(principal, self.settings)
        return self.tokens[key]

    def client(self, role: str = "supervisor", agent_id: str | None = None) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self.token(role, agent_id)}"},
            timeout=10.0,
        )

    async def ws(self, path: str, role: str = "supervisor", agent_id: str | None = None) -> Any:
        return await websockets.connect(
            f"{self.ws_url}{path}?token={self.token(role, agent_id)}", open_timeout=5
        )

    async def agent_state(self, agent_id: int | str) -> dict[str, Any]:
        async with self.client() as c:
            r = await c.get(f"/api/v1/agents/{agent_id}/state")
            r.raise_for_status()
            data: dict[str, Any] = r.json()
            return data

    async def call_row(self, call_id: str) -> models.Call | None:
        import sqlalchemy as sa

        async with self.db.sessionmaker() as s:
            row: models.Call | None = await s.scalar(
                sa.select(models.Call).where(models.Call.call_id == call_id)
            )
            return row

    async def call_events(self, call_id: str) -> list[str]:
        import sqlalchemy as sa

        async with self.db.sessionmaker() as s:
            rows = await s.scalars(
                sa.select(models.CallEvent.kind)
                .where(models.CallEvent.call_id == call_id)
                .order_by(models.CallEvent.at, models.CallEvent.id)
            )
            return list(rows)


async def inbox_barrier(cc: Any) -> None:
    """Return once the driver has processed everything queued on its inbox before."""
    passed = asyncio.Event()
    cc.inject_callable(passed.set)
    await asyncio.wait_for(passed.wait(), 30.0)


def sim_server(sim: AsteriskSimulator, user: str = SIM_USER, secret: str = SIM_SECRET) -> AmiServer:
    return AmiServer(sim.name, "127.0.0.1", sim.port, user, secret)


async def start_service(
    settings: Settings,
    sims: list[AsteriskSimulator],
    *,
    serve_options: dict[str, Any] | None = None,
    **live_options: Any,
) -> Service:
    """The one way the end-to-end tests run the service: ``create_app`` against the
    simulators (wallboard every 0.2 s, CRM look-ups up to 2 s unless ``live_options``
    say otherwise: ``LiveOptions`` fields), served and linked."""
    options = LiveOptions(
        servers=[sim_server(s) for s in sims], wallboard_interval_s=0.2, lookup_timeout_s=2.0
    )
    app = create_app(settings, live_options=replace(options, **live_options))
    svc = Service(app=app, settings=settings, sims=sims)
    await svc.start(**(serve_options or {}))
    return svc


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def service(
    fresh_database_settings: Callable[[], Awaitable[Any]], tmp_path_factory: Any
) -> AsyncIterator[Service]:
    db_settings = await fresh_database_settings()
    async with open_database(db_settings, migrate=False) as db:
        await populate(db)
    settings = service_settings(db_settings, tmp_path_factory.mktemp("spill"), "live")
    sims = [
        AsteriskSimulator(name=name, users={SIM_USER: SimUser(SIM_SECRET)}, seed=i)
        for i, name in enumerate(("pbx1", "pbx2"))
    ]
    for sim in sims:
        await sim.start()
        for aid in AGENT_IDS:
            sim.set_device(f"PJSIP/{aid}", DeviceProfile(ring_s=0.3, talk_s=60.0))
    svc = await start_service(settings, sims)
    try:
        yield svc
    finally:
        await svc.stop()
        for sim in sims:
            await sim.close()


@pytest_asyncio.fixture(loop_scope="session")
async def agents(service: Service, request: Any) -> AsyncIterator[Callable[[int], list[str]]]:
    """``take(n)``: n agent ids no other test uses; logged out after the test."""
    taken: list[str] = []
    # A previous test may have dropped or restarted a simulator: start from linked servers.
    await wait_for(
        lambda: all(s.get("connected") for s in service.callcenter.server_status()),
        what="AMI links connected",
    )

    def take(n: int) -> list[str]:
        ids = [str(service.free_agents.pop(0)) for _ in range(n)]
        taken.extend(ids)
        return ids

    yield take
    await service.hangup_all()
    for agent_id in taken:
        with contextlib.suppress(Exception):  # already logged out
            await service.callcenter.force_state(agent_id, "logged_out")


class Recorder:
    """Reads a websocket in the background, stamping each message on arrival."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.messages: list[tuple[float, dict[str, Any]]] = []
        self.closed: tuple[int | None, str] | None = None
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            async for raw in self.ws:
                self.messages.append((time.perf_counter(), json.loads(raw)))
        except websockets.ConnectionClosed:
            pass
        self.closed = (self.ws.close_code, self.ws.close_reason)

    def of(self, kind: str, **match: Any) -> list[tuple[float, dict[str, Any]]]:
        return [
            (t, m)
            for t, m in self.messages
            if m.get("type") == kind and all(m.get(k) == v for k, v in match.items())
        ]

    async def wait(self, kind: str, timeout: float = 30.0, **match: Any) -> dict[str, Any]:
        found = await wait_for(lambda: self.of(kind, **match), timeout, what=f"{kind} {match}")
        return found[0][1]  # type: ignore[no-any-return]

    async def close(self) -> None:
        await self.ws.close()
        await asyncio.wait_for(self._task, 5)


class AmiObserver:
    """A second, passive AMI session on a simulator: stamps DialBegin events on arrival."""

    def __init__(self, sim: AsteriskSimulator) -> None:
        self.sim = sim
        self.dial_begins: list[tuple[float, dict[str, str]]] = []
        self._task: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def start(self) -> None:
        from cti.wire import AmiParser, encode

        reader, writer = await asyncio.open_connection("127.0.0.1", self.sim.port)
        self._writer = writer
        writer.write(
            encode(
                {"Action": "Login", "Username": SIM_USER, "Secret": SIM_SECRET, "ActionID": "o1"}
            )
        )
        await writer.drain()
        parser = AmiParser(expect_banner=True)
        logged_in = asyncio.get_running_loop().create_future()

        async def run() -> None:
            while data := await reader.read(65536):
                now = time.perf_counter()
                for msg in parser.feed(data):
                    if msg.kind == "response" and not logged_in.done():
                        logged_in.set_result(msg.name)
                    if msg.kind == "event" and msg.name == "DialBegin":
                        self.dial_begins.append((now, msg.as_dict()))

        self._task = asyncio.create_task(run())
        assert await asyncio.wait_for(logged_in, 5) == "Success"

    def rang(self, device: str) -> list[float]:
        ext = device.split("/", 1)[1]
        return [
            t
            for t, ev in self.dial_begins
            if ext in ev.get("DialString", "") or ext in ev.get("DestChannel", "")
        ]

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await self._task
