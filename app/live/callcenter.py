"""The call center: the asyncio driver around the pure ``RoutingEngine``.

Theory of operation
-------------------
Everything that changes routing state goes through ``RoutingEngine.handle(event, now)``
(or ``handle_timer(now)``) on the event loop, and the returned commands are dispatched
at once by ``_dispatch``:

- telephony actions (``OfferCall``, ``ReturnToHold``, ``OverflowCall``, ``HangupCall``)
  run as owned tasks through ``link.execute``.  Actions for the same call are chained
  (each waits for the previous one), so a ``ReturnToHold`` can never overtake the
  ``OfferCall`` it cancels; actions of different calls run concurrently, so one slow
  Asterisk never delays another.  A failed ``OfferCall`` comes back as
  ``OfferFailed(reason=LINK)``: not the agent's miss; the core re-queues the call and
  backs it off if its offers keep failing.
- notifications go to the outcome writer (batched, off the routing path), the agent
  websocket hub, and the wallboard counters.  None of them awaits.

Ordering of a call's events while its CRM lookup runs (the choice made here): the
telephony link's events enter one inbox, consumed by one task in arrival order.  An
``IncomingCall`` starts the screen-pop lookup (bounded by ``lookup_timeout_s``) as an
owned task; until it completes, later events of that call (an early hangup, a failure)
are *held* in that call's own list, and other calls flow on.  When the lookup completes
(or times out) a ``_Classified`` item re-enters the inbox; the consumer then feeds
``CallArrived`` (with VIP / entitlement from the pop) and the held events, in order.  A
caller hanging up during the lookup cancels it: the call is delivered unclassified and
ends at once (an abandon is never delayed by the CRM).  Prefetch: with the production dialplan
(``deploy/asterisk``) the caller's channel fires ``UserEvent: ACDArrive`` before Answer
and the greeting; its ``CallerArriving`` starts the same lookup then, so by ``ACDHold`` the
pop is usually known and the call is routed at once, with no database round trip on the
routing path.  A prefetch not claimed within ``prefetch_ttl_s`` (the caller left in the
IVR) is dropped; at most ``prefetch_max`` are kept.  The pop is therefore known
before the call can be offered, and it is written on the agent's socket before the
``OfferCall`` is executed (the action waits, at most ``offer_push_timeout_s``, for the
websocket pump to confirm the write).

Clock: ``clock()`` (epoch seconds, default ``time.time``) is the ``now`` passed to the
core and stamped on records; latencies use ``time.perf_counter``.

Timer: one task sleeps until ``engine.next_deadline()``; every state change re-arms it
(wakes it to recompute) when the deadline moved.

Latency measured per call (kept for the last ``latency_window`` calls):
- routing: the routable event received (``IncomingCall`` from the link, the agent
  action or timer that freed an agent) -> ``link.execute(OfferCall)`` returned (the
  Redirect was written and acknowledged);
- screen pop: the CRM lookup's duration.

Outage of one Asterisk server (the router must not spin, agents must not pay): calls are
indexed per server (call ids are ``"<server>/<uniqueid>"``).  On that server's
``ServerStatus(connected=False)`` every call of it the core knows is suspended
(``CallsSuspended``): never offered, an offer in flight ends without a miss.  Calls that
reach the core while the server is down (a CRM lookup that finishes, an adoption during
the resync) arrive suspended.  ``ServerStatus(connected=True)`` comes after the resync
has reconciled the server's calls (vanished ones ended through it as usual); only then
are they resumed (``CallsResumed``) and routed in routing order.

Restart (nothing lost, no agent stuck): with a ``StateStore`` (``app.live.persist``)
every agent state change and call lifecycle change *marks* the agent / call; the store
writes the marked ones in batches off the routing path (``agent_sessions``,
``live_calls``), and ``close`` saves the rest after routing stopped.  At ``start``:
- agents saved READY / PAUSED / WRAP_UP come back as they were (``AgentRestored``: same
  reason, idle order, wrap-up deadline); agents saved RESERVED / ON_CALL wait (logged
  out) for the first resync of their call's server;
- saved calls wait for the first resync of their server.  The link adopts what it finds
  (``IncomingCall.adopted``): a saved call comes back with its original arrival, queue,
  offers and VIP / entitlement (``CallAdopted``): waiting -> routed (after a fresh
  screen-pop lookup), ringing its agent -> the offer is kept (agent RESERVED), bridged
  -> the agent is ON_CALL (then wrap-up -> READY, or the pause / logout it asked for).
  A call nobody saved that Asterisk shows ringing / bridged is adopted the same way,
  logging its agent in on its configured device if needed;
- on that server's ``ServerStatus(connected)`` (emitted after the resync), saved calls
  it did not show *ended while down*: exactly one ``calls`` row, ANSWERED if it was
  connected (the caller was served) else FAILED, reason "ended-while-down", ended_at =
  when the restart noticed; agents still waiting go READY (or their pending pause, or
  stay logged out if they asked to log out).  After ``restore_timeout_s`` no agent
  waits any longer for a server that does not come back.
- An adoption the core refuses (the agent already holds another call): ringing -> back
  to hold and waiting; connected -> its row is written at once ("adopted-untracked").
The ``calls`` table stays the only outcome record: a saved call whose ``calls`` row
already exists (stopped between the two writes) is dropped at load, never re-ended.

Invariants:
- The call center owns every task it starts (consumer, timer, tickers, lookups,
  actions); ``close()`` cancels and awaits them all.
- Routing errors raised by agent actions are re-raised as RFC 9457 problems (the
  routing core leaves its state unchanged when it refuses); routing errors caused by
  telephony events (late events of an ended call) are logged and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import logging
import time
import typing
from collections import OrderedDict, deque
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from app import errors as problems
from app.live import loader
from app.live.hub import Hub, dumps
from app.live.persist import SavedCall, SavedSession, StateStore
from app.live.wallboard import Wallboard
from app.outcomes import CallEventRow, CallOutcome, to_dt
from app.stats import quantile
from cti.types import CallerArriving, IncomingCall, ServerStatus
from routing.commands import (
    AgentState,
    AgentStateChanged,
    CallAnswered,
    CallEnded,
    CallOffered,
    CallQueued,
    CallRecord,
    CallResult,
    Command,
    HangupCall,
    OfferCall,
    OverflowCall,
    ReturnToHold,
    WrapUpEnded,
)
from routing.config import AgentConfig, QueueConfig
from routing.engine import RoutingEngine
from routing.events import (
    AgentLogin,
    AgentLogout,
    AgentPause,
    AgentReady,
    AgentRestored,
    CallAdopted,
    CallArrived,
    CallFailed,
    CallHungUp,
    CallsResumed,
    CallsSuspended,
    ConfigureAgent,
    ConfigureQueue,
    Event,
    OfferFailed,
    OfferFailure,
    RemoveAgent,
    RemoveQueue,
    SetQueueOpen,
)

logger = logging.getLogger(__name__)

_TELEPHONY_ACTIONS = (OfferCall, ReturnToHold, OverflowCall, HangupCall)
_ROUTING_EVENTS: tuple[type, ...] = typing.get_args(Event)


# --- errors of this module (problems with stable ids) ------------------------------------


class UnknownDisposition(problems.ValidationFailed):
    error_id = "unknown-disposition"
    title = "Unknown disposition code"


class NothingToWrapUp(problems.Conflict):
    error_id = "nothing-to-wrap-up"
    title = "The agent has no call to wrap up"


class AgentNotFound(problems.NotFound):
    error_id = "unknown-agent"
    title = "Unknown agent"


class InvalidForcedState(problems.ValidationFailed):
    error_id = "invalid-forced-state"
    title = "A supervisor can force only ready, paused or logged_out"


# --- collaborators (structural types: the real classes live in cti/ and app/) ----------


class TelephonyLinkLike(Protocol):
    async def start(self) -> None: ...
    async def close(self) -> None: ...
    def execute(self, cmd: Any) -> None: ...
    def status(self) -> Any: ...


class OutcomeWriterLike(Protocol):
    async def start(self) -> None: ...
    async def close(self) -> None: ...


Lookup = Callable[[str, float], Coroutine[Any, Any, Any]]
"""``lookup(phone, now) -> ScreenPop | None`` (the CRM screen pop)."""


# --- per-call bookkeeping ------------------------------------------------------------------


@dataclass(slots=True)
class _CallMeta:
    """What the driver knows about a call beyond the routing core."""

    incoming: IncomingCall
    queue_id: str
    received: float  # perf_counter when the link delivered it
    pop: str | None = None  # the screen pop as JSON text (one object for the GC, not a tree)
    vip: bool = False
    entitled: bool = False
    held: list[tuple[Event, float]] = field(default_factory=list)
    lookup: asyncio.Task[None] | None = None
    classified: bool = False
    saved: SavedCall | None = None  # left in progress by the previous run (restart)


@dataclass(frozen=True, slots=True)
class _Classified:
    call_id: str
    pop: str | None  # JSON text of the screen pop, None: no pop (unknown caller, failure)
    vip: bool
    entitled: bool
    pop_latency_s: float | None


@dataclass(slots=True)
class _Prefetch:
    """A screen-pop lookup started at ``CallerArriving`` (before the caller is in hold)."""

    expires: float  # perf_counter: dropped unclaimed after this (caller gone in the IVR)
    task: asyncio.Task[None] | None = None
    result: _Classified | None = None  # set when the lookup ended before the call arrived
    claimed: bool = False  # its IncomingCall came first and waits in ``_pending``


@dataclass(frozen=True, slots=True)
class _Run:
    """Driver work that must be ordered with the link's events (run on the consumer)."""

    fn: Callable[[], None]


def _incoming_of(saved: SavedCall, at: float) -> IncomingCall:
    """The arrival facts of a call saved by the previous run."""
    return IncomingCall(
        call_id=saved.call_id,
        server=saved.server,
        uniqueid=saved.uniqueid,
        linkedid=saved.linkedid or saved.uniqueid,
        channel=saved.channel or "",
        caller_num=saved.caller,
        caller_name=saved.caller_name or "",
        dnis=saved.dnis or "",
        at=at,
    )


@dataclass(slots=True)
class _LastCall:
    call_id: str
    ended_at: float
    wrapup_ended_at: float | None = None
    dispositioned: bool = False


# Events handled by the consumer before it lets the event loop run (sockets, timers).
_CONSUME_SLICE = 64


def _classify(call_id: str, pop: Any, latency: float | None) -> _Classified:
    """The lookup's result as the call keeps it: the pop serialised once (the model tree
    dies young instead of living, and being scanned by the GC, for the whole call)."""
    if pop is None:
        return _Classified(call_id, None, False, False, latency)
    customer = getattr(pop, "customer", None)
    return _Classified(
        call_id,
        dumps(_jsonable(pop)),
        bool(getattr(customer, "vip", False) or getattr(pop, "vip", False)),
        bool(getattr(pop, "entitled", False)),
        latency,
    )


def _jsonable(value: Any) -> Any:
    """Views and screen pops as JSON-ready values (dataclasses, pydantic models, enums)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, enum.Enum):
        return value.value
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    return str(value)


def _percentiles(samples: Iterable[float]) -> dict[str, Any]:
    data = sorted(samples)
    if not data:
        return {"count": 0}

    return {
        "count": len(data),
        "p50_ms": round(quantile(data, 0.50) * 1000, 3),
        "p90_ms": round(quantile(data, 0.90) * 1000, 3),
        "p99_ms": round(quantile(data, 0.99) * 1000, 3),
        "max_ms": round(data[-1] * 1000, 3),
        "mean_ms": round(sum(data) / len(data) * 1000, 3),
    }


class CallCenter:
    """Drives the routing core from telephony events, agent actions and time."""

    def __init__(
        self,
        *,
        engine: RoutingEngine,
        database: Any,
        outcomes: Any,
        lookup: Lookup | None = None,
        clock: Callable[[], float] = time.time,
        agent_hub: Hub | None = None,
        wallboard_hub: Hub | None = None,
        wallboard: Wallboard | None = None,
        lookup_timeout_s: float = 0.3,
        prefetch_ttl_s: float = 300.0,
        prefetch_max: int = 50_000,
        offer_push_timeout_s: float = 0.25,
        wallboard_interval_s: float = 1.0,
        hours_interval_s: float = 30.0,
        default_queue_id: str | None = None,
        latency_window: int = 100_000,
        store: StateStore | None = None,
        restore_timeout_s: float = 60.0,
    ) -> None:
        self.engine = engine
        self.database = database
        self.outcomes = outcomes
        self.link: TelephonyLinkLike | None = None
        self.clock = clock
        self.agent_hub = agent_hub or Hub("agents")
        self.wallboard_hub = wallboard_hub or Hub("wallboard", queue_size=32)
        self.wallboard = wallboard or Wallboard(now=clock())
        self._lookup = lookup
        self.lookup_timeout_s = lookup_timeout_s
        self.prefetch_ttl_s = prefetch_ttl_s
        self.prefetch_max = prefetch_max
        self.offer_push_timeout_s = offer_push_timeout_s
        self.wallboard_interval_s = wallboard_interval_s
        self.hours_interval_s = hours_interval_s
        self.default_queue_id = default_queue_id
        self.store = store
        self.restore_timeout_s = restore_timeout_s

        self._inbox: asyncio.Queue[tuple[Any, float]] = asyncio.Queue()
        self._tasks: set[asyncio.Task[Any]] = set()  # every task this object started
        self._loops: list[asyncio.Task[None]] = []
        self._chains: dict[str, asyncio.Task[None]] = {}  # call_id -> last action task
        self._wake = asyncio.Event()
        self._armed: float | None = None
        self._closing = False

        self._calls: dict[str, _CallMeta] = {}  # arrived, not yet ended
        self._server_calls: dict[str, set[str]] = {}  # server -> ids of its ``_calls``
        self._down: set[str] = set()  # servers reported disconnected, not yet resynced
        self._pending: dict[str, _CallMeta] = {}  # CRM lookup running
        # call_id -> lookup started at CallerArriving, in start order (TTL / size bound)
        self._prefetched: OrderedDict[str, _Prefetch] = OrderedDict()
        self._last_call: dict[str, _LastCall] = {}  # agent_id -> last answered call
        self._servers: dict[str, ServerStatus] = {}
        self.dnis: dict[str, str] = {}
        self.queues: dict[str, loader.QueueRow] = {}
        self.agents: dict[str, loader.AgentRow] = {}
        self._queue_open: dict[str, bool] = {}
        # Restart: calls the previous run left in progress, not yet found on Asterisk;
        # agents that held a call then, waiting for their server's first resync.
        self._restored: dict[str, SavedCall] = {}
        self._awaiting: dict[str, SavedSession] = {}

        self._routing_latency: deque[float] = deque(maxlen=latency_window)
        self._pop_latency: deque[float] = deque(maxlen=latency_window)
        # (call_id, routing latency s, epoch s the Redirect was written) per offer
        self._per_call_latency: deque[tuple[str, float, float]] = deque(maxlen=latency_window)
        self.counters: dict[str, int] = {
            "incoming": 0,
            "unknown_dnis": 0,
            "lookup_timeouts": 0,
            "lookup_errors": 0,
            "prefetch_started": 0,
            "prefetch_ready": 0,  # the pop was known when the caller reached hold
            "prefetch_waited": 0,  # the caller reached hold first; routing waited for it
            "prefetch_dropped": 0,  # never claimed (caller left before hold) or evicted
            "action_failures": 0,
            "ignored_events": 0,
            "restored_agents": 0,
            "adopted_calls": 0,
            "ended_while_down": 0,
            "offers": 0,  # OfferCall actions handed to the link (attempts, failed ones too)
            "suspended_calls": 0,
            "resumed_calls": 0,
        }

    # --- lifecycle -----------------------------------------------------------------------

    def attach_link(self, link: TelephonyLinkLike) -> None:
        self.link = link

    async def start(self) -> None:
        """Load the configuration and the previous run's live state, then start
        consuming events and the timers."""
        await self.reload()
        if self.store is not None:
            await self._restore(self.store)
            self.store.start(agent_row=self._session_row, call_row=self._live_call_row)
        self._loops = [
            self._spawn(self._consume(), "callcenter-consumer"),
            self._spawn(self._timer_loop(), "callcenter-timer"),
            self._spawn(self._wallboard_loop(), "callcenter-wallboard"),
            self._spawn(self._hours_loop(), "callcenter-hours"),
        ]
        if self._awaiting or self._restored:
            self._spawn(self._restore_deadline(), "callcenter-restore-deadline")

    async def close(self) -> None:
        """Cancel and await every task this call center started, then save the live
        state (agent sessions, calls in progress) for the next start (idempotent)."""
        self._closing = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self.store is not None:
            await self.store.close()
        for sub in self.agent_hub.subscribers() + self.wallboard_hub.subscribers():
            sub.close(1001, "service stopping")

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- restart: live state saved and restored -------------------------------------------

    async def _restore(self, store: StateStore) -> None:
        """Bring back the previous run's agents; keep its calls until Asterisk shows them."""
        saved = await store.load()
        store.mark_calls(saved.already_ended)  # their outcome is written: drop the rows
        for session in saved.sessions:
            if session.agent_id not in self.agents or session.state == "logged_out":
                continue
            if session.state in ("reserved", "on_call") and session.call_id:
                # Decided by the call's server: adopted on the call, or freed.
                self._awaiting[session.agent_id] = session
            else:
                self._restore_agent(session)
        for call in saved.calls:
            self._restored[call.call_id] = call
        logger.info(
            "restored %d agent sessions; %d agents and %d calls wait for their server's resync",
            self.counters["restored_agents"],
            len(self._awaiting),
            len(self._restored),
        )

    def _restore_agent(self, session: SavedSession, *, call_gone: bool = False) -> None:
        """READY / PAUSED / WRAP_UP as saved; an agent whose call is gone: READY, or the
        pause (or logout) it asked for during the call."""
        agent_id, device = session.agent_id, session.device
        row = self.agents.get(agent_id)
        if row is None:
            return
        device = device or row.device
        event: Event | None
        if call_gone:
            pending = session.pending or ""
            if pending == "logout":
                event = None
            elif pending.startswith("pause"):
                reason = pending.partition(":")[2] or "pause"
                event = AgentRestored(agent_id, device, "paused", reason=reason)
            else:
                event = AgentRestored(agent_id, device, "ready")
        elif session.state == "wrap_up" and session.call_id:
            event = AgentRestored(
                agent_id,
                device,
                "wrap_up",
                since=session.since,
                call_id=session.call_id,
                until=session.until,
                missed_in_row=session.missed_in_row,
            )
            self._last_call[agent_id] = _LastCall(session.call_id, session.since or self.clock())
        else:
            event = AgentRestored(
                agent_id,
                device,
                session.state,
                reason=session.reason,
                since=session.since,
                idle_since=session.idle_since,
                missed_in_row=session.missed_in_row,
            )
        if self.store is not None:
            self.store.mark_agent(agent_id)
        if event is None:
            logger.info("agent %s: call gone while down; logged out as asked", agent_id)
            return
        try:
            self._handle(event, time.perf_counter())
        except Exception as exc:
            if not _is_routing_error(exc):
                raise
            logger.warning("agent %s could not be restored: %s", agent_id, exc)
            return
        self.counters["restored_agents"] += 1

    def _resync_done(self, server: str) -> None:
        """First resync of ``server`` since start: what it did not show is gone."""
        now = self.clock()
        for call_id, saved in list(self._restored.items()):
            if saved.server == server:
                del self._restored[call_id]
                self._ended_while_down(saved, now)
        for agent_id, session in list(self._awaiting.items()):
            if (session.call_id or "").partition("/")[0] == server:
                del self._awaiting[agent_id]
                self._restore_agent(session, call_gone=True)

    async def _restore_deadline(self) -> None:
        """No agent waits forever for a server that does not come back."""
        await asyncio.sleep(self.restore_timeout_s)
        self.inject_callable(self._restore_timed_out)

    def inject_callable(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the consumer, ordered with the link's events."""
        self._inbox.put_nowait((_Run(fn), time.perf_counter()))

    def _restore_timed_out(self) -> None:
        servers = {str(s.get("name")) for s in self.server_status()}
        for agent_id, session in list(self._awaiting.items()):
            logger.warning(
                "agent %s: call %s not confirmed within %.0f s; freed",
                agent_id,
                session.call_id,
                self.restore_timeout_s,
            )
            del self._awaiting[agent_id]
            self._restore_agent(session, call_gone=True)
        now = self.clock()
        for call_id, saved in list(self._restored.items()):
            if saved.server not in servers:  # that server is no longer configured
                del self._restored[call_id]
                self._ended_while_down(saved, now)

    def _ended_while_down(self, saved: SavedCall, now: float) -> None:
        """A call the previous run left in progress that Asterisk no longer has.

        Ends exactly once: ANSWERED if it was connected (the caller was served), else
        FAILED; reason "ended-while-down"; ``ended_at`` is when the restart noticed (the
        real end is unknown, somewhere between the stop and now).
        """
        answered = saved.answered_at is not None
        record = CallRecord(
            call_id=saved.call_id,
            queue_id=saved.queue_id,
            caller=saved.caller,
            result=CallResult.ANSWERED if answered else CallResult.FAILED,
            arrived_at=saved.arrived_at,
            ended_at=max(now, saved.arrived_at),
            first_offered_at=saved.first_offered_at,
            answered_at=saved.answered_at,
            answered_by=saved.agent_id if answered else None,
            agents_offered=saved.agents_offered,
            rona_count=saved.rona_count,
            vip=saved.vip,
            entitled=saved.entitled,
            reason="ended-while-down",
        )
        logger.info(
            "call %s ended while the service was down (%s)", saved.call_id, record.result.value
        )
        self.counters["ended_while_down"] += 1
        self._record_outcome(record, _incoming_of(saved, saved.arrived_at))
        self._record_event(
            saved.call_id,
            "ended",
            record.ended_at,
            record.answered_by,
            {"result": record.result.value, "queue_id": saved.queue_id, "reason": record.reason},
        )
        if self.store is not None:
            self.store.mark_call(saved.call_id)  # not in progress: its row goes

    def _session_row(self, agent_id: str) -> dict[str, Any] | None:
        view = self.engine.agent(agent_id)
        if view is None:
            return None
        return {
            "agent_id": agent_id,
            "device": view.device,
            "state": view.state,
            "reason": view.reason,
            "since": to_dt(view.since),
            "idle_since": to_dt(view.idle_since),
            "call_id": view.call_id,
            "pending": view.pending,
            "until": to_dt(view.until),
            "missed_in_row": view.missed_in_row,
        }

    def _live_call_row(self, call_id: str) -> dict[str, Any] | None:
        meta = self._calls.get(call_id)
        if meta is None:
            return None  # ended (or refused): no longer in progress
        inc = meta.incoming
        view = self.engine.call(call_id) if meta.classified else None
        if meta.classified and view is None:
            return None
        row: dict[str, Any] = {
            "call_id": call_id,
            "server": inc.server,
            "uniqueid": inc.uniqueid,
            "linkedid": inc.linkedid,
            "channel": inc.channel,
            "caller": inc.caller_num,
            "caller_name": inc.caller_name,
            "dnis": inc.dnis,
            "queue_id": meta.queue_id,
            "state": "classifying",
            "agent_id": None,
            "arrived_at": to_dt(inc.at),
            "queued_at": None,
            "first_offered_at": None,
            "answered_at": None,
            "agents_offered": [],
            "rona_count": 0,
            "vip": meta.vip,
            "entitled": meta.entitled,
        }
        if view is not None:
            row.update(
                queue_id=view.queue_id,
                state=view.state.value,
                agent_id=view.agent_id,
                arrived_at=to_dt(min(inc.at, view.arrived_at)),
                queued_at=to_dt(view.queued_at),
                first_offered_at=to_dt(view.first_offered_at),
                answered_at=to_dt(view.answered_at),
                agents_offered=list(view.agents_offered),
                rona_count=view.rona_count,
            )
        return row

    # --- configuration ---------------------------------------------------------------------

    async def reload(
        self,
        *,
        agent_ids: Iterable[str] | None = None,
        queue_ids: Iterable[str] | None = None,
    ) -> None:
        """(Re)load queues, agents and the DNIS map from the database into the core.

        ``None`` for both means everything.  Rows that vanished or were deactivated are
        removed from the core (agents first, so no agent refers to a removed queue).
        """
        full = agent_ids is None and queue_ids is None
        now = self.clock()
        q_filter = None if full or queue_ids is None else [int(q) for q in queue_ids]
        a_filter = None if full or agent_ids is None else [int(a) for a in agent_ids]
        wanted_queues = set(self.queues) if full else {str(q) for q in q_filter or ()}
        wanted_agents = set(self.agents) if full else {str(a) for a in a_filter or ()}
        async with self.database.sessionmaker() as session:
            queues = (
                await loader.load_queues(session, now, q_filter)
                if full or queue_ids is not None
                else {}
            )
            agents = (
                await loader.load_agents(session, a_filter) if full or agent_ids is not None else {}
            )
            gone = {q for q in wanted_queues - set(queues) if q in self.queues}
            # Members of a queue that goes away are reloaded too: their membership shrinks.
            members = {
                a for a, row in self.agents.items() if gone.intersection(row.config.queues)
            } - set(agents)
            if members:
                agents.update(await loader.load_agents(session, [int(a) for a in members]))
                wanted_agents |= members
            dnis = await loader.load_dnis(session)
        for queue_id, qrow in queues.items():
            self._apply_config(ConfigureQueue(qrow.config))
            self.queues[queue_id] = qrow
            self._queue_open[queue_id] = qrow.config.is_open
            self.wallboard.set_queues([queue_id])
        for agent_id, arow in agents.items():
            self._apply_config(ConfigureAgent(arow.config))
            self.agents[agent_id] = arow
            self.wallboard.set_agent_queues(agent_id, arow.config.queues)
        for agent_id in wanted_agents - set(agents):
            if agent_id in self.agents:
                self._apply_config(RemoveAgent(agent_id))
                self.agents.pop(agent_id, None)
                self.wallboard.remove_agent(agent_id)
        for queue_id in wanted_queues - set(queues):
            if queue_id in self.queues:
                self._apply_config(RemoveQueue(queue_id))
                self.queues.pop(queue_id, None)
                self._queue_open.pop(queue_id, None)
                self.wallboard.remove_queue(queue_id)
        self.dnis = dnis
        logger.info(
            "configuration loaded: %d queues, %d agents, %d DNIS",
            len(self.queues),
            len(self.agents),
            len(self.dnis),
        )

    async def config_changed(
        self, *, agent_ids: Iterable[str] = (), queue_ids: Iterable[str] = ()
    ) -> None:
        """The REST layer changed these rows: reload them (and the DNIS map)."""
        agents, queues = list(agent_ids), list(queue_ids)
        await self.reload(agent_ids=agents, queue_ids=queues)

    def _apply_config(self, event: Event) -> None:
        try:
            self._handle(event, time.perf_counter())
        except Exception as exc:
            logger.error("configuration refused by the routing core: %s: %s", event, exc)
            raise

    # --- the link's sink --------------------------------------------------------------------

    def sink(self, item: Any) -> None:
        """Called by the telephony link for every event; never blocks, never raises."""
        self._inbox.put_nowait((item, time.perf_counter()))

    def inject(self, event: Event) -> None:
        """Feed an event the driver itself generated (a failed action) through the inbox,
        ordered with the link's events: processed exactly as if the link had sent it."""
        self._inbox.put_nowait((event, time.perf_counter()))

    async def _consume(self) -> None:
        # ``Queue.get`` does not yield while items are queued: a backlog would be drained
        # in one step, and for as long as it lasts no socket is read.  Past Asterisk's
        # writetimeout the AMI session is cut and its events are lost (the load test at
        # 600 calls/s).  Yield every ``_CONSUME_SLICE`` items instead.
        done = 0
        while True:
            item, received = await self._inbox.get()
            try:
                self._process(item, received)
            except Exception:
                logger.exception("event %r could not be processed", item)
            done += 1
            if done >= _CONSUME_SLICE:
                done = 0
                await asyncio.sleep(0)

    def _process(self, item: Any, received: float) -> None:
        if isinstance(item, IncomingCall):
            self._incoming(item, received)
        elif isinstance(item, CallerArriving):
            self._prefetch(item)
        elif isinstance(item, _Classified):
            self._classified(item)
        elif isinstance(item, ServerStatus):
            self._servers[item.name] = item
            logger.info(
                "AMI server %s %s", item.name, "connected" if item.connected else "disconnected"
            )
            if item.connected:
                # Emitted after the resync and its adoptions (cti.link): resync done.
                self._resync_done(item.name)
                if item.name in self._down:
                    self._down.discard(item.name)
                    self._resume_server(item.name)
            elif item.name not in self._down:
                self._down.add(item.name)
                self._suspend_server(item.name)
        elif isinstance(item, _Run):
            item.fn()
        elif isinstance(item, _ROUTING_EVENTS):
            self._telephony_event(item, received)
        else:
            # e.g. cti.types.OriginateResult (callbacks): not for the routing core.
            logger.debug("telephony item ignored: %r", item)

    def _known_calls_of(self, server: str) -> tuple[str, ...]:
        """Ids of the server's calls the routing core has (classified), sorted."""
        calls = self._calls
        ids = self._server_calls.get(server, ())
        return tuple(sorted(c for c in ids if c in calls and calls[c].classified))

    def _suspend_server(self, server: str) -> None:
        """The server is unreachable: its calls are not routable until it is back."""
        ids = self._known_calls_of(server)
        logger.warning("server=%s unreachable: %d calls suspended", server, len(ids))
        if ids:
            self.counters["suspended_calls"] += len(ids)
            self._handle(CallsSuspended(ids, "server disconnected"), time.perf_counter())

    def _resume_server(self, server: str) -> None:
        """The server is back and its calls reconciled by the resync: route them again."""
        ids = self._known_calls_of(server)
        logger.info("server=%s resynced: %d calls resumed", server, len(ids))
        if ids:
            self.counters["resumed_calls"] += len(ids)
            self._handle(CallsResumed(ids), time.perf_counter())

    def _track(self, meta: _CallMeta) -> None:
        call_id = meta.incoming.call_id
        self._calls[call_id] = meta
        self._server_calls.setdefault(meta.incoming.server, set()).add(call_id)

    def _untrack(self, call_id: str) -> _CallMeta | None:
        meta = self._calls.pop(call_id, None)
        if meta is not None:
            ids = self._server_calls.get(meta.incoming.server)
            if ids is not None:
                ids.discard(call_id)
                if not ids:
                    del self._server_calls[meta.incoming.server]
        return meta

    def _telephony_event(self, event: Any, received: float) -> None:
        call_id = getattr(event, "call_id", None)
        if call_id is not None:
            meta = self._pending.get(call_id)
            if meta is not None:
                meta.held.append((event, received))
                if isinstance(event, CallHungUp | CallFailed):
                    # The caller is gone: do not wait for the CRM to record the abandon.
                    # Delivered here, not by the lookup task: a task cancelled before its
                    # first step never runs its body (under a backlog the arrival and the
                    # hangup are processed in one burst), and the call would stay pending
                    # for ever, with no outcome row.  A late result is ignored.
                    if meta.lookup is not None:
                        meta.lookup.cancel()
                    self._classified(_Classified(call_id, None, False, False, None))
                return
        try:
            self._handle(event, received)
        except Exception as exc:
            if _is_routing_error(exc):
                self.counters["ignored_events"] += 1
                logger.debug("event %s ignored by the routing core: %s", event, exc)
            else:
                raise

    # --- arrival and classification ---------------------------------------------------------

    def _incoming(self, call: IncomingCall, received: float) -> None:
        if call.call_id in self._calls or call.call_id in self._pending:
            return  # seen again (resync after a reconnect)
        saved = self._restored.pop(call.call_id, None)
        if saved is not None:
            # Left in progress by the previous run: its original arrival and classification.
            call = dataclasses.replace(
                _incoming_of(saved, saved.arrived_at),
                channel=call.channel or saved.channel or "",
                agent_id=call.agent_id,
                answered=call.answered,
                adopted=call.adopted,
            )
        else:
            self.counters["incoming"] += 1
        queue_id = self.dnis.get(call.dnis) or self.default_queue_id
        if saved is not None and saved.queue_id in self.queues:
            queue_id = saved.queue_id
        if queue_id is None or queue_id not in self.queues:
            self.counters["unknown_dnis"] += 1
            logger.warning(
                "call server=%s uniqueid=%s: no queue for DNIS %r; hanging up",
                call.server,
                call.uniqueid,
                call.dnis,
            )
            self._reject(call)
            return
        meta = _CallMeta(incoming=call, queue_id=queue_id, received=received, saved=saved)
        if saved is not None:
            meta.vip, meta.entitled = saved.vip, saved.entitled
        self._track(meta)
        if self.store is not None:
            self.store.mark_call(call.call_id)
        pf = self._prefetched.pop(call.call_id, None)
        if pf is not None and pf.result is not None:
            # Prefetched while the caller heard the greeting: routable at once.
            self.counters["prefetch_ready"] += 1
            self._apply_pop(meta, pf.result)
            self._arrive(meta)
            return
        if self._lookup is None or not call.caller_num or call.agent_id:
            # A call found ringing or talking has its agent already: no pop to wait for.
            if pf is not None and pf.task is not None:
                pf.task.cancel()
            self._arrive(meta)
            return
        self._pending[call.call_id] = meta
        if pf is not None and pf.task is not None:
            self.counters["prefetch_waited"] += 1
            pf.claimed = True  # its result now comes through the inbox as ``_Classified``
            meta.lookup = pf.task
            return
        meta.lookup = self._spawn(
            self._run_lookup(call.call_id, call.caller_num, None), f"lookup-{call.call_id}"
        )

    def _prefetch(self, item: CallerArriving) -> None:
        """Start the screen-pop lookup while the caller is still in the greeting / IVR."""
        call_id = item.call_id
        if (
            self._lookup is None
            or not item.caller_num
            or self._closing
            or call_id in self._calls
            or call_id in self._pending
            or call_id in self._prefetched
        ):
            return
        now = time.perf_counter()
        prefetched = self._prefetched
        while prefetched:  # oldest first: expire, and keep the size bounded
            first = next(iter(prefetched.values()))
            if first.expires > now and len(prefetched) < self.prefetch_max:
                break
            _, old = prefetched.popitem(last=False)
            self.counters["prefetch_dropped"] += 1
            if old.task is not None:
                old.task.cancel()
        pf = _Prefetch(expires=now + self.prefetch_ttl_s)
        prefetched[call_id] = pf
        self.counters["prefetch_started"] += 1
        pf.task = self._spawn(self._run_lookup(call_id, item.caller_num, pf), f"prefetch-{call_id}")

    def _reject(self, call: IncomingCall) -> None:
        now = self.clock()
        record = CallRecord(
            call_id=call.call_id,
            queue_id="",
            caller=call.caller_num,
            result=CallResult.FAILED,
            arrived_at=call.at,
            ended_at=now,
            reason="unknown-dnis",
        )
        self._record_outcome(record, call)
        self._run_action(HangupCall(call.call_id, cause=1), None)  # 1: unallocated number

    async def _run_lookup(self, call_id: str, phone: str, pf: _Prefetch | None) -> None:
        """The CRM lookup of one call, bounded by ``lookup_timeout_s``.  Its result enters
        the inbox as ``_Classified`` (the call waits in ``_pending``), or is kept in
        ``pf`` when it was prefetched and its call has not reached hold yet."""
        assert self._lookup is not None
        started = time.perf_counter()
        pop: Any = None
        latency: float | None = None
        try:
            async with asyncio.timeout(self.lookup_timeout_s):
                pop = await self._lookup(phone, self.clock())
            latency = time.perf_counter() - started
        except TimeoutError:
            self.counters["lookup_timeouts"] += 1
            logger.warning(
                "call %s: screen pop lookup timed out after %.3fs", call_id, self.lookup_timeout_s
            )
        except asyncio.CancelledError:
            if self._closing:
                raise
        except ValueError as exc:  # app.crm.InvalidPhoneNumber: anonymous / odd caller ids
            logger.debug("call %s: no screen pop for %r: %s", call_id, phone, exc)
        except Exception as exc:
            self.counters["lookup_errors"] += 1
            logger.warning("call %s: screen pop lookup failed: %s", call_id, exc)
        item = _classify(call_id, pop, latency)
        if pf is not None:
            pf.task = None
            if not pf.claimed:
                pf.result = item
                return
        self._inbox.put_nowait((item, started))

    def _apply_pop(self, meta: _CallMeta, item: _Classified) -> None:
        if item.pop_latency_s is not None:
            self._pop_latency.append(item.pop_latency_s)
        if item.pop is not None:
            meta.pop = item.pop
            meta.vip = item.vip
            meta.entitled = item.entitled

    def _classified(self, item: _Classified) -> None:
        meta = self._pending.pop(item.call_id, None)
        if meta is None:
            return
        meta.lookup = None
        self._apply_pop(meta, item)
        self._arrive(meta)
        for event, received in meta.held:
            self._telephony_event(event, received)
        meta.held.clear()

    def _arrive(self, meta: _CallMeta) -> None:
        meta.classified = True
        call = meta.incoming
        down = call.server in self._down  # not routable until the server is resynced
        event: Event
        if call.adopted or meta.saved is not None:
            event = dataclasses.replace(self._adoption(meta), suspended=down)
        else:
            event = CallArrived(
                call_id=call.call_id,
                queue_id=meta.queue_id,
                caller=call.caller_num,
                vip=meta.vip,
                entitled=meta.entitled,
                suspended=down,
            )
        try:
            self._handle(event, meta.received)
            if isinstance(event, CallAdopted):
                self._adopted(event)
        except Exception as exc:
            if (
                isinstance(event, CallAdopted)
                and event.agent_id is not None
                and _is_routing_error(exc)
                and self._adoption_refused(meta, event, exc)
            ):
                return
            self._untrack(call.call_id)
            if self.store is not None:
                self.store.mark_call(call.call_id)
            if not _is_routing_error(exc):
                raise
            logger.warning("call %s refused by the routing core: %s", call.call_id, exc)
            record = CallRecord(
                call_id=call.call_id,
                queue_id=meta.queue_id,
                caller=call.caller_num,
                result=CallResult.FAILED,
                arrived_at=call.at,
                ended_at=self.clock(),
                reason=str(exc)[:200],
            )
            self._record_outcome(record, call)
            self._run_action(HangupCall(call.call_id), None)

    def _adoption(self, meta: _CallMeta) -> CallAdopted:
        """``CallAdopted`` from what Asterisk shows now and what the previous run saved."""
        call, saved = meta.incoming, meta.saved
        agent_id = call.agent_id or None
        device = None
        answered_at = None
        if agent_id is not None:
            waiting = self._awaiting.get(agent_id)
            row = self.agents.get(agent_id)
            device = (waiting.device if waiting else None) or (row.device if row else None)
            if call.answered:
                known = saved is not None and saved.answered_at and saved.agent_id == agent_id
                answered_at = saved.answered_at if known and saved else self.clock()
        return CallAdopted(
            call_id=call.call_id,
            queue_id=meta.queue_id,
            arrived_at=call.at,
            caller=call.caller_num,
            vip=meta.vip,
            entitled=meta.entitled,
            agent_id=agent_id,
            answered_at=answered_at,
            device=device,
            queued_at=saved.queued_at if saved else None,
            first_offered_at=saved.first_offered_at if saved else None,
            agents_offered=saved.agents_offered if saved else (),
            rona_count=saved.rona_count if saved else 0,
        )

    def _adopted(self, event: CallAdopted) -> None:
        self.counters["adopted_calls"] += 1
        logger.info(
            "call %s adopted (agent=%s answered=%s) queue=%s",
            event.call_id,
            event.agent_id,
            event.answered_at is not None,
            event.queue_id,
        )
        if event.agent_id is None:
            return
        session = self._awaiting.pop(event.agent_id, None)
        if session is not None and self.store is not None:
            self.store.mark_agent(event.agent_id)
        if session is None or event.answered_at is None or not session.pending:
            return
        # What the agent asked for during the call still applies after it.
        pending = session.pending
        follow: Event = (
            AgentLogout(event.agent_id)
            if pending == "logout"
            else AgentPause(event.agent_id, pending.partition(":")[2] or "pause")
        )
        with contextlib.suppress(Exception):
            self._handle(follow, time.perf_counter())

    def _adoption_refused(self, meta: _CallMeta, event: CallAdopted, exc: Exception) -> bool:
        """The agent Asterisk shows cannot take the call (it holds another one).

        Ringing: the call goes back to hold and waits like any other.  Connected: the
        caller is being served by that agent outside our control; its outcome is written
        now (answered, "adopted-untracked").  True when handled.
        """
        agent_id = event.agent_id
        assert agent_id is not None
        logger.error("call %s: adoption with agent %s refused: %s", event.call_id, agent_id, exc)
        if event.answered_at is None:
            self._run_action(ReturnToHold(event.call_id, agent_id), None)
            waiting = dataclasses.replace(event, agent_id=None, device=None)
            try:
                self._handle(waiting, meta.received)
            except Exception as again:
                if not _is_routing_error(again):
                    raise
                return False
            self._adopted(waiting)
            return True
        self._untrack(event.call_id)
        if self.store is not None:
            self.store.mark_call(event.call_id)
        record = CallRecord(
            call_id=event.call_id,
            queue_id=event.queue_id,
            caller=event.caller,
            result=CallResult.ANSWERED,
            arrived_at=event.arrived_at,
            ended_at=self.clock(),
            first_offered_at=event.first_offered_at,
            answered_at=event.answered_at,
            answered_by=agent_id,
            agents_offered=event.agents_offered,
            rona_count=event.rona_count,
            vip=event.vip,
            entitled=event.entitled,
            reason="adopted-untracked",
        )
        self._record_outcome(record, meta.incoming)
        return True

    # --- the core --------------------------------------------------------------------------

    def _handle(self, event: Event, received: float | None) -> None:
        cmds: Sequence[Command] = self.engine.handle(event, self.clock())
        self._dispatch(cmds, received)
        self._rearm()

    def _rearm(self) -> None:
        if self.engine.next_deadline() != self._armed:
            self._wake.set()

    async def _timer_loop(self) -> None:
        while True:
            self._wake.clear()
            deadline = self.engine.next_deadline()
            self._armed = deadline
            if deadline is None:
                await self._wake.wait()
                continue
            delay = deadline - self.clock()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
                if self._wake.is_set():
                    continue  # re-armed: recompute
            try:
                cmds = self.engine.handle_timer(self.clock())
                self._dispatch(cmds, time.perf_counter())
            except Exception:
                logger.exception("routing timer failed")
            # Yield even if the core keeps a past deadline, so the loop cannot spin.
            await asyncio.sleep(0.001 if self.engine.next_deadline() == deadline else 0)

    def _dispatch(self, cmds: Sequence[Command], received: float | None) -> None:
        now = self.clock()
        store = self.store
        for cmd in cmds:
            if isinstance(cmd, _TELEPHONY_ACTIONS):
                if isinstance(cmd, OfferCall):
                    self._offer(cmd, received)
                else:
                    self._run_action(cmd, None)
                continue
            self.wallboard.apply(cmd, now)
            if isinstance(cmd, AgentStateChanged):
                self._agent_state_changed(cmd)
            elif isinstance(cmd, CallQueued):
                if store is not None:
                    store.mark_call(cmd.call_id)
                self._record_event(cmd.call_id, "queued", cmd.at, None, {"queue_id": cmd.queue_id})
            elif isinstance(cmd, CallOffered):
                if store is not None:
                    store.mark_call(cmd.call_id)
                self._record_event(
                    cmd.call_id, "offered", cmd.at, cmd.agent_id, {"queue_id": cmd.queue_id}
                )
            elif isinstance(cmd, CallAnswered):
                if store is not None:
                    store.mark_call(cmd.call_id)
                self._record_event(
                    cmd.call_id, "answered", cmd.at, cmd.agent_id, {"queue_id": cmd.queue_id}
                )
                self.agent_hub.publish(
                    cmd.agent_id,
                    {
                        "type": "call",
                        "event": "answered",
                        "call_id": cmd.call_id,
                        "queue_id": cmd.queue_id,
                        "at": cmd.at,
                    },
                )
            elif isinstance(cmd, CallEnded):
                self._call_ended(cmd)
            elif isinstance(cmd, WrapUpEnded):
                self._wrapup_ended(cmd)

    def _agent_state_changed(self, cmd: AgentStateChanged) -> None:
        if self.store is not None:
            self.store.mark_agent(cmd.agent_id)
        self.agent_hub.publish(
            cmd.agent_id,
            {
                "type": "state",
                "agent_id": cmd.agent_id,
                "state": cmd.state.value,
                "previous": cmd.previous.value if cmd.previous else None,
                "reason": cmd.reason,
                "call_id": cmd.call_id,
                "at": cmd.at,
            },
        )

    def _call_ended(self, cmd: CallEnded) -> None:
        rec = cmd.record
        meta = self._untrack(rec.call_id)
        if self.store is not None:
            self.store.mark_call(rec.call_id)
        self._record_outcome(rec, meta.incoming if meta else None)
        self._record_event(
            rec.call_id,
            "ended",
            rec.ended_at,
            rec.answered_by,
            {"result": rec.result.value, "queue_id": rec.queue_id},
        )
        # The agent who talked (or whose phone was ringing) learns the call is over.
        agent = rec.answered_by or (rec.agents_offered[-1] if rec.agents_offered else None)
        if agent is not None:
            self.agent_hub.publish(
                agent,
                {
                    "type": "call",
                    "event": "ended",
                    "call_id": rec.call_id,
                    "result": rec.result.value,
                    "answered": rec.answered_by == agent,
                    "at": rec.ended_at,
                },
            )
        if rec.answered_by is not None:
            self._last_call[rec.answered_by] = _LastCall(rec.call_id, rec.ended_at)

    def _wrapup_ended(self, cmd: WrapUpEnded) -> None:
        last = self._last_call.get(cmd.agent_id)
        if last is None or cmd.call_id is None or last.call_id != cmd.call_id:
            return
        last.wrapup_ended_at = cmd.at
        if not last.dispositioned:
            # The wrap-up timer ran out without a disposition: still record when it ended.
            self._record_wrapup(last.call_id, None, None, cmd.at)

    # --- persistence ------------------------------------------------------------------------

    def _record_outcome(self, rec: CallRecord, incoming: IncomingCall | None) -> None:
        if incoming is not None and incoming.at < rec.arrived_at:
            # The core stamps arrival when it is told (after the CRM lookup); the caller
            # arrived when the link saw it.
            rec = dataclasses.replace(rec, arrived_at=incoming.at)
        try:
            self.outcomes.record_call(
                CallOutcome.from_record(
                    rec,
                    server=incoming.server if incoming else None,
                    uniqueid=incoming.uniqueid if incoming else None,
                    linkedid=incoming.linkedid if incoming else None,
                    dnis=incoming.dnis if incoming else None,
                )
            )
        except Exception:
            logger.exception("call %s: outcome could not be queued", rec.call_id)

    def _record_event(
        self, call_id: str, kind: str, at: float, agent_id: str | None, data: dict[str, Any]
    ) -> None:
        try:
            self.outcomes.record_event(
                CallEventRow.at_epoch(call_id, kind, at, agent_id=agent_id, data=data)
            )
        except Exception:
            logger.exception("call %s: event %s could not be queued", call_id, kind)

    def _record_wrapup(
        self,
        call_id: str,
        disposition_code: str | None,
        notes: str | None,
        wrapup_ended_at: float | None,
    ) -> None:
        try:
            self.outcomes.record_wrapup(
                call_id,
                disposition_code=disposition_code,
                notes=notes,
                wrapup_ended_at=to_dt(wrapup_ended_at),
            )
        except Exception:
            logger.exception("call %s: wrap-up could not be queued", call_id)

    # --- telephony actions ------------------------------------------------------------------

    def _offer(self, cmd: OfferCall, received: float | None) -> None:
        meta = self._calls.get(cmd.call_id)
        call: dict[str, Any] = {"call_id": cmd.call_id, "queue_id": cmd.queue_id}
        if meta is not None:
            inc = meta.incoming
            call.update(
                server=inc.server,
                uniqueid=inc.uniqueid,
                caller=inc.caller_num,
                caller_name=inc.caller_name,
                dnis=inc.dnis,
                arrived_at=inc.at,
                vip=meta.vip,
                entitled=meta.entitled,
            )
        queue = self.queues.get(cmd.queue_id)
        if queue is not None:
            call["queue_name"] = queue.name
        head = dumps(
            {
                "type": "offer",
                "agent_id": cmd.agent_id,
                "call": call,
                "ring_timeout_s": cmd.ring_timeout_s,
                "sent_at": self.clock(),  # epoch s: lets a client measure pop delivery
            }
        )
        pop = meta.pop if meta is not None and meta.pop is not None else "null"
        delivered = self.agent_hub.publish_text(
            cmd.agent_id, f'{head[:-1]},"pop":{pop}}}', want_delivery=True
        )
        self._run_action(cmd, received, delivered)

    def _run_action(
        self,
        cmd: Command,
        received: float | None,
        delivered: Sequence[asyncio.Future[bool]] = (),
    ) -> None:
        """Execute now, or (behind this call's earlier actions / the offer push) in a task."""
        call_id: str = getattr(cmd, "call_id", "")
        previous = self._chains.get(call_id)
        if previous is None and not any(not f.done() for f in delivered):
            self._execute_now(cmd, received)  # the common case: no task, no delay
            return
        task = self._spawn(
            self._execute_later(cmd, received, previous, delivered),
            f"action-{type(cmd).__name__}",
        )
        self._chains[call_id] = task

        def _unchain(t: asyncio.Task[None]) -> None:
            if self._chains.get(call_id) is t:
                del self._chains[call_id]

        task.add_done_callback(_unchain)

    async def _execute_later(
        self,
        cmd: Command,
        received: float | None,
        previous: asyncio.Task[None] | None,
        delivered: Sequence[asyncio.Future[bool]],
    ) -> None:
        if previous is not None and not previous.done():
            await asyncio.wait([previous])
        if delivered:
            # The offer and screen pop reach the agent's screen before the phone rings.
            await asyncio.wait(delivered, timeout=self.offer_push_timeout_s)
        self._execute_now(cmd, received)

    def _execute_now(self, cmd: Command, received: float | None) -> None:
        """``link.execute`` writes the actions at once; failures return through the sink."""
        link = self.link
        if isinstance(cmd, OfferCall):
            self.counters["offers"] += 1
        try:
            if link is None:
                raise RuntimeError("no telephony link attached")
            link.execute(cmd)
        except Exception as exc:
            self.counters["action_failures"] += 1
            logger.warning("action %s failed: %s", cmd, exc)
            if isinstance(cmd, OfferCall):
                self.inject(OfferFailed(cmd.call_id, cmd.agent_id, OfferFailure.LINK))
            return
        if isinstance(cmd, OfferCall) and received is not None:
            latency = time.perf_counter() - received
            self._routing_latency.append(latency)
            self._per_call_latency.append((cmd.call_id, latency, self.clock()))

    # --- agent actions (REST) ---------------------------------------------------------------

    def _action(self, event: Event) -> None:
        if (
            isinstance(event, AgentLogin | AgentReady | AgentPause | AgentLogout)
            and event.agent_id not in self.agents
        ):
            raise AgentNotFound(f"Agent {event.agent_id} does not exist.")
        agent_id = getattr(event, "agent_id", None)
        if self.store is not None and isinstance(agent_id, str):
            self.store.mark_agent(agent_id)  # a deferred pause / logout changes no state
        try:
            self._handle(event, time.perf_counter())
        except problems.ProblemError:
            raise
        except Exception as exc:
            mapped = problems.from_routing_error(exc)
            if mapped is None:
                raise
            raise mapped from exc

    async def login(self, agent_id: str, device: str | None = None) -> dict[str, Any]:
        row = self.agents.get(agent_id)
        if row is None:
            raise AgentNotFound(f"Agent {agent_id} does not exist.")
        self._action(AgentLogin(agent_id, device or row.device))
        return self.agent_view(agent_id)

    async def ready(self, agent_id: str) -> dict[str, Any]:
        self._action(AgentReady(agent_id))
        return self.agent_view(agent_id)

    async def pause(self, agent_id: str, reason: str) -> dict[str, Any]:
        self._action(AgentPause(agent_id, reason))
        return self.agent_view(agent_id)

    async def logout(self, agent_id: str) -> dict[str, Any]:
        self._action(AgentLogout(agent_id))
        return self.agent_view(agent_id)

    async def wrap_up(
        self, agent_id: str, disposition_code: str, notes: str | None = None
    ) -> dict[str, Any]:
        """Record the disposition of the agent's last call and end its wrap-up."""
        if agent_id not in self.agents:
            raise AgentNotFound(f"Agent {agent_id} does not exist.")
        async with self.database.sessionmaker() as session:
            known = await loader.disposition_exists(session, disposition_code)
        if not known:
            raise UnknownDisposition(
                f"Disposition code {disposition_code!r} does not exist.",
                disposition_code=disposition_code,
            )
        last = self._last_call.get(agent_id)
        if last is None or last.dispositioned:
            raise NothingToWrapUp(f"Agent {agent_id} has no call to wrap up.")
        state = self._agent_state(agent_id)
        if state == AgentState.WRAP_UP.value:
            self._action(AgentReady(agent_id))  # ends the wrap-up: WrapUpEnded is emitted
        last.dispositioned = True
        self._record_wrapup(last.call_id, disposition_code, notes, last.wrapup_ended_at)
        view = self.agent_view(agent_id)
        view["wrapped_call_id"] = last.call_id
        return view

    async def force_state(
        self, agent_id: str, state: str, reason: str | None = None, *, by: str | None = None
    ) -> dict[str, Any]:
        """A supervisor moves an agent to ready, paused (with a reason) or logged out."""
        if state == AgentState.READY.value:
            event: Event = AgentReady(agent_id)
        elif state == AgentState.PAUSED.value:
            event = AgentPause(agent_id, reason or "supervisor")
        elif state == AgentState.LOGGED_OUT.value:
            event = AgentLogout(agent_id)
        else:
            raise InvalidForcedState(f"Cannot force state {state!r}.", state=state)
        logger.info("agent %s forced to %s by %s (%s)", agent_id, state, by, reason)
        self._action(event)
        return self.agent_view(agent_id)

    # --- live views --------------------------------------------------------------------------

    def _agent_state(self, agent_id: str) -> str | None:
        view = self.engine.agent(agent_id)
        if view is None:
            return None
        state = getattr(view, "state", None)
        return state.value if isinstance(state, enum.Enum) else state

    def agent_view(self, agent_id: str) -> dict[str, Any]:
        row = self.agents.get(agent_id)
        if row is None:
            raise AgentNotFound(f"Agent {agent_id} does not exist.")
        view = self.engine.agent(agent_id)
        return self._agent_dict(row, view)

    def _agent_dict(self, row: loader.AgentRow, view: Any) -> dict[str, Any]:
        now = self.clock()
        data: dict[str, Any] = _jsonable(view) if view is not None else {}
        since = data.get("since") or data.get("state_since")
        out: dict[str, Any] = {
            "agent_id": row.config.agent_id,
            "name": row.name,
            "team": row.config.team,
            "queues": list(row.config.queues),
            "state": data.get("state", AgentState.LOGGED_OUT.value),
            "reason": data.get("reason"),
            "call_id": data.get("call_id"),
            "device": data.get("device"),
            "since": since,
            "time_in_state_s": round(now - since, 1) if isinstance(since, int | float) else None,
        }
        for key, value in data.items():
            out.setdefault(key, value)
        return out

    def agent_states(
        self, *, queue_id: str | None = None, team: str | None = None
    ) -> list[dict[str, Any]]:
        out = []
        for agent_id, row in self.agents.items():
            if queue_id is not None and queue_id not in row.config.queues:
                continue
            if team is not None and team not in (row.config.team, str(row.team_id)):
                continue
            out.append(self._agent_dict(row, self.engine.agent(agent_id)))
        return out

    def live_calls(self) -> dict[str, Any]:
        """Calls in progress: waiting per queue, offered (ringing), connected."""
        now = self.clock()
        waiting: dict[str, list[dict[str, Any]]] = {q: [] for q in self.queues}
        offered: list[dict[str, Any]] = []
        connected: list[dict[str, Any]] = []
        for call_id, meta in self._calls.items():
            view = self.engine.call(call_id) if meta.classified else None
            data: dict[str, Any] = _jsonable(view) if view is not None else {}
            inc = meta.incoming
            item = {
                "call_id": call_id,
                "server": inc.server,
                "caller": inc.caller_num,
                "caller_name": inc.caller_name,
                "dnis": inc.dnis,
                "queue_id": data.get("queue_id", meta.queue_id),
                "arrived_at": inc.at,
                "waited_s": round(now - inc.at, 1),
                "vip": meta.vip,
                "entitled": meta.entitled,
                "agent_id": data.get("agent_id"),
                "state": data.get("state", "classifying" if not meta.classified else None),
            }
            for key, value in data.items():
                item.setdefault(key, value)
            state = str(item["state"] or "")
            if state in ("connected", "answered", "on_call", "talking"):
                connected.append(item)
            elif state in ("offered", "ringing", "reserved"):
                offered.append(item)
            else:
                waiting.setdefault(str(item["queue_id"]), []).append(item)
        return {"waiting": waiting, "offered": offered, "connected": connected}

    def queue_views(self) -> list[dict[str, Any]]:
        board = self.wallboard.state(self.clock())
        out = []
        for queue_id, row in self.queues.items():
            item: dict[str, Any] = {
                "queue_id": queue_id,
                "name": row.name,
                "open": self._queue_open.get(queue_id, True),
                "priority": row.config.priority,
                "ring_timeout_s": row.config.ring_timeout_s,
                "wrapup_s": row.config.wrapup_s,
                "dnis": sorted(d for d, q in self.dnis.items() if q == queue_id),
                "wallboard": board["queues"].get(queue_id),
            }
            with contextlib.suppress(Exception):  # queue removed meanwhile
                item["routing"] = _jsonable(self.engine.queue_stats(queue_id))
            out.append(item)
        return out

    def server_status(self) -> list[dict[str, Any]]:
        if self.link is not None:
            try:
                status = self.link.status()
            except Exception:
                logger.exception("link status failed")
            else:
                items = status.values() if isinstance(status, dict) else status
                return [_jsonable(s) for s in items]
        return [_jsonable(s) for s in self._servers.values()]

    def latency_stats(self) -> dict[str, Any]:
        """Routing latency (event received -> OfferCall executed) and screen-pop latency."""
        return {
            "routing": _percentiles(self._routing_latency),
            "screen_pop": _percentiles(self._pop_latency),
            "counters": dict(self.counters),
        }

    def latency_samples(self, since: float = 0.0) -> list[tuple[str, float, float]]:
        """(call_id, routing latency s, epoch s the offer's Redirect was written) per
        executed offer written after ``since``, oldest first (kept: the last
        ``latency_window``).  The load test joins them with the simulator's ACDHold
        times: AMI event -> Redirect written, across processes on one clock."""
        samples = self._per_call_latency
        if since <= 0.0:
            return list(samples)
        out = []
        for sample in reversed(samples):
            if sample[2] <= since:
                break
            out.append(sample)
        out.reverse()
        return out

    # --- periodic work ------------------------------------------------------------------------

    async def _wallboard_loop(self) -> None:
        while True:
            await asyncio.sleep(self.wallboard_interval_s)
            try:
                # In slices that yield to the loop: routing never waits for a whole tick.
                delta = await self.wallboard.publish_async(self.clock)
                if delta is not None:
                    self.wallboard_hub.broadcast(delta)
            except Exception:
                logger.exception("wallboard tick failed")

    def wallboard_snapshot(self) -> dict[str, Any]:
        return self.wallboard.snapshot(self.clock())

    async def _hours_loop(self) -> None:
        while True:
            await asyncio.sleep(self.hours_interval_s)
            try:
                self.check_hours()
            except Exception:
                logger.exception("opening-hours check failed")

    def check_hours(self) -> None:
        """Open / close queues whose opening hours say so (``SetQueueOpen`` on change)."""
        now = self.clock()
        for queue_id, row in self.queues.items():
            is_open = loader.is_open(row.hours, now)
            if self._queue_open.get(queue_id) != is_open:
                self._queue_open[queue_id] = is_open
                logger.info("queue %s is now %s", queue_id, "open" if is_open else "closed")
                self._handle(SetQueueOpen(queue_id, is_open), time.perf_counter())

    # --- configuration views (for other modules) ------------------------------------------

    def queue_config(self, queue_id: str) -> QueueConfig | None:
        row = self.queues.get(queue_id)
        return row.config if row else None

    def agent_config(self, agent_id: str) -> AgentConfig | None:
        row = self.agents.get(agent_id)
        return row.config if row else None


def _is_routing_error(exc: BaseException) -> bool:
    return problems.routing_status(exc) is not None
