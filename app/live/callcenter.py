"""The call center: the asyncio driver around the pure ``RoutingEngine``.

Theory of operation
-------------------
Everything that changes routing state goes through ``RoutingEngine.handle(event, now)``
(or ``handle_timer(now)``) on the event loop, and the returned commands are dispatched
at once by ``_dispatch``:

- telephony actions (``OfferCall``, ``ReturnToHold``, ``OverflowCall``, ``HangupCall``)
  go to ``app.live.actions`` (chained per call, concurrent across calls);
- notifications go to the outcome writer (``app.live.records``; batched, off the
  routing path), the agent websocket hub, the wallboard counters and the
  ``listeners`` (the history domains' writers).  None of them awaits.

The telephony link's items enter one inbox, consumed by one task in arrival order.
The inbox is bounded (``inbox_size``, like the hub's queues) and never drops: when it
is full, whoever puts the next item (the link's sink, a look-up, an injected event)
first processes the oldest items itself, in order, until there is room
(``app.live.inbox``); ``counters["inbox_full"]`` counts those puts and a WARNING line
marks each episode.  The link is never paused (past Asterisk's writetimeout the AMI
session would be cut and its events lost at the source).
``CallCenter`` is the facade the rest of the application uses; it delegates to its
parts, which share one ``app.live.tracking.LiveState``:

- ``app.live.classify``: arrival, the CRM screen pop (prefetch, look-up, held events);
- ``app.live.actions``: per-call action chains around ``link.execute``;
- ``app.live.restore``: restart (saved state restored, calls adopted or ended);
- ``app.live.views``: live queries (agents, calls, queues, servers, latency);
- ``app.live.agents``: agent actions (log in, ready, pause, log out, wrap up, forced);
- ``app.live.configure``: configuration loaded into the core, opening hours;
- ``app.live.records``: outcome rows to the writer; ``app.live.inbox``: the inbox;
- ``app.live.contracts``: the typed collaborators (link, outcome writer, database,
  look-up) and what the driver offers its parts.

Clock: ``clock()`` (epoch seconds, default ``time.time``) is the ``now`` passed to the
core and stamped on records; latencies use ``time.perf_counter``.

Timer: one handle on the event loop's clock (``loop.call_at``) for
``engine.next_deadline()``; every state change re-arms it when the deadline moved.  The
deadline is on the core's clock (epoch s); it is converted once, when armed, into the
loop's monotonic clock, so the wait itself never depends on the wall clock (a clock
step cannot stretch it).  Records keep wall-clock timestamps.

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

Invariants:
- The call center owns every task it starts (consumer, timer, tickers, lookups,
  actions); ``close()`` cancels and awaits them all.
- Routing errors raised by agent actions are re-raised as RFC 9457 problems (the
  routing core leaves its state unchanged when it refuses); routing errors caused by
  telephony events (late events of an ended call) are logged and dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any, assert_never

from app.errors import AgentNotFound, InvalidForcedState, NothingToWrapUp, UnknownDisposition
from app.live import boardhistory, loader, protocol
from app.live.actions import TELEPHONY_ACTIONS, ActionRunner
from app.live.agents import AgentActions
from app.live.classify import Classifier
from app.live.configure import Configuration
from app.live.contracts import (
    DatabaseLike,
    Lookup,
    OutcomeWriterLike,
    TelephonyLinkLike,
)
from app.live.hub import Hub
from app.live.inbox import Inbox
from app.live.persist import StateStore
from app.live.records import Recorder
from app.live.restore import Restorer
from app.live.tracking import Classified, InboxItem, LastCall, LiveState, Run
from app.live.views import (
    LatencyStats,
    LiveCallsView,
    LiveViews,
    QueueView,
    ServerStatusView,
    WrappedUp,
)
from app.live.wallboard import Wallboard
from cti.types import (
    CallerArriving,
    CallerLeftEarly,
    CallEvent,
    IncomingCall,
    LinkItem,
    OriginateResult,
    ServerStatus,
)
from routing.commands import (
    AgentStateChanged,
    CallAnswered,
    CallEnded,
    CallOffered,
    CallQueued,
    Command,
    OfferCall,
    WrapUpEnded,
)
from routing.config import AgentConfig, QueueConfig
from routing.engine import RoutingEngine
from routing.errors import RoutingError
from routing.events import (
    CallsResumed,
    CallsSuspended,
    Event,
)

__all__ = [
    "AgentNotFound",
    "CallCenter",
    "InvalidForcedState",
    "Lookup",
    "NothingToWrapUp",
    "OutcomeWriterLike",
    "TelephonyLinkLike",
    "UnknownDisposition",
]

logger = logging.getLogger(__name__)

Listener = Callable[[Command, float], None]
"""A subscriber to the routing notifications (``(command, now)``; never awaits): the
domains that keep history (``app.agentlog``, ``app.reports``), wired by the composition
root through ``LiveOptions.listeners``."""

# Events handled by the consumer before it lets the event loop run (sockets, timers).
_CONSUME_SLICE = 64


class CallCenter:
    """Drives the routing core from telephony events, agent actions and time."""

    def __init__(
        self,
        *,
        engine: RoutingEngine,
        database: DatabaseLike,
        outcomes: OutcomeWriterLike,
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
        inbox_size: int = 100_000,
        listeners: Sequence[Listener] = (),
    ) -> None:
        self.engine = engine
        self.listeners = tuple(listeners)
        self.database = database
        self.outcomes = outcomes
        self.clock = clock
        self.agent_hub = agent_hub or Hub("agents")
        self.wallboard_hub = wallboard_hub or Hub("wallboard", queue_size=32)
        self.wallboard = wallboard or Wallboard(now=clock())
        self.wallboard_interval_s = wallboard_interval_s
        self.hours_interval_s = hours_interval_s
        self.store = store

        self._inbox = Inbox(inbox_size)
        self._processing = False  # an inbox item is being processed (re-entry guard)
        self._overfull = False  # the inbox was full and has not drained to half since
        self._tasks: set[asyncio.Task[None]] = set()  # every task this object started
        self._loops: list[asyncio.Task[None]] = []
        self._timer: asyncio.TimerHandle | None = None  # on the loop clock
        self._armed: float | None = None  # the core deadline ``_timer`` is for
        self._closing = False

        self.state = LiveState(engine, clock, store, latency_window)
        self.counters = self.state.counters
        self.recorder = Recorder(outcomes)
        self.actions = ActionRunner(
            self.state, self, self.agent_hub, offer_push_timeout_s=offer_push_timeout_s
        )
        self.views = LiveViews(self.state, self.wallboard, lambda: self.actions.link)
        self.restorer = Restorer(
            self.state,
            self,
            self.recorder,
            self.actions,
            restore_timeout_s=restore_timeout_s,
            server_names=lambda: {str(s.get("name")) for s in self.views.server_status()},
        )
        self.configuration = Configuration(self.state, self, self.wallboard, database)
        self.agent_actions = AgentActions(self.state, self, self.views, self.recorder, database)
        self.classifier = Classifier(
            self.state,
            self,
            self.recorder,
            self.actions,
            self.restorer,
            lookup=lookup,
            lookup_timeout_s=lookup_timeout_s,
            prefetch_ttl_s=prefetch_ttl_s,
            prefetch_max=prefetch_max,
            default_queue_id=default_queue_id,
        )

    # --- configuration and parts, as the application sees them ---------------------------

    @property
    def link(self) -> TelephonyLinkLike | None:
        return self.actions.link

    @property
    def dnis(self) -> dict[str, str]:
        return self.state.dnis

    @property
    def queues(self) -> dict[str, loader.QueueRow]:
        return self.state.queues

    @property
    def agents(self) -> dict[str, loader.AgentRow]:
        return self.state.agents

    @property
    def prefetch_ttl_s(self) -> float:
        return self.classifier.prefetch_ttl_s

    @prefetch_ttl_s.setter
    def prefetch_ttl_s(self, value: float) -> None:
        self.classifier.prefetch_ttl_s = value

    def use_lookup(self, lookup: Lookup | None) -> Lookup | None:
        """Replace the screen-pop look-up (a CRM adapter, or a slower one in tests) for
        the calls that arrive from now on; returns the previous one."""
        previous, self.classifier.lookup = self.classifier.lookup, lookup
        return previous

    @property
    def closing(self) -> bool:
        return self._closing

    # --- lifecycle -----------------------------------------------------------------------

    def attach_link(self, link: TelephonyLinkLike) -> None:
        self.actions.link = link

    async def start(self) -> None:
        """Load the configuration and the previous run's live state, then start
        consuming events and the timers."""
        await self.reload()
        try:  # the figures so far today: a restart must not zero the wallboard
            await boardhistory.rebuild(self.wallboard, self.database.sessionmaker, now=self.clock())
        except Exception:  # the wallboard is not worth refusing to route for
            logger.exception("wallboard not rebuilt from the database; counting from zero")
        if self.store is not None:
            await self.restorer.restore(self.store)
            self.store.start(
                agent_row=self.restorer.session_row, call_row=self.restorer.live_call_row
            )
        self._loops = [
            self.spawn(self._consume(), "callcenter-consumer"),
            self.spawn(self._wallboard_loop(), "callcenter-wallboard"),
            self.spawn(self._hours_loop(), "callcenter-hours"),
        ]
        if self.restorer.waiting:
            self.spawn(self._restore_deadline(), "callcenter-restore-deadline")

    async def close(self) -> None:
        """Cancel and await every task this call center started, then save the live
        state (agent sessions, calls in progress) for the next start (idempotent)."""
        self._closing = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self.store is not None:
            await self.store.close()
        for sub in self.agent_hub.subscribers() + self.wallboard_hub.subscribers():
            sub.close(protocol.Close.GOING_AWAY, "service stopping")

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Start a task this call center owns (``close`` cancels and awaits it)."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _restore_deadline(self) -> None:
        """No agent waits forever for a server that does not come back."""
        await asyncio.sleep(self.restorer.restore_timeout_s)
        self.inject_callable(self.restorer.timed_out)

    # --- configuration ---------------------------------------------------------------------

    async def reload(
        self,
        *,
        agent_ids: Iterable[str] | None = None,
        queue_ids: Iterable[str] | None = None,
    ) -> None:
        """(Re)load queues, agents and the DNIS map (``app.live.configure``)."""
        await self.configuration.reload(agent_ids=agent_ids, queue_ids=queue_ids)

    async def config_changed(
        self, *, agent_ids: Iterable[str] = (), queue_ids: Iterable[str] = ()
    ) -> None:
        """The REST layer changed these rows: reload them (and the DNIS map)."""
        await self.configuration.config_changed(agent_ids=agent_ids, queue_ids=queue_ids)

    # --- the inbox ---------------------------------------------------------------------------

    def sink(self, item: LinkItem) -> None:
        """Called by the telephony link for every event; never blocks on I/O, never
        raises, never drops (a full inbox: see ``_put``)."""
        self._put(item, time.perf_counter())

    def inject(self, event: CallEvent) -> None:
        """Feed an event the driver itself generated (a failed action) through the inbox,
        ordered with the link's events: processed exactly as if the link had sent it."""
        self._put(event, time.perf_counter())

    def inject_callable(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the consumer, ordered with the link's events."""
        self._put(Run(fn), time.perf_counter())

    def enqueue(self, item: Classified, received: float) -> None:
        """A part's item (a look-up's ``Classified``) for the consumer."""
        self._put(item, received)

    @property
    def inbox_backlog(self) -> int:
        """Items waiting in the inbox."""
        return len(self._inbox)

    def _put(self, item: InboxItem, received: float) -> None:
        """Queue ``item``; on a full inbox first process the oldest items here, in order,
        until there is room (``app.live.inbox``: bounded, nothing dropped, the link never
        paused).  While an item is being processed (a link reporting a failed action at
        once) the item is queued over the bound instead: processing is never nested."""
        inbox = self._inbox
        if inbox.full() and not self._processing:
            self.counters["inbox_full"] += 1
            if not self._overfull:
                self._overfull = True
                logger.warning(
                    "inbox full (%d items): the telephony link processes events itself "
                    "until the driver catches up",
                    len(inbox),
                )
            while inbox.full():
                head = inbox.pop()
                if head is None:
                    break
                self._process_one(*head)
        inbox.put(item, received)

    def _process_one(self, item: InboxItem, received: float) -> None:
        self._processing = True
        try:
            self._process(item, received)
        except Exception:  # one item's bug must not stop the stream of every call
            logger.exception("event %r could not be processed", item)
        finally:
            self._processing = False
        if self._overfull and len(self._inbox) <= self._inbox.maxsize // 2:
            self._overfull = False
            logger.info("inbox drained to %d items", len(self._inbox))

    async def _consume(self) -> None:
        # The inbox's ``get`` does not yield while items are queued: a backlog would be
        # drained in one step, and for as long as it lasts no socket is read.  Past
        # Asterisk's writetimeout the AMI session is cut and its events are lost (measured:
        # docs/loadtest.md, "History of measurements").  Yield every ``_CONSUME_SLICE``
        # items instead.
        done = 0
        while True:
            item, received = await self._inbox.get()
            self._process_one(item, received)
            done += 1
            if done >= _CONSUME_SLICE:
                done = 0
                await asyncio.sleep(0)

    def _process(self, item: InboxItem, received: float) -> None:
        if isinstance(item, IncomingCall):
            self.classifier.incoming(item, received)
        elif isinstance(item, CallerArriving):
            self.classifier.prefetch(item)
        elif isinstance(item, CallerLeftEarly):
            self.classifier.left_early(item)
        elif isinstance(item, Classified):
            self.classifier.classified(item)
        elif isinstance(item, ServerStatus):
            self._server_status(item)
        elif isinstance(item, Run):
            item.fn()
        elif isinstance(item, OriginateResult):
            # Outbound calls (callbacks) are not for the routing core.
            logger.debug("telephony item ignored: %r", item)
        elif isinstance(item, CallEvent):
            self.telephony_event(item, received)
        else:
            assert_never(item)

    def _server_status(self, item: ServerStatus) -> None:
        state = self.state
        state.servers[item.name] = item
        logger.info(
            "AMI server %s %s", item.name, "connected" if item.connected else "disconnected"
        )
        if item.connected:
            # Emitted after the resync and its adoptions (cti.link): resync done.
            self.restorer.resync_done(item.name)
            if item.name in state.down:
                state.down.discard(item.name)
                self._resume_server(item.name)
        elif item.name not in state.down:
            state.down.add(item.name)
            self._suspend_server(item.name)

    def _suspend_server(self, server: str) -> None:
        """The server is unreachable: its calls are not routable until it is back."""
        ids = self.state.known_calls_of(server)
        logger.warning("server=%s unreachable: %d calls suspended", server, len(ids))
        if ids:
            self.counters["suspended_calls"] += len(ids)
            self.handle(CallsSuspended(ids, "server disconnected"), time.perf_counter())

    def _resume_server(self, server: str) -> None:
        """The server is back and its calls reconciled by the resync: route them again."""
        ids = self.state.known_calls_of(server)
        logger.info("server=%s resynced: %d calls resumed", server, len(ids))
        if ids:
            self.counters["resumed_calls"] += len(ids)
            self.handle(CallsResumed(ids), time.perf_counter())

    def telephony_event(self, event: CallEvent, received: float) -> None:
        """A routing event from the link: held while its call's look-up runs, else fed
        to the core (a routing error of a late event is counted and dropped)."""
        if self.classifier.hold(event, received):
            return
        try:
            self.handle(event, received)
        except RoutingError as exc:  # a late event of a call the core already ended
            self.counters["ignored_events"] += 1
            logger.debug("event %s ignored by the routing core: %s", event, exc)

    # --- the core --------------------------------------------------------------------------

    def handle(self, event: Event, received: float | None) -> None:
        """``engine.handle`` and dispatch of its commands; re-arms the timer."""
        cmds: Sequence[Command] = self.engine.handle(event, self.clock())
        self._dispatch(cmds, received)
        self._rearm()

    def _rearm(self, *, min_delay: float = 0.0) -> None:
        """(Re)schedule the timer handle for the core's next deadline, if it moved."""
        deadline = self.engine.next_deadline()
        if self._closing or (deadline == self._armed and self._timer is not None):
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._armed = deadline
        if deadline is None:
            return
        loop = asyncio.get_running_loop()
        delay = max(deadline - self.clock(), min_delay)
        self._timer = loop.call_at(loop.time() + delay, self._on_timer)

    def _on_timer(self) -> None:
        """The core's deadline is due: ``handle_timer`` and dispatch, then re-arm."""
        self._timer = None
        deadline, self._armed = self._armed, None
        try:
            cmds = self.engine.handle_timer(self.clock())
            self._dispatch(cmds, time.perf_counter())
        except Exception:  # a bug in one timer must not stop every later one
            logger.exception("routing timer failed")
        # A deadline the core keeps in the past is retried 1 ms later: the loop cannot spin.
        self._rearm(min_delay=0.001 if self.engine.next_deadline() == deadline else 0.0)

    def _dispatch(self, cmds: Sequence[Command], received: float | None) -> None:
        now = self.clock()
        state = self.state
        record = self.recorder.event
        for cmd in cmds:
            if isinstance(cmd, TELEPHONY_ACTIONS):
                if isinstance(cmd, OfferCall):
                    self.actions.offer(cmd, received)
                else:
                    self.actions.run(cmd, None)
                continue
            self.wallboard.apply(cmd, now)
            for listener in self.listeners:
                try:
                    listener(cmd, now)
                except Exception:  # a subscriber's bug must not stop routing
                    logger.exception("listener %r failed on %s", listener, type(cmd).__name__)
            if isinstance(cmd, AgentStateChanged):
                self._agent_state_changed(cmd)
            elif isinstance(cmd, CallQueued):
                state.mark_call(cmd.call_id)
                record(cmd.call_id, "queued", cmd.at, None, self._queued_data(cmd))
            elif isinstance(cmd, CallOffered):
                state.mark_call(cmd.call_id)
                record(cmd.call_id, "offered", cmd.at, cmd.agent_id, {"queue_id": cmd.queue_id})
            elif isinstance(cmd, CallAnswered):
                state.mark_call(cmd.call_id)
                record(cmd.call_id, "answered", cmd.at, cmd.agent_id, {"queue_id": cmd.queue_id})
                self.agent_hub.publish(
                    cmd.agent_id, protocol.call_answered(cmd.call_id, cmd.queue_id, cmd.at)
                )
            elif isinstance(cmd, CallEnded):
                self._call_ended(cmd)
            elif isinstance(cmd, WrapUpEnded):
                self._wrapup_ended(cmd)

    def _queued_data(self, cmd: CallQueued) -> dict[str, Any]:
        """The queued event; on arrival it also names the caller (journaled at once, so a
        restart can write the row of a call killed before its live state was saved)."""
        data: dict[str, Any] = {"queue_id": cmd.queue_id}
        meta = self.state.calls.get(cmd.call_id)
        if cmd.reason == "arrived" and meta is not None:
            inc = meta.incoming
            data.update(caller=inc.caller_num, dnis=inc.dnis, arrived_at=inc.at)
            data.update(vip=meta.vip, entitled=meta.entitled)
        return data

    def _agent_state_changed(self, cmd: AgentStateChanged) -> None:
        self.state.mark_agent(cmd.agent_id)
        self.agent_hub.publish(
            cmd.agent_id,
            protocol.state_changed(
                cmd.agent_id,
                cmd.state.value,
                previous=cmd.previous.value if cmd.previous else None,
                reason=cmd.reason,
                call_id=cmd.call_id,
                at=cmd.at,
            ),
        )

    def _call_ended(self, cmd: CallEnded) -> None:
        rec = cmd.record
        meta = self.state.untrack(rec.call_id)
        self.state.mark_call(rec.call_id)
        self.recorder.outcome(rec, meta.incoming if meta else None)
        self.recorder.event(
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
                protocol.call_ended(
                    rec.call_id,
                    result=rec.result.value,
                    answered=rec.answered_by == agent,
                    at=rec.ended_at,
                ),
            )
        if rec.answered_by is not None:
            self.state.last_call[rec.answered_by] = LastCall(rec.call_id, rec.ended_at)

    def _wrapup_ended(self, cmd: WrapUpEnded) -> None:
        last = self.state.last_call.get(cmd.agent_id)
        if last is None or cmd.call_id is None or last.call_id != cmd.call_id:
            return
        last.wrapup_ended_at = cmd.at
        if not last.dispositioned:
            # The wrap-up timer ran out without a disposition: still record when it ended.
            self.recorder.wrapup(last.call_id, None, None, cmd.at)

    # --- agent actions (REST) ---------------------------------------------------------------

    async def login(self, agent_id: str, device: str | None = None) -> protocol.AgentView:
        return await self.agent_actions.login(agent_id, device)

    async def ready(self, agent_id: str) -> protocol.AgentView:
        return await self.agent_actions.ready(agent_id)

    async def pause(self, agent_id: str, reason: str) -> protocol.AgentView:
        return await self.agent_actions.pause(agent_id, reason)

    async def logout(self, agent_id: str) -> protocol.AgentView:
        return await self.agent_actions.logout(agent_id)

    async def wrap_up(
        self, agent_id: str, disposition_code: str, notes: str | None = None
    ) -> WrappedUp:
        """Record the disposition of the agent's last call and end its wrap-up."""
        return await self.agent_actions.wrap_up(agent_id, disposition_code, notes)

    async def force_state(
        self, agent_id: str, state: str, reason: str | None = None, *, by: str | None = None
    ) -> protocol.AgentView:
        """A supervisor moves an agent to ready, paused (with a reason) or logged out."""
        return await self.agent_actions.force_state(agent_id, state, reason, by=by)

    # --- live views (``app.live.views``) ------------------------------------------------------

    def agent_view(self, agent_id: str) -> protocol.AgentView:
        return self.views.agent_view(agent_id)

    def agent_states(
        self, *, queue_id: str | None = None, team: str | None = None
    ) -> list[protocol.AgentView]:
        return self.views.agent_states(queue_id=queue_id, team=team)

    def live_calls(self) -> LiveCallsView:
        return self.views.live_calls()

    def queue_views(self) -> list[QueueView]:
        return self.views.queue_views()

    def server_status(self) -> list[ServerStatusView]:
        return self.views.server_status()

    def latency_stats(self) -> LatencyStats:
        return self.views.latency_stats()

    def latency_samples(self, since: float = 0.0) -> list[tuple[str, float, float]]:
        return self.views.latency_samples(since)

    def wallboard_snapshot(self) -> protocol.SnapshotFrame:
        return self.views.wallboard_snapshot()

    # --- periodic work ------------------------------------------------------------------------

    async def _wallboard_loop(self) -> None:
        while True:
            await asyncio.sleep(self.wallboard_interval_s)
            try:
                # In slices that yield to the loop: routing never waits for a whole tick.
                delta = await self.wallboard.publish_async(self.clock)
                if delta is not None:
                    self.wallboard_hub.broadcast(delta)
            except Exception:  # a failed tick must not end the wallboard for good
                logger.exception("wallboard tick failed")

    async def _hours_loop(self) -> None:
        while True:
            await asyncio.sleep(self.hours_interval_s)
            try:
                self.check_hours()
            except Exception:  # a failed check must not end opening hours for good
                logger.exception("opening-hours check failed")

    def check_hours(self) -> None:
        """Open / close queues whose opening hours say so (``SetQueueOpen`` on change)."""
        self.configuration.check_hours()

    # --- configuration views (for other modules) ------------------------------------------

    def queue_config(self, queue_id: str) -> QueueConfig | None:
        row = self.state.queues.get(queue_id)
        return row.config if row else None

    def agent_config(self, agent_id: str) -> AgentConfig | None:
        row = self.state.agents.get(agent_id)
        return row.config if row else None

    def own_device(self, agent_id: str) -> str | None:
        """The agent's own device as configured (kept current by ``config_changed``), or
        ``None`` for an agent the call center does not know."""
        row = self.state.agents.get(agent_id)
        return row.device if row else None

    def calls_in_queue(self, queue_id: str) -> int:
        """Calls the routing core holds in ``queue_id`` now (``LiveService``)."""
        try:
            return self.engine.queue_stats(queue_id).waiting
        except RoutingError:  # not in the router (inactive): nothing can wait in it
            return 0
