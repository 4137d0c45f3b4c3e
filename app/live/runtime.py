"""``live_runtime``: compose and run the live call center (the lifespan's live part).

Start order (stopped in reverse): outcome writer -> routing engine + call center (loads
the configuration from the database) -> telephony link (one AMI consumer per server).
The call center consumes events before the link connects, so nothing the link reports
is lost; on the way down it stops routing before the link closes, and the outcome writer
closes last (it flushes or spills what is queued).

Restart (nothing lost, no agent stuck): the live state store (``app.live.persist``)
keeps every agent's session and every call in progress in PostgreSQL, written off the
routing path; ``CallCenter.close`` saves the last of it after routing stopped.  Calls
still in progress at a clean shutdown get no outcome row *then*: the next start adopts
them from Asterisk with their history (and their one ``calls`` row is written when they
end), or ends them once as "ended-while-down" if Asterisk no longer has them (see
``CallCenter``'s theory of operation).

This module knows nothing of demo mode: ``app.demo`` seeds the demo data, starts the
AMI simulator and passes its address in ``LiveOptions.servers``.  Process-wide
policies (the garbage collector's tuning) belong to the entry point, ``app.__main__``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime

from app.crm import DEFAULT_WINDOWS, RepeatWindows, ScreenPop
from app.db import Database
from app.fencing import WriteFence
from app.live.callcenter import CallCenter
from app.live.contracts import OutcomeWriterLike
from app.live.fenced import FencedOutcomes, fenced_sink
from app.live.hub import Hub
from app.live.wallboard import Wallboard
from app.settings import Settings
from cti.types import AmiServer, Dialplan, LinkItem
from routing.commands import Command
from routing.engine import RoutingEngine

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class LiveOptions:
    """What a caller may change in the live runtime; the defaults are the service's.

    ``servers``: connect there instead of the AMI servers of the settings (tests,
    benchmarks and the demo simulator).  ``clock`` and ``engine`` replace the wall clock
    and a fresh ``RoutingEngine``.  The rest are the call center's timings and the
    websocket queue size (``wallboard`` hub: an eighth of it, at least 4).
    ``may_send`` and ``write_fence`` come from the leadership (``app.ha``): asked before
    every AMI action, before every link item reaches the call center and every outcome
    record is queued (``app.live.fenced``), checked in every live-state transaction.
    """

    servers: Sequence[AmiServer] | None = None
    clock: Callable[[], float] = time.time
    engine: RoutingEngine | None = None
    lookup_timeout_s: float = 0.3
    offer_push_timeout_s: float = 0.25
    wallboard_interval_s: float = 1.0
    hours_interval_s: float = 30.0
    default_queue_id: str | None = None
    restore_timeout_s: float = 60.0
    ws_queue_size: int = 256
    state_interval_s: float = 0.5  # live state store flush period
    inbox_size: int = 100_000  # the call center's inbox bound (app.live.inbox)
    # Subscribers to the routing notifications (command, now): never await, never raise.
    listeners: tuple[Callable[[Command, float], None], ...] = ()
    may_send: Callable[[], bool] | None = None
    write_fence: WriteFence | None = None


def _local_today(now: float) -> date:
    tz = datetime.now(UTC).astimezone().tzinfo
    return datetime.fromtimestamp(now, tz).date()


ScreenPopLookup = Callable[[str, float], Coroutine[None, None, ScreenPop | None]]


async def open_fast_lookup(
    database: Database,
    stack: AsyncExitStack,
    *,
    pool_size: int = 8,
    windows: RepeatWindows = DEFAULT_WINDOWS,
) -> ScreenPopLookup:
    """The screen-pop lookup on its own small asyncpg pool (the routing path's query).

    The ORM session path costs a pool checkout with pre-ping, BEGIN, the query and
    ROLLBACK per call; under load that was most of the lookup (docs/loadtest.md, run A),
    and a lookup cancelled by its timeout made SQLAlchemy terminate the pooled
    connection.  A plain pool runs just the prepared statement.  Connection settings
    come from the service's engine, so the embedded and configured databases both work.
    """
    import asyncpg

    from app.crm import lookup_caller_asyncpg

    engine = database.engine
    _args, kwargs = engine.dialect.create_connect_args(engine.url)
    pool = await asyncpg.create_pool(min_size=1, max_size=pool_size, **kwargs)
    stack.push_async_callback(pool.close)

    async def lookup(phone: str, now: float) -> ScreenPop | None:
        return await lookup_caller_asyncpg(
            pool,
            phone,
            today=_local_today(now),
            now=datetime.fromtimestamp(now, UTC),
            windows=windows,
        )

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


@asynccontextmanager
async def live_runtime(
    settings: Settings, database: Database, options: LiveOptions | None = None
) -> AsyncIterator[CallCenter]:
    """Start the live call center; yield it; stop everything on exit."""
    options = options if options is not None else LiveOptions()
    clock = options.clock
    servers = list(options.servers) if options.servers is not None else None
    if servers is None:
        servers = servers_from_settings(settings)

    async with AsyncExitStack() as stack:
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
        recorded: OutcomeWriterLike = outcomes
        if options.may_send is not None:  # several processes: a fenced one records nothing
            recorded = FencedOutcomes(outcomes, options.may_send)

        kpi = settings.kpi
        engine = (
            options.engine
            if options.engine is not None
            else RoutingEngine(short_abandon_s=kpi.short_abandon_s)
        )
        from app.live.persist import StateStore

        store = StateStore(
            database.sessionmaker, interval_s=options.state_interval_s, fence=options.write_fence
        )
        queue_size = options.ws_queue_size
        callcenter = CallCenter(
            engine=engine,
            database=database,
            outcomes=recorded,
            lookup=await open_fast_lookup(
                database,
                stack,
                windows=RepeatWindows(settings.crm.repeat_short_h, settings.crm.repeat_long_h),
            ),
            clock=clock,
            agent_hub=Hub("agents", queue_size=queue_size),
            wallboard_hub=Hub("wallboard", queue_size=max(4, queue_size // 8)),
            wallboard=Wallboard(
                now=clock(), short_abandon_s=kpi.short_abandon_s, sl_formula=kpi.sl_formula
            ),
            store=store,
            lookup_timeout_s=options.lookup_timeout_s,
            offer_push_timeout_s=options.offer_push_timeout_s,
            wallboard_interval_s=options.wallboard_interval_s,
            hours_interval_s=options.hours_interval_s,
            default_queue_id=options.default_queue_id,
            restore_timeout_s=options.restore_timeout_s,
            inbox_size=options.inbox_size,
            listeners=options.listeners,
        )
        await callcenter.start()
        stack.push_async_callback(callcenter.close)

        from cti.link import TelephonyLink

        sink: Callable[[LinkItem], None] = callcenter.sink
        if options.may_send is not None:  # a fenced process hears nothing any more
            sink = fenced_sink(sink, options.may_send)
        link = TelephonyLink(
            servers,
            sink,
            dialplan=Dialplan(),
            action_timeout_s=settings.ami.action_timeout_s,
            ping_interval_s=settings.ami.ping_interval_s,
            reconnect_max_s=settings.ami.reconnect_max_s,
            may_send=options.may_send,
        )
        callcenter.attach_link(link)
        await link.start()
        stack.push_async_callback(link.close)
        # Stop routing before the link goes down: no offer is decided against a closing
        # link (callcenter.close is idempotent; the earlier registration covers failures).
        stack.push_async_callback(callcenter.close)
        logger.info("live runtime started: %d AMI server(s)", len(servers))
        yield callcenter
