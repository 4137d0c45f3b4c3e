"""Demo mode: a small call center that runs by itself (``make run`` with nothing configured).

Used by the composition root (``app.main``) only when ``settings.demo_mode`` is on and
no AMI server was given; the live runtime itself knows nothing of it.  Two phases,
because the call center sits in between:

1. ``DemoCenter.open(settings, database)`` (before the live runtime): seed the demo data
   if the database is empty, start the built-in ``AsteriskSimulator`` on loopback with a
   random secret; ``servers`` says where the runtime connects.
2. ``demo.drive(callcenter)`` (after the runtime started): every demo agent's device
   becomes a simulated phone that answers after a ring of 1-3 s and talks for an
   exponential time around ``demo_traffic.mean_talk_s``; the agents log in and become
   ready; callers dial the seeded DNIS numbers with the seeded customers' phone numbers
   (so screen pops hit), arriving as a Poisson process of ``calls_per_second``.

On exit the traffic stops first (``drive``), the simulator last (``open``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import sqlalchemy as sa

from app import models
from app.db import Database
from app.live.callcenter import CallCenter
from app.settings import Settings
from cti.simulator import AsteriskSimulator, DeviceProfile, SimUser
from cti.types import AmiServer

logger = logging.getLogger(__name__)

DEMO_USER = "switchboard"
_CHARS = "abcdefghjkmnpqrstuvwxyz23456789"


class DemoCenter:
    """The demo's simulator and data; see the module docstring."""

    def __init__(
        self, settings: Settings, database: Database, simulator: AsteriskSimulator, secret: str
    ) -> None:
        self.settings = settings
        self.database = database
        self.simulator = simulator
        self.servers = (AmiServer("demo", "127.0.0.1", simulator.port, DEMO_USER, secret),)

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: Settings, database: Database) -> AsyncIterator[DemoCenter]:
        """Seed (an empty database only) and start the simulator; close it on exit."""
        if await _database_is_empty(database):
            from app.seed import seed

            logger.info("demo mode: seeding demo data")
            await seed(
                database,
                customers=settings.demo_traffic.customers,
                agents=settings.demo_traffic.agents,
                queues=settings.demo_traffic.queues,
                reset=False,
            )
        secret = "demo-" + "".join(random.choices(_CHARS, k=16))
        simulator = AsteriskSimulator(
            users={DEMO_USER: SimUser(secret)},
            host="127.0.0.1",
            port=settings.demo_traffic.simulator_port,
            # deploy/asterisk's inbound context: ACDArrive, then a short greeting
            # (the screen pop is prefetched while the caller hears it).
            arrive_event=True,
            greeting_s=2.0,
        )
        await simulator.start()
        try:
            yield cls(settings, database, simulator, secret)
        finally:
            await simulator.close()

    @asynccontextmanager
    async def drive(self, callcenter: CallCenter) -> AsyncIterator[None]:
        """Simulated phones, ready agents and Poisson callers until exit."""
        profile = _device_profile(self.settings)
        for row in callcenter.agents.values():
            self.simulator.set_device(row.device, profile)
        await _agents_ready(callcenter)
        callers = await _caller_numbers(self.database)
        async with AsyncExitStack() as stack:
            traffic = asyncio.create_task(
                _traffic(self.simulator, callcenter, self.settings, callers), name="demo-traffic"
            )

            async def stop() -> None:
                traffic.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await traffic

            stack.push_async_callback(stop)
            logger.info("demo mode: simulator on 127.0.0.1:%d", self.simulator.port)
            yield


async def _database_is_empty(database: Database) -> bool:
    async with database.sessionmaker() as session:
        count = await session.scalar(sa.select(sa.func.count()).select_from(models.Agent))
        return not count


async def _caller_numbers(database: Database, limit: int = 2000) -> list[str]:
    async with database.sessionmaker() as session:
        rows = await session.scalars(
            sa.select(models.CustomerPhone.phone).order_by(models.CustomerPhone.phone).limit(limit)
        )
        return list(rows)


def _device_profile(settings: Settings) -> DeviceProfile:
    mean_talk = max(1.0, settings.demo_traffic.mean_talk_s)
    return DeviceProfile(
        ring_s=lambda rng: rng.uniform(1.0, 3.0),
        answer_prob=0.97,
        talk_s=lambda rng: min(rng.expovariate(1.0 / mean_talk), 6 * mean_talk),
        agent_hangs_up_prob=0.5,
    )


async def _agents_ready(callcenter: CallCenter) -> None:
    for agent_id in list(callcenter.agents):
        try:
            await callcenter.login(agent_id)
            await callcenter.ready(agent_id)
        except Exception as exc:  # noqa: BLE001 — demo only: one agent left out must not stop the demo
            logger.warning("demo agent %s could not be made ready: %s", agent_id, exc)


async def _traffic(
    simulator: AsteriskSimulator, callcenter: CallCenter, settings: Settings, callers: list[str]
) -> None:
    """Poisson arrivals at ``calls_per_second`` onto the configured DNIS numbers."""
    rate = settings.demo_traffic.calls_per_second
    if rate <= 0:
        return
    rng = random.Random(7)
    while True:
        await asyncio.sleep(rng.expovariate(rate))
        dnis = sorted(callcenter.dnis)
        if not dnis:
            continue
        caller = rng.choice(callers) if callers else f"1380013{rng.randrange(10_000):04d}"
        patience = min(rng.expovariate(1 / 90.0), 600.0)
        try:
            simulator.place_call(
                dnis=rng.choice(dnis),
                caller_num=caller,
                caller_name="Demo caller",
                patience_s=max(3.0, patience),
            )
        except Exception as exc:  # noqa: BLE001 — demo only: one call not placed must not stop the traffic
            logger.warning("demo traffic: could not place a call: %s", exc)
