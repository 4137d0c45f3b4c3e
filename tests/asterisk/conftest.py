"""The opt-in real-Asterisk suite: a lab Asterisk 22 and the service (``python -m app``).

Runs only when ``ASTERISK_PREFIX`` names an installed Asterisk 22 (``make test-asterisk``;
building one: docs/asterisk.md), or ``ASTERISK_AMI`` (``host:port``) a staging PBX prepared
as docs/asterisk.md says; otherwise every test module skips itself at collection
(``lab.require_asterisk()``), with one line saying why.

One Asterisk and one service for the session (start-up: a few seconds, most of it the
embedded PostgreSQL's initdb).  Every test makes its own queue (its own DNIS) and its own
agents through the REST API, so tests never share calls or agents.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.asterisk.lab import (
    AMI_ENV,
    LAB_AGENT_CONTEXT,
    LAB_SECRET,
    LAB_USER,
    PREFIX_ENV,
    REPO_ROOT,
    SERVER_NAME,
    SWITCHBOARD_USER,
    AmiClient,
    LabConfig,
    Process,
    free_port,
    start_asterisk,
    stop_embedded_postgres,
)
from tests.polling import wait_for

ADMIN_PASSWORD = "asterisk-suite-admin-password"


@pytest.fixture(scope="session")
def lab_root() -> Iterator[Path]:
    """A short private directory (Asterisk's control socket path must stay short)."""
    root = Path(tempfile.mkdtemp(prefix="sb-ast-"))
    yield root
    if os.environ.get("ASTERISK_KEEP_LAB") != "1":
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Pbx:
    """Where the suite's Asterisk is: the lab one it started, or a staging PBX (``ASTERISK_AMI``)."""

    host: str
    port: int
    switchboard_secret: str
    lab_secret: str
    greeting: str | None  # a recording's path on the Asterisk host, without extension
    process: Process | None = None

    def tail(self) -> str:
        return self.process.tail() if self.process is not None else f"{self.host}:{self.port}"


@pytest.fixture(scope="session")
def asterisk(lab_root: Path) -> Iterator[Pbx]:
    external = os.environ.get(AMI_ENV, "")
    if external:  # a staging PBX prepared as docs/asterisk.md says; nothing is started
        host, _, port = external.rpartition(":")
        yield Pbx(
            host=host,
            port=int(port),
            switchboard_secret=os.environ[f"{AMI_ENV}_SWITCHBOARD_SECRET"],
            lab_secret=os.environ[f"{AMI_ENV}_LAB_SECRET"],
            greeting=os.environ.get("ASTERISK_GREETING") or None,
        )
        return
    given = os.environ.get(PREFIX_ENV, "")
    prefix = Path(given).expanduser().resolve()
    binary = prefix / "sbin" / "asterisk"
    if not given or not binary.exists():
        pytest.fail(f"{PREFIX_ENV}={given!r}: no {binary}")
    cfg = LabConfig(prefix=prefix, root=lab_root / "asterisk", ami_port=free_port())
    cfg.write()
    proc = start_asterisk(cfg)
    try:
        yield Pbx(
            host="127.0.0.1",
            port=cfg.ami_port,
            switchboard_secret=cfg.switchboard_secret,
            lab_secret=LAB_SECRET,
            greeting=str(cfg.greeting),
            process=proc,
        )
    finally:
        proc.stop()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def ami(asterisk: Pbx) -> AsyncIterator[AmiClient]:
    """The lab's observer session: every event (no filter), and the callers' Originates."""
    client = AmiClient(asterisk.host, asterisk.port, LAB_USER, asterisk.lab_secret)
    try:
        await client.connect()
        if asterisk.process is not None:  # a running PBX booted long ago
            await client.fully_booted()
    except (OSError, RuntimeError, AssertionError, TimeoutError) as exc:
        await client.close()
        pytest.fail(f"Asterisk not reachable over AMI: {exc}\n{asterisk.tail()}")
    yield client
    await client.close()


@dataclass
class Service:
    """``python -m app`` against the lab Asterisk, embedded PostgreSQL asked for explicitly."""

    port: int
    process: Process
    pgdata: Path
    token: str = ""
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=15.0,
        )

    def next_id(self) -> int:
        return next(self._ids)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def service(asterisk: Pbx, ami: AmiClient, lab_root: Path) -> AsyncIterator[Service]:
    port = free_port()
    home = lab_root / "service"
    home.mkdir()
    pgdata = home / "pg"
    servers = [
        {
            "name": SERVER_NAME,
            "host": asterisk.host,
            "port": asterisk.port,
            "username": SWITCHBOARD_USER,
            "secret": asterisk.switchboard_secret,
        }
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")} | {
        "PYTHONPATH": str(REPO_ROOT),
        "SWITCHBOARD_HOST": "127.0.0.1",
        "SWITCHBOARD_PORT": str(port),
        "SWITCHBOARD_LOG_LEVEL": "INFO",
        "SWITCHBOARD_AMI__SERVERS": json.dumps(servers),
        "SWITCHBOARD_DATABASE__EMBEDDED": "true",
        # The lab's agent phones are Local channels in their own context.
        "SWITCHBOARD_DEVICES__LOCAL_CONTEXTS": json.dumps([LAB_AGENT_CONTEXT]),
        "SWITCHBOARD_DATABASE__EMBEDDED_DIR": str(pgdata),
        "SWITCHBOARD_AUTH__JWT_SECRET": "asterisk-suite-jwt-secret-" + "x" * 32,
        "SWITCHBOARD_AUTH__ADMIN_PASSWORD": ADMIN_PASSWORD,
        "SWITCHBOARD_OUTCOMES__FLUSH_INTERVAL_S": "0.05",
        "SWITCHBOARD_OUTCOMES__SPILL_DIR": str(home / "spill"),
    }
    # cwd: a directory of its own, so no .env of the checkout is read.
    proc = Process([sys.executable, "-m", "app"], env=env, cwd=home, log=home / "service.log")
    svc = Service(port=port, process=proc, pgdata=pgdata)
    try:
        async with httpx.AsyncClient(base_url=svc.base_url, timeout=5.0) as http:

            async def ready() -> bool:
                if not proc.alive():
                    raise AssertionError(f"the service exited:\n{proc.tail()}")
                try:
                    r = await http.get("/ready")
                except httpx.TransportError:
                    return False
                return r.status_code == 200

            await wait_for(ready, timeout=120, interval=0.2, what="service ready")
            r = await http.post(
                "/api/v1/auth/token", json={"username": "admin", "password": ADMIN_PASSWORD}
            )
            r.raise_for_status()
            svc.token = r.json()["access_token"]
        yield svc
    finally:
        proc.stop(timeout=30)
        stop_embedded_postgres(pgdata)


@dataclass
class Center:
    """What one test builds through the REST API: its queue, its agents, its callers."""

    svc: Service
    ami: AmiClient
    http: httpx.AsyncClient
    queue_id: int = 0
    dnis: str = ""
    agents: list[str] = field(default_factory=list)
    devices: dict[str, str] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    async def queue(
        self, *, ring_timeout_s: float = 3.0, wrapup_s: float = 0.0, **fields: Any
    ) -> int:
        """This test's queue (``fields``: more of ``POST /queues``, e.g. ``max_wait_s``)."""
        n = self.svc.next_id()
        self.dnis = f"7{n:05d}"
        r = await self.http.post(
            "/api/v1/queues",
            json={
                "name": f"lab-{n}",
                "ring_timeout_s": ring_timeout_s,
                "wrapup_s": wrapup_s,
                "dnis": [self.dnis],
                **fields,
            },
        )
        assert r.status_code == 201, r.text
        self.queue_id = r.json()["id"]
        await self._wait_live_queue()
        return self.queue_id

    async def _wait_live_queue(self) -> None:
        async def known() -> bool:
            r = await self.http.get("/api/v1/live/queues")
            return r.status_code == 200 and any(self.dnis in q.get("dnis", []) for q in r.json())

        await wait_for(known, what=f"queue {self.queue_id} live")

    async def agent(self, phone: str, *, max_missed: int = 3, ready: bool = True) -> str:
        """An agent in this test's queue on its own lab phone (``TALK-<s>``, ``MUTE``, ``BUSY``);
        its device is ``Local/<phone>-<n>@lab-agents`` (``devices[agent_id]``)."""
        n = self.svc.next_id()
        device = f"Local/{phone}-{n}@{LAB_AGENT_CONTEXT}"
        r = await self.http.post(
            "/api/v1/agents",
            json={
                "name": f"Lab agent {n}",
                "device": device,
                "max_missed": max_missed,
                "queue_ids": [self.queue_id],
            },
        )
        assert r.status_code == 201, r.text
        agent_id: str = r.json()["agent_id"]
        self.devices[agent_id] = device

        async def logged_in() -> bool:  # a new agent reaches the live runtime shortly
            r = await self.http.post(f"/api/v1/agents/{agent_id}/login", json={})
            return r.status_code == 200

        await wait_for(logged_in, what=f"agent {agent_id} logged in")
        if ready:
            await self.ready(agent_id)
        self.agents.append(agent_id)
        return agent_id

    async def ready(self, agent_id: str) -> None:
        r = await self.http.post(f"/api/v1/agents/{agent_id}/ready")
        assert r.status_code == 200, r.text

    async def state(self, agent_id: str) -> dict[str, Any]:
        r = await self.http.get(f"/api/v1/agents/{agent_id}/state")
        assert r.status_code == 200, r.text
        data: dict[str, Any] = r.json()
        return data

    async def call(
        self, stay_s: float, *, caller: str = "13900000000", greeting: bool = False
    ) -> str:
        """A caller who stays ``stay_s`` seconds after the answer; returns the call id."""
        uid = f"lab{self.svc.next_id()}-{time.time_ns() % 10**9}"
        headers = {
            "Channel": f"Local/{self.dnis}@lab-trunk",
            "Application": "Wait",
            "Data": f"{stay_s:g}",
            "CallerID": f'"Lab caller" <{caller}>',
            "Async": "true",
            # Not a prefix of the other: Asterisk finds channels by id prefix.
            "ChannelId": f"orig-{uid}",
            "OtherChannelId": uid,
        }
        if greeting:
            cfg_greeting = self.ami_greeting
            headers["Variable"] = f"LAB_GREETING={cfg_greeting}"
        answer = await self.ami.send("Originate", headers)
        assert answer.name == "Success", answer.as_dict()
        call_id = f"{SERVER_NAME}/{uid}"
        self.calls.append(call_id)
        return call_id

    ami_greeting: str = ""

    async def rows(self) -> list[dict[str, Any]]:
        """Every outcome row of this test's queue (REST, all pages)."""
        rows: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"queue_id": self.queue_id, "limit": 200}
            if cursor:
                params["cursor"] = cursor
            r = await self.http.get("/api/v1/calls", params=params)
            assert r.status_code == 200, r.text
            page = r.json()
            rows.extend(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                return rows

    async def row(self, call_id: str, timeout: float = 30.0) -> dict[str, Any]:
        """The call's row once it has ended (``GET /calls/{call_id}``)."""

        async def ended() -> dict[str, Any] | None:
            r = await self.http.get(f"/api/v1/calls/{call_id}")
            if r.status_code != 200:
                return None
            data: dict[str, Any] = r.json()
            return data if data.get("ended_at") else None

        found: dict[str, Any] = await wait_for(
            ended, timeout, interval=0.1, what=f"row of {call_id}"
        )
        return found

    def uid(self, call_id: str) -> str:
        return call_id.split("/", 1)[1]

    def events_of(self, call_id: str, name: str) -> list[Any]:
        uid = self.uid(call_id)
        return self.ami.of(name, lambda e: e.get("Uniqueid") == uid)


@pytest_asyncio.fixture(loop_scope="session")
async def center(service: Service, ami: AmiClient, asterisk: Pbx) -> AsyncIterator[Center]:
    async with service.client() as http:
        c = Center(svc=service, ami=ami, http=http)
        c.ami_greeting = asterisk.greeting or ""
        yield c
        for agent_id in c.agents:  # free the lab for the next test
            await http.post(f"/api/v1/agents/{agent_id}/force", json={"state": "logged_out"})
