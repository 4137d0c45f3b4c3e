"""``live_runtime``: compose and run the live call center (the lifespan's live part).

Start order (stopped in reverse): outcome writer -> routing engine + call center (loads
the configuration from the database) -> [demo: data seeded if the database is empty,
AMI simulator on loopback] -> telephony link (one AMI consumer per server) -> [demo:
agents logged in and ready, Poisson traffic].  The call center consumes events before
the link connects, so nothing the link reports is lost; on the way down it stops
routing before the link closes, and the outcome writer closes last (it flushes or
spills what is queued).

Restart (nothing lost, no agent stuck): the live state store (``app.live.persist``)
keeps every agent's session and every call in progress in PostgreSQL, written off the
routing path; ``CallCenter.close`` saves the last of it after routing stopped.  Calls
still in progress at a clean shutdown get no outcome row *then*: the next start adopts
them from Asterisk with their history (and their one ``calls`` row is written when they
end), or ends them once as "ended-while-down" if Asterisk no longer has them (see
``CallCenter``'s theory of operation).

Demo mode (``settings.demo_mode``: no AMI server configured) runs the built-in
``AsteriskSimulator``: every demo agent's device is a simulated phone that answers
after a ring of 1-3 s and talks for an exponential time around
``demo_traffic.mean_talk_s``; callers dial the seeded DNIS numbers with the seeded
customers' phone numbers (so screen pops hit), arriving as a Poisson process of
``demo_traffic.calls_per_second``.

Overrides (tests): ``servers=[AmiServer]`` (connect there instead of the settings),
``simulator=`` an already started simulator (connect to it; the runtime does not own
it), ``demo_traffic=False``, ``auto_ready=False``, ``seed_demo=False``, ``clock=``,
``engine=``, and the ``CallCenter`` knobs ``lookup_timeout_s``,
``offer_push_timeout_s``, ``wallboard_interval_s``, ``hours_interval_s``,
``default_queue_id``, ``restore_timeout_s``, ``ws_queue_size``, and
``state_interval_s`` (live state store flush period).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from app import models
from app.live.callcenter import CallCenter
from app.live.hub import Hub
from app.live.wallboard import Wallboard
from app.settings import Settings
from cti.types import AmiServer, Dialplan

logger = logging.getLogger(__name__)

# (young, middle, full) collection thresholds for the service process; CPython's default
# is (700, 10, 10).  See the comment where they are applied.
GC_THRESHOLDS = (5_000, 4, 100)


def _freeze_after_full_collections(loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
    """After every full (generation 2) collection, ``gc.freeze()`` the survivors (run on
    the event loop right after the collection).  Returns the function that undoes it."""
    frozen = {"count": 0}

    def freeze() -> None:
        gc.freeze()
        frozen["count"] += 1
        logger.debug(
            "gc: survivors of a full collection frozen (%d objects)", gc.get_freeze_count()
        )

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "stop" and info.get("generation") == 2 and not loop.is_closed():
            loop.call_soon_threadsafe(freeze)

    gc.callbacks.append(on_gc)

    def remove() -> None:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(on_gc)

    return remove


DEMO_USER = "switchboard"
DEMO_CUSTOMERS = 20_000

_CALLCENTER_KNOBS = (
    "lookup_timeout_s",
    "offer_push_timeout_s",
    "wallboard_interval_s",
    "hours_interval_s",
    "default_queue_id",
    "restore_timeout_s",
)
_KNOWN_OVERRIDES = frozenset(
    {
        *_CALLCENTER_KNOBS,
        "servers",
        "simulator",
        "demo_traffic",
        "auto_ready",
        "seed_demo",
        "clock",
        "engine",
        "ws_queue_size",
        "link_factory",
        "state_interval_s",
    }
)


def _local_today(now: float) -> Any:
    tz = datetime.now(UTC).astimezone().tzinfo
    return datetime.fromtimestamp(now, tz).date()


def make_lookup(database: Any) -> Callable[[str, float], Any]:
    """The CRM screen-pop lookup bound to the database (one ORM session per lookup)."""
    from app.crm import lookup_caller

    async def lookup(phone: str, now: float) -> Any:
        async with database.sessionmaker() as session:
            return await lookup_caller(session, phone, today=_local_today(now))

    return lookup


async def open_fast_lookup(
    database: Any, stack: AsyncExitStack, *, pool_size: int = 8
) -> Callable[[str, float], Any]:
    """The screen-pop lookup on its own small asyncpg pool (the routing path's query).

    The ORM session path costs a pool checkout with pre-ping, BEGIN, the query and
    ROLLBACK per call; under load that was most of the lookup (load test, run A), and a
    lookup cancelled by its timeout made SQLAlchemy terminate the pooled connection.
    A plain pool runs just the prepared statement.  Connection settings come from the
    service's engine, so the embedded and configured databases both work.
    """
    import asyncpg

    from app.crm import lookup_caller_asyncpg

    engine = database.engine
    _args, kwargs = engine.dialect.create_connect_args(engine.url)
    pool = await asyncpg.create_pool(min_size=1, max_size=pool_size, **kwargs)
    stack.push_async_callback(pool.close)

    async def lookup(phone: str, now: float) -> Any:
        return await lookup_caller_asyncpg(pool, phone, today=_local_today(now))

    return lookup


def servers_from_settings(settings: Settings) -> list[AmiServer]:
    return [
        AmiServer(
            name=s.name,
            host=s.host,
            port=s.port,
            username=s.username,
            secret=s.secret.get_secret_value(),
            tls=s.tls,
        )
        for s in settings.ami.servers
    ]


async def _database_is_empty(database: Any) -> bool:
    async with database.sessionmaker() as session:
        count = await session.scalar(sa.select(sa.func.count()).select_from(models.Agent))
        return not count


async def _demo_caller_numbers(database: Any, limit: int = 2000) -> list[str]:
    async with database.sessionmaker() as session:
        rows = await session.scalars(
            sa.select(models.CustomerPhone.phone).order_by(models.CustomerPhone.phone).limit(limit)
        )
        return list(rows)


def _demo_profile(settings: Settings) -> Any:
    from cti.simulator import DeviceProfile

    mean_talk = max(1.0, settings.demo_traffic.mean_talk_s)
    return DeviceProfile(
        ring_s=lambda rng: rng.uniform(1.0, 3.0),
        answer_prob=0.97,
        talk_s=lambda rng: min(rng.expovariate(1.0 / mean_talk), 6 * mean_talk),
        agent_hangs_up_prob=0.5,
    )


async def _demo_traffic(
    simulator: Any, callcenter: CallCenter, settings: Settings, callers: list[str]
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
        except Exception as exc:
            logger.warning("demo traffic: could not place a call: %s", exc)


@asynccontextmanager
async def live_runtime(
    settings: Settings, database: Any, **overrides: Any
) -> AsyncIterator[CallCenter]:
    """Start the live call center; yield it; stop everything on exit."""
    unknown = set(overrides) - _KNOWN_OVERRIDES
    if unknown:
        raise TypeError(f"unknown live_runtime overrides: {sorted(unknown)}")
    demo = settings.demo_mode
    external_sim = overrides.get("simulator")
    servers: list[AmiServer] | None = overrides.get("servers")
    clock: Callable[[], float] = overrides.get("clock", time.time)

    async with AsyncExitStack() as stack:
        wants_seed = overrides.get("seed_demo", servers is None and external_sim is None)
        if demo and wants_seed and await _database_is_empty(database):
            from app.seed import seed

            logger.info("demo mode: seeding demo data")
            await seed(
                database,
                customers=DEMO_CUSTOMERS,
                agents=settings.demo_traffic.agents,
                queues=settings.demo_traffic.queues,
                reset=False,
            )

        from app.outcomes import OutcomeWriter

        outcomes = OutcomeWriter(
            database.sessionmaker,
            batch_size=settings.outcomes.batch_size,
            flush_interval_s=settings.outcomes.flush_interval_s,
            spill_dir=settings.outcomes.spill_dir,
            clock=clock,
        )
        await outcomes.start()
        stack.push_async_callback(outcomes.close)

        engine = overrides.get("engine")
        if engine is None:
            from routing.engine import RoutingEngine

            engine = RoutingEngine()
        from app.live.persist import StateStore

        store = StateStore(
            database.sessionmaker, interval_s=float(overrides.get("state_interval_s", 0.5))
        )
        knobs = {k: overrides[k] for k in _CALLCENTER_KNOBS if k in overrides}
        queue_size = int(overrides.get("ws_queue_size", 256))
        callcenter = CallCenter(
            engine=engine,
            database=database,
            outcomes=outcomes,
            lookup=await open_fast_lookup(database, stack),
            clock=clock,
            agent_hub=Hub("agents", queue_size=queue_size),
            wallboard_hub=Hub("wallboard", queue_size=max(4, queue_size // 8)),
            wallboard=Wallboard(now=clock()),
            store=store,
            **knobs,
        )
        await callcenter.start()
        stack.push_async_callback(callcenter.close)
        # The routing state loaded above lives as long as the service: move it out of the
        # collector's view so full collections stop rescanning it (they caused the
        # multi-millisecond decision stalls measured in bench/routing_bench.py).
        gc.freeze()
        # A call's objects (screen pop, metadata, records) live for its whole talk time,
        # so they survive the young generations and, at tens of calls per second, keep
        # triggering full collections: the load test measured 74 of them in 10 minutes
        # at 75 calls/s, each stopping the event loop for 0.4-1.1 s.  Young collections
        # stay cheap with a larger first threshold; full ones become ~10x rarer.  Most
        # objects are freed by reference counting anyway; only cyclic garbage waits longer.
        gc.set_threshold(*GC_THRESHOLDS)
        # The middle generation holds what survived the young collections since its last
        # collection; at 20 young collections per middle one that was ~200,000 objects
        # and a 150 ms pause (load test, 60 calls/s).  At 4 it stays near 20,000 (~15 ms).
        # What logs in after start (20,000 agents' sessions and indexes) is long-lived
        # too: each full collection is followed by a freeze, so the next one scans only
        # what is newer.  (Cyclic garbage made of objects frozen while alive is never
        # collected; reference counting frees everything else.)
        stack.callback(_freeze_after_full_collections(asyncio.get_running_loop()))

        simulator = external_sim
        if servers is None and simulator is None and demo:
            from cti.simulator import AsteriskSimulator, SimUser

            secret = "demo-" + "".join(random.choices("abcdefghjkmnpqrstuvwxyz23456789", k=16))
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
            stack.push_async_callback(simulator.close)
            servers = [AmiServer("demo", "127.0.0.1", simulator.port, DEMO_USER, secret)]
        elif servers is None and simulator is not None:
            servers = [
                AmiServer(
                    "sim", "127.0.0.1", simulator.port, DEMO_USER, getattr(simulator, "secret", "")
                )
            ]
        elif servers is None:
            servers = servers_from_settings(settings)

        if demo and simulator is not None and external_sim is None:
            profile = _demo_profile(settings)
            for row in callcenter.agents.values():
                simulator.set_device(row.device, profile)

        link_factory = overrides.get("link_factory")
        if link_factory is None:
            from cti.link import TelephonyLink

            link = TelephonyLink(
                servers,
                callcenter.sink,
                dialplan=Dialplan(),
                action_timeout_s=settings.ami.action_timeout_s,
                ping_interval_s=settings.ami.ping_interval_s,
                reconnect_max_s=settings.ami.reconnect_max_s,
            )
        else:
            link = link_factory(servers, callcenter.sink)
        callcenter.attach_link(link)
        await link.start()
        stack.push_async_callback(link.close)
        # Stop routing before the link goes down: no offer is decided against a closing
        # link (callcenter.close is idempotent; the earlier registration covers failures).
        stack.push_async_callback(callcenter.close)

        traffic: asyncio.Task[None] | None = None
        if demo and simulator is not None and external_sim is None:
            if overrides.get("auto_ready", True):
                await _demo_agents_ready(callcenter)
            if overrides.get("demo_traffic", True):
                callers = await _demo_caller_numbers(database)
                traffic = asyncio.create_task(
                    _demo_traffic(simulator, callcenter, settings, callers), name="demo-traffic"
                )

        async def _stop_traffic() -> None:
            if traffic is not None:
                traffic.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await traffic

        stack.push_async_callback(_stop_traffic)
        logger.info(
            "live runtime started: %d AMI server(s)%s",
            len(servers),
            " (demo simulator)" if demo and external_sim is None and simulator else "",
        )
        yield callcenter


async def _demo_agents_ready(callcenter: CallCenter) -> None:
    for agent_id in list(callcenter.agents):
        try:
            await callcenter.login(agent_id)
            await callcenter.ready(agent_id)
        except Exception as exc:
            logger.warning("demo agent %s could not be made ready: %s", agent_id, exc)
