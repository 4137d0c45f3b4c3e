"""What the driver knows beyond the routing core: per-call bookkeeping, the loaded
configuration, the previous run's state still waiting, counters and latency samples.

One ``LiveState`` is shared by the call center's parts (classification, actions,
restore, views); it is only touched on the event loop.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from app.live import loader
from app.live.persist import SavedCall, SavedSession, StateStore
from app.live.protocol import PopJson
from cti.types import CallEvent, IncomingCall, LinkItem, ServerStatus
from routing.engine import RoutingEngine


@dataclass(slots=True)
class CallMeta:
    """What the driver knows about a call beyond the routing core."""

    incoming: IncomingCall
    queue_id: str
    received: float  # perf_counter when the link delivered it
    pop: PopJson | None = None  # the screen pop as JSON text (one object for the GC, not a tree)
    vip: bool = False
    entitled: bool = False
    held: list[tuple[CallEvent, float]] = field(default_factory=list)
    lookup: asyncio.Task[None] | None = None
    classified: bool = False
    saved: SavedCall | None = None  # left in progress by the previous run (restart)


@dataclass(frozen=True, slots=True)
class Classified:
    """A screen-pop look-up's result as the call keeps it (re-enters the inbox)."""

    call_id: str
    pop: PopJson | None  # JSON text of the screen pop, None: no pop (unknown caller, failure)
    vip: bool
    entitled: bool
    pop_latency_s: float | None


@dataclass(slots=True)
class Prefetch:
    """A screen-pop lookup started at ``CallerArriving`` (before the caller is in hold)."""

    expires: float  # perf_counter: dropped unclaimed after this (caller gone in the IVR)
    task: asyncio.Task[None] | None = None
    result: Classified | None = None  # set when the lookup ended before the call arrived
    claimed: bool = False  # its IncomingCall came first and waits in ``pending``


@dataclass(frozen=True, slots=True)
class Run:
    """Driver work that must be ordered with the link's events (run on the consumer)."""

    fn: Callable[[], None]


@dataclass(slots=True)
class LastCall:
    """An agent's last answered call, until its wrap-up is recorded."""

    call_id: str
    ended_at: float
    wrapup_ended_at: float | None = None
    dispositioned: bool = False


InboxItem = LinkItem | Classified | Run
"""What the driver's inbox carries: the link's items and the driver's own."""


def incoming_of(saved: SavedCall, at: float) -> IncomingCall:
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


def new_counters() -> dict[str, int]:
    return {
        "incoming": 0,
        "unknown_dnis": 0,
        "lookup_timeouts": 0,
        "lookup_errors": 0,
        "prefetch_started": 0,
        "prefetch_ready": 0,  # the pop was known when the caller reached hold
        "prefetch_waited": 0,  # the caller reached hold first; routing waited for it
        "prefetch_dropped": 0,  # never claimed (caller left before hold) or evicted
        "left_before_hold": 0,  # callers who hung up in the greeting / IVR (a row each)
        "action_failures": 0,
        "ignored_events": 0,
        "restored_agents": 0,
        "adopted_calls": 0,
        "ended_while_down": 0,
        "offers": 0,  # OfferCall actions handed to the link (attempts, failed ones too)
        "suspended_calls": 0,
        "resumed_calls": 0,
        "inbox_full": 0,  # items put into a full inbox (the putter processed the oldest)
    }


@dataclass(eq=False)
class LiveState:
    """The driver's own state, shared by its parts (event loop only)."""

    engine: RoutingEngine
    clock: Callable[[], float]  # epoch seconds: the core's ``now`` and record stamps
    store: StateStore | None
    latency_window: int = 100_000

    calls: dict[str, CallMeta] = field(default_factory=dict)  # arrived, not yet ended
    server_calls: dict[str, set[str]] = field(default_factory=dict)  # server -> call ids
    down: set[str] = field(default_factory=set)  # disconnected servers, not yet resynced
    pending: dict[str, CallMeta] = field(default_factory=dict)  # CRM lookup running
    # call_id -> lookup started at CallerArriving, in start order (TTL / size bound)
    prefetched: OrderedDict[str, Prefetch] = field(default_factory=OrderedDict)
    last_call: dict[str, LastCall] = field(default_factory=dict)  # agent_id -> last call
    servers: dict[str, ServerStatus] = field(default_factory=dict)
    dnis: dict[str, str] = field(default_factory=dict)
    queues: dict[str, loader.QueueRow] = field(default_factory=dict)
    agents: dict[str, loader.AgentRow] = field(default_factory=dict)
    queue_open: dict[str, bool] = field(default_factory=dict)
    # Restart: calls the previous run left in progress, not yet found on Asterisk;
    # agents that held a call then, waiting for their server's first resync.
    restored: dict[str, SavedCall] = field(default_factory=dict)
    awaiting: dict[str, SavedSession] = field(default_factory=dict)

    counters: dict[str, int] = field(default_factory=new_counters)
    routing_latency: deque[float] = field(init=False)
    pop_latency: deque[float] = field(init=False)
    # (call_id, routing latency s, epoch s the Redirect was written) per offer
    per_call_latency: deque[tuple[str, float, float]] = field(init=False)

    def __post_init__(self) -> None:
        self.routing_latency = deque(maxlen=self.latency_window)
        self.pop_latency = deque(maxlen=self.latency_window)
        self.per_call_latency = deque(maxlen=self.latency_window)

    def mark_call(self, call_id: str) -> None:
        """The call's saved row (restart) must be rewritten or removed."""
        if self.store is not None:
            self.store.mark_call(call_id)

    def mark_agent(self, agent_id: str) -> None:
        """The agent's saved session (restart) must be rewritten or removed."""
        if self.store is not None:
            self.store.mark_agent(agent_id)

    def track(self, meta: CallMeta) -> None:
        call_id = meta.incoming.call_id
        self.calls[call_id] = meta
        self.server_calls.setdefault(meta.incoming.server, set()).add(call_id)

    def untrack(self, call_id: str) -> CallMeta | None:
        meta = self.calls.pop(call_id, None)
        if meta is not None:
            ids = self.server_calls.get(meta.incoming.server)
            if ids is not None:
                ids.discard(call_id)
                if not ids:
                    del self.server_calls[meta.incoming.server]
        return meta

    def known_calls_of(self, server: str) -> tuple[str, ...]:
        """Ids of the server's calls the routing core has (classified), sorted."""
        calls = self.calls
        ids = self.server_calls.get(server, ())
        return tuple(sorted(c for c in ids if c in calls and calls[c].classified))
