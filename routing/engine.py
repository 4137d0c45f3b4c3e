"""The skills-based ACD engine: events in, commands out, time passed in as ``now``.

Sans-I/O: ``RoutingEngine.handle(event, now)`` applies one ``routing.events`` event and
returns the ``routing.commands`` it causes; ``handle_timer(now)`` fires due deadlines
(reservations, wrap-ups, escalation steps, retries) and ``next_deadline()`` tells the
driver when to call it.  Views (``agent``, ``call``, ``waiting_calls``, ``queue_stats``)
are read-only snapshots.

* Agents are LOGGED_OUT, READY, RESERVED, ON_CALL, WRAP_UP or PAUSED; calls are
  WAITING, OFFERED (ringing one agent) or CONNECTED.  Transitions are data in
  ``routing.transitions``.
* A call goes to the eligible READY agent idle longest; a READY agent takes the
  eligible waiting call with the highest effective priority, then the oldest.
  Eligibility is per queue tier (escalation relaxes levels, widens to other queues,
  overflows); suspended and backing-off calls are not routed.
* Requests that are not allowed raise ``routing.errors`` and change nothing; stale
  telephony facts return ``[]``.
* Every decision is O(log n) on lazily-deleted heaps: nothing scans all agents or calls.

The full theory of operation (rules, restart adoption, invariants the hypothesis tests
check, data structures and costs) is ``docs/routing.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from heapq import heapify, heappop, heappush
from typing import Any, assert_never

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
from routing.errors import (
    DuplicateCall,
    IllegalTransition,
    InvalidConfig,
    QueueInUse,
    UnknownAgent,
    UnknownQueue,
)
from routing.events import (
    AgentDisconnected,
    AgentHungUp,
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
    CallTransferred,
    ConfigureAgent,
    ConfigureQueue,
    Event,
    OfferAnswered,
    OfferFailed,
    OfferFailure,
    RemoveAgent,
    RemoveQueue,
    SetQueueOpen,
)
from routing.transitions import (
    CALL,
    LEAVE,
    LOGIN,
    READY,
    CallEnd,
    CallFact,
    Leave,
    LeaveAction,
    Login,
    Pending,
    Ready,
    Step,
)
from routing.views import AgentView, CallState, CallView, QueueStats

__all__ = ["AgentView", "CallState", "CallView", "QueueStats", "RoutingEngine"]

_LOGGED_OUT = AgentState.LOGGED_OUT
_READY = AgentState.READY
_RESERVED = AgentState.RESERVED
_ON_CALL = AgentState.ON_CALL
_WRAP_UP = AgentState.WRAP_UP
_PAUSED = AgentState.PAUSED

# Hot-path lookups are keyed by the enum's *value*: an enum member's __hash__ is a Python
# call, a str's hash is cached.  Built from the enums / tables, so they cannot drift.
_STATE_INDEX: dict[str, int] = {s._value_: i for i, s in enumerate(AgentState)}

_RESTORABLE: dict[str, AgentState] = {s._value_: s for s in (_READY, _PAUSED, _WRAP_UP)}

_WAITING = CallState.WAITING
_OFFERED = CallState.OFFERED
_CONNECTED = CallState.CONNECTED

# A lazily-deleted heap is rebuilt once it holds more than 2 * live + this many entries.
_COMPACT_SLACK = 64

# Why a WAITING call is not routable (bits of ``_Call.held``; 0 = routable).
_HELD_SUSPENDED = 1  # its server is unreachable (CallsSuspended .. CallsResumed)
_HELD_BACKOFF = 2  # its offers keep failing: retried when its ``_Retry`` timer fires
_UNSUSPEND = ~_HELD_SUSPENDED
_UNBACKOFF = ~_HELD_BACKOFF

# Rows of ``routing.transitions.CALL`` looked up once: an enum key hashes in Python.
_ON_HANGUP = CALL[CallFact.HANGUP]
_ON_FAILED = CALL[CallFact.FAILED]
_ON_TRANSFERRED = CALL[CallFact.TRANSFERRED]


class _Queue:
    __slots__ = (
        "alive",
        "calls",
        "cfg",
        "counts",
        "members",
        "oldest",
        "queue_id",
        "ready",
        "ready_live",
        "ringing",
        "schedule",
        "tier_reqs",
        "waiting",
        "waiting_live",
        "widened",
        "widened_live",
    )

    def __init__(self, cfg: QueueConfig) -> None:
        self.queue_id = cfg.queue_id
        self.alive = True
        self.calls: dict[str, _Call] = {}  # unanswered (waiting + ringing), arrival order
        self.oldest: list[tuple[float, str, int, _Call]] = []
        self.ringing = 0
        self.counts = [0] * len(_STATE_INDEX)  # indexed by _STATE_INDEX[state value]
        self.members = 0
        self.widened: list[tuple[int, float, str, int, _Call]] = []
        self.widened_live = 0
        self.configure(cfg)

    def configure(self, cfg: QueueConfig) -> None:
        """(Re)build tiers, schedule and empty per-tier heaps (caller re-indexes)."""
        self.cfg = cfg
        own = cfg.skills
        tiers: list[tuple[tuple[str, int], ...]] = [own]
        steps = sorted(cfg.escalation, key=lambda st: st.after_s)  # stable
        relaxed = 99
        widen: list[str] = []
        schedule: list[tuple[float, int, tuple[str, ...], Step]] = []
        for st in steps:
            if st.min_level is not None and st.min_level < relaxed:
                relaxed = st.min_level
                reqs = tuple((s, min(lvl, relaxed)) for s, lvl in own)
                if reqs != tiers[-1]:
                    tiers.append(reqs)
            for w in st.add_queues:
                if w != cfg.queue_id and w not in widen:
                    widen.append(w)
            action = Step.OVERFLOW if st.overflow else Step.ESCALATE
            schedule.append((st.after_s, len(tiers) - 1, tuple(widen), action))
        if cfg.max_wait_s is not None:
            schedule.append((cfg.max_wait_s, len(tiers) - 1, tuple(widen), Step.MAX_WAIT))
            schedule.sort(key=lambda e: e[0])  # stable: max-wait after steps at the same time
        self.tier_reqs = tiers
        self.schedule = schedule
        k = len(tiers)
        self.ready: list[list[tuple[float, str, int, _Agent]]] = [[] for _ in range(k)]
        self.ready_live = [0] * k
        self.waiting: list[list[tuple[int, float, str, int, _Call]]] = [[] for _ in range(k)]
        self.waiting_live = [0] * k

    def tier_of(self, skills: dict[str, int]) -> int:
        for k, reqs in enumerate(self.tier_reqs):
            for s, lvl in reqs:
                if skills.get(s, 0) < lvl:
                    break
            else:
                return k
        return -1


class _Agent:
    __slots__ = (
        "agent_id",
        "call",
        "call_heaps",
        "cfg",
        "device",
        "idle_since",
        "indexed",
        "last_call_id",
        "links",
        "missed",
        "pending",
        "ready_seq",
        "reason",
        "si",
        "since",
        "skills",
        "state",
        "timer_seq",
        "until",
        "wrapup_s",
    )

    def __init__(self, cfg: AgentConfig) -> None:
        self.agent_id = cfg.agent_id
        self.cfg = cfg
        self.skills = dict(cfg.skills)
        self.state = _LOGGED_OUT
        self.si = _STATE_INDEX[_LOGGED_OUT._value_]  # index of ``state`` in queue counters
        self.reason: str | None = None
        self.since: float | None = None
        self.device: str | None = None
        self.call: _Call | None = None
        self.last_call_id: str | None = None
        self.missed = 0
        self.idle_since: float | None = None
        self.pending: tuple[Pending, str | None] | None = None
        self.links: list[tuple[_Queue, int]] = []
        self.call_heaps: list[list[tuple[int, float, str, int, _Call]]] = []
        self.ready_seq = 0
        self.indexed = False  # READY and pushed in its queues' ready heaps
        self.timer_seq = 0
        self.until = 0.0  # deadline of the armed timer (meaningful while timer_seq != 0)
        self.wrapup_s = 0.0


class _Call:
    __slots__ = (
        "agent",
        "agents_offered",
        "answered_at",
        "answered_by",
        "arrived_at",
        "boost",
        "call_id",
        "caller",
        "entitled",
        "fails",
        "first_offered_at",
        "held",
        "indexed",
        "level",
        "overflow_due",
        "overflow_target",
        "prio",
        "qseq",
        "queue",
        "queued_at",
        "retry",
        "rona",
        "seq",
        "state",
        "step",
        "timer_seq",
        "until",
        "vip",
        "visited",
        "widen",
    )

    def __init__(self, event: CallArrived | CallAdopted, queue: _Queue, now: float) -> None:
        self.call_id = event.call_id
        self.caller = event.caller
        self.vip = event.vip
        self.entitled = event.entitled
        self.boost = event.priority_boost
        self.arrived_at = now
        self.queue = queue
        self.queued_at = now
        self.state = _WAITING
        self.prio = 0
        self.level = 0
        self.widen: tuple[_Queue, ...] = ()
        self.step = 0
        self.seq = 0  # bumped whenever the call's waiting-heap entries change
        self.indexed = False  # WAITING and pushed in the waiting heaps
        self.qseq = 0  # bumped whenever the call leaves a queue's unanswered set
        self.timer_seq = 0
        self.until = 0.0
        self.agent: _Agent | None = None
        self.first_offered_at: float | None = None
        self.answered_at: float | None = None
        self.answered_by: str | None = None
        self.agents_offered: list[str] = []
        self.rona = 0
        self.overflow_target: str | None = None
        self.overflow_due: str | None = None
        self.visited: list[str] = []
        self.held = 0  # _HELD_* bits: not routable while non-zero
        self.fails = 0  # consecutive offers that failed with LINK / FAILED
        self.retry: _Retry | None = None  # backoff timer (created on first need)


class _Retry:
    """The backoff timer of one call (a second deadline-heap entry beside escalation)."""

    __slots__ = ("call", "timer_seq", "until")

    def __init__(self, call: _Call) -> None:
        self.call = call
        self.timer_seq = 0
        self.until = 0.0


_Out = list[Command]


class RoutingEngine:
    """Skills-based ACD.  ``docs/routing.md`` has the rules and their costs."""

    def __init__(
        self,
        *,
        short_abandon_s: float = 5.0,
        reservation_grace_s: float = 2.0,
        retry_base_s: float = 0.5,
        retry_max_s: float = 30.0,
    ) -> None:
        if short_abandon_s < 0 or reservation_grace_s < 0:
            raise ValueError("short_abandon_s and reservation_grace_s must be >= 0")
        if retry_base_s <= 0 or retry_max_s < retry_base_s:
            raise ValueError("need 0 < retry_base_s <= retry_max_s")
        self._short_abandon = short_abandon_s
        self._grace = reservation_grace_s
        self._retry_base = retry_base_s
        self._retry_max = retry_max_s
        self._queues: dict[str, _Queue] = {}
        self._agents: dict[str, _Agent] = {}
        self._members: dict[str, set[str]] = {}  # queue id -> agent ids (queue may not exist yet)
        self._calls: dict[str, _Call] = {}
        self._timers: list[tuple[float, int, _Agent | _Call | _Retry]] = []
        self._timers_live = 0
        self._timer_seq = 0
        self._dispatch: dict[type[Any], Callable[[Any, float], _Out]] = {
            ConfigureQueue: self._on_configure_queue,
            RemoveQueue: self._on_remove_queue,
            ConfigureAgent: self._on_configure_agent,
            RemoveAgent: self._on_remove_agent,
            SetQueueOpen: self._on_set_queue_open,
            AgentLogin: self._on_login,
            AgentReady: self._on_ready,
            AgentPause: self._on_pause,
            AgentLogout: self._on_logout,
            AgentDisconnected: self._on_disconnected,
            CallArrived: self._on_call_arrived,
            CallsSuspended: self._on_calls_suspended,
            CallsResumed: self._on_calls_resumed,
            OfferAnswered: self._on_offer_answered,
            OfferFailed: self._on_offer_failed,
            CallHungUp: self._on_call_hung_up,
            AgentHungUp: self._on_agent_hung_up,
            CallTransferred: self._on_call_transferred,
            CallFailed: self._on_call_failed,
            AgentRestored: self._on_agent_restored,
            CallAdopted: self._on_call_adopted,
        }

    # ================================================================== public API

    def handle(self, event: Event, now: float) -> list[Command]:
        """Apply one event; return the commands it causes (possibly none)."""
        try:
            handler = self._dispatch[type(event)]
        except KeyError:
            raise TypeError(f"not a routing event: {event!r}") from None
        return handler(event, now)

    def handle_timer(self, now: float) -> list[Command]:
        """Fire every deadline <= ``now`` (reservations, wrap-ups, escalation steps)."""
        out: _Out = []
        h = self._timers
        while h and h[0][0] <= now:
            _deadline, seq, obj = heappop(h)
            if obj.timer_seq != seq:
                continue  # cancelled or re-armed
            obj.timer_seq = 0
            self._timers_live -= 1
            if type(obj) is _Agent:
                self._on_agent_deadline(obj, now, out)
            elif type(obj) is _Call:
                self._escalate(obj, now, out)
            else:
                assert isinstance(obj, _Retry)
                self._retry_due(obj.call, now, out)
        return out

    def next_deadline(self) -> float | None:
        """Earliest pending deadline (the driver sleeps until then), or ``None``."""
        h = self._timers
        while h:
            top = h[0]
            if top[2].timer_seq == top[1]:
                return top[0]
            heappop(h)
        return None

    def agent(self, agent_id: str) -> AgentView | None:
        agent = self._agents.get(agent_id)
        return None if agent is None else self._agent_view(agent)

    def agents(self) -> Iterator[AgentView]:
        for agent in list(self._agents.values()):
            yield self._agent_view(agent)

    def call(self, call_id: str) -> CallView | None:
        call = self._calls.get(call_id)
        return None if call is None else self._call_view(call)

    def waiting_calls(self, queue_id: str | None = None) -> list[CallView]:
        """Unanswered calls (waiting and ringing) in routing order."""
        if queue_id is None:
            calls = [call for queue in self._queues.values() for call in queue.calls.values()]
        else:
            calls = list(self._queue(queue_id).calls.values())
        calls.sort(key=lambda call: (-call.prio, call.arrived_at, call.call_id))
        return [self._call_view(call) for call in calls]

    def queue_stats(self, queue_id: str) -> QueueStats:
        queue = self._queue(queue_id)
        h = queue.oldest
        while h and h[0][3].qseq != h[0][2]:
            heappop(h)
        cnt = queue.counts
        return QueueStats(
            queue_id=queue.queue_id,
            is_open=queue.cfg.is_open,
            waiting=len(queue.calls),
            ringing=queue.ringing,
            oldest_arrived_at=h[0][0] if h else None,
            members=queue.members,
            logged_in=queue.members - cnt[_STATE_INDEX[_LOGGED_OUT._value_]],
            ready=cnt[_STATE_INDEX[_READY._value_]],
            reserved=cnt[_STATE_INDEX[_RESERVED._value_]],
            on_call=cnt[_STATE_INDEX[_ON_CALL._value_]],
            wrap_up=cnt[_STATE_INDEX[_WRAP_UP._value_]],
            paused=cnt[_STATE_INDEX[_PAUSED._value_]],
        )

    def queue_ids(self) -> list[str]:
        return sorted(self._queues)

    # ================================================================== views

    def _queue(self, queue_id: str) -> _Queue:
        queue = self._queues.get(queue_id)
        if queue is None:
            raise UnknownQueue(queue_id)
        return queue

    def _agent_view(self, agent: _Agent) -> AgentView:
        call_id = agent.call.call_id if agent.call is not None else None
        if call_id is None and agent.state is _WRAP_UP:
            call_id = agent.last_call_id
        pending = None
        if agent.pending is not None:
            kind, reason = agent.pending
            pending = kind.value if reason is None else f"{kind.value}:{reason}"
        return AgentView(
            agent_id=agent.agent_id,
            state=agent.state,
            reason=agent.reason,
            since=agent.since,
            device=agent.device,
            call_id=call_id,
            queues=agent.cfg.queues,
            skills=agent.cfg.skills,
            missed_in_row=agent.missed,
            idle_since=agent.idle_since,
            pending=pending,
            team=agent.cfg.team,
            until=agent.until if agent.timer_seq else None,
        )

    @staticmethod
    def _call_view(call: _Call) -> CallView:
        return CallView(
            call_id=call.call_id,
            queue_id=call.queue.queue_id,
            caller=call.caller,
            state=call.state,
            arrived_at=call.arrived_at,
            priority=call.prio,
            agent_id=call.agent.agent_id if call.agent is not None else None,
            rona_count=call.rona,
            vip=call.vip,
            entitled=call.entitled,
            queued_at=call.queued_at,
            first_offered_at=call.first_offered_at,
            answered_at=call.answered_at,
            agents_offered=tuple(call.agents_offered),
            suspended=bool(call.held & _HELD_SUSPENDED),
            retry_at=call.retry.until
            if call.held & _HELD_BACKOFF and call.retry is not None
            else None,
        )

    # ================================================================== timers

    def _arm(self, obj: _Agent | _Call | _Retry, deadline: float) -> None:
        self._timer_seq += 1
        seq = self._timer_seq
        if obj.timer_seq == 0:
            self._timers_live += 1
        obj.timer_seq = seq
        obj.until = deadline
        h = self._timers
        heappush(h, (deadline, seq, obj))
        # Stale timer entries also leave when they come due, so a loose bound suffices
        # (and keeps rebuilds, an O(n) pause, rare).
        if len(h) > 4 * self._timers_live + 4096:
            h[:] = [e for e in h if e[2].timer_seq == e[1]]
            heapify(h)

    def _disarm(self, obj: _Agent | _Call | _Retry) -> None:
        if obj.timer_seq:
            obj.timer_seq = 0
            self._timers_live -= 1

    def _on_agent_deadline(self, agent: _Agent, now: float, out: _Out) -> None:
        if agent.state is _RESERVED:
            call = agent.call
            assert call is not None
            out.append(ReturnToHold(call.call_id, agent.agent_id))
            if call.held & _HELD_SUSPENDED:
                # The server is unreachable: whether it rang is unknown, not a miss.
                self._offer_lost(agent, call, "reservation-timeout", now, out, backoff=False)
            else:
                self._miss(agent, call, OfferFailure.NOANSWER, "reservation-timeout", now, out)
        elif agent.state is _WRAP_UP:
            self._finish_wrapup(agent, now, out)

    # ================================================================== indexes

    def _index_agent(self, agent: _Agent) -> None:
        agent.indexed = True
        idle = agent.idle_since
        assert idle is not None  # set on every transition into READY
        entry = (idle, agent.agent_id, agent.ready_seq, agent)
        for queue, t in agent.links:
            if t < 0:
                continue
            h = queue.ready[t]
            heappush(h, entry)
            live = queue.ready_live[t] + 1
            queue.ready_live[t] = live
            if len(h) > 2 * live + _COMPACT_SLACK:
                h[:] = [e for e in h if e[3].ready_seq == e[2] and e[3].state is _READY]
                heapify(h)

    def _unindex_agent(self, agent: _Agent) -> None:
        if not agent.indexed:
            return
        agent.indexed = False
        agent.ready_seq += 1
        for queue, t in agent.links:
            if t >= 0:
                queue.ready_live[t] -= 1

    def _index_call(self, call: _Call) -> None:
        call.indexed = True
        queue = call.queue
        entry = (-call.prio, call.arrived_at, call.call_id, call.seq, call)
        lvl = call.level
        h = queue.waiting[lvl]
        heappush(h, entry)
        live = queue.waiting_live[lvl] + 1
        queue.waiting_live[lvl] = live
        if len(h) > 2 * live + _COMPACT_SLACK:
            h[:] = [e for e in h if e[4].seq == e[3]]
            heapify(h)
        for w in call.widen:
            h = w.widened
            heappush(h, entry)
            w.widened_live += 1
            if len(h) > 2 * w.widened_live + _COMPACT_SLACK:
                h[:] = [e for e in h if e[4].seq == e[3]]
                heapify(h)

    def _unindex_call(self, call: _Call) -> None:
        if not call.indexed:
            return
        call.indexed = False
        call.seq += 1
        call.queue.waiting_live[call.level] -= 1
        for w in call.widen:
            w.widened_live -= 1

    def _link_agent(self, agent: _Agent) -> None:
        """Resolve the agent's queue memberships and tiers (not while indexed)."""
        links = []
        seen = set()
        for queue_id in agent.cfg.queues:
            if queue_id in seen:
                continue
            seen.add(queue_id)
            queue = self._queues.get(queue_id)
            if queue is not None:
                links.append((queue, queue.tier_of(agent.skills)))
        agent.links = links
        self._link_heaps(agent)

    @staticmethod
    def _link_heaps(agent: _Agent) -> None:
        """Cache the waiting-call heaps the agent may take from (rebuilt with ``links``)."""
        heaps = []
        for queue, t in agent.links:
            if t >= 0:
                heaps.extend(queue.waiting[t:])  # own queue, calls relaxed to tier >= t
                if t == 0:
                    heaps.append(queue.widened)  # calls of other queues widened to this one
        agent.call_heaps = heaps

    def _count_agent(self, agent: _Agent, delta: int) -> None:
        for queue, _t in agent.links:
            queue.counts[agent.si] += delta
            queue.members += delta

    # ================================================================== matching

    # Heap entries of one owner pushed by one index operation are the *same* tuple
    # object in every heap, so ``e < best`` never reaches the trailing owner object: equal
    # keys with different sequence numbers stop at the (distinct) ints, and the same
    # entry seen twice compares equal by identity.

    def _pick_agent(self, call: _Call) -> _Agent | None:
        """Best READY agent for ``call``: min (idle_since, agent_id) over eligible heaps."""
        best: tuple[float, str, int, _Agent] | None = None
        ready = call.queue.ready
        for t in range(call.level + 1):
            h = ready[t]
            while h:
                e = h[0]
                if e[3].ready_seq == e[2]:
                    if best is None or e < best:
                        best = e
                    break
                heappop(h)
        for w in call.widen:
            h = w.ready[0]
            while h:
                e = h[0]
                if e[3].ready_seq == e[2]:
                    if best is None or e < best:
                        best = e
                    break
                heappop(h)
        return None if best is None else best[3]

    def _pick_call(self, agent: _Agent) -> _Call | None:
        """Best WAITING call for ``agent``: min (-priority, arrived_at, call_id) over its heaps."""
        best: tuple[int, float, str, int, _Call] | None = None
        for h in agent.call_heaps:
            while h:
                e = h[0]
                if e[4].seq == e[3]:
                    if best is None or e < best:
                        best = e
                    break
                heappop(h)
        return None if best is None else best[4]

    def _route_call(self, call: _Call, now: float, out: _Out) -> None:
        """A routable WAITING call takes the best agent, or (if none) joins the waiting
        heaps.  A suspended or backing-off call stays out of both (``held``)."""
        if call.state is _WAITING and not call.held:
            agent = self._pick_agent(call)
            if agent is not None:
                self._offer(call, agent, now, out)
            elif not call.indexed:
                self._index_call(call)

    def _route_agent(self, agent: _Agent, now: float, out: _Out) -> None:
        """A READY agent takes the best call, or (if none) joins the ready heaps.

        Trying the calls first saves pushing heap entries that would go stale at once:
        in a busy centre almost every agent that frees finds a call.
        """
        if agent.state is _READY:
            call = self._pick_call(agent)
            if call is not None:
                self._offer(call, agent, now, out)
            elif not agent.indexed:
                self._index_agent(agent)

    def _offer(self, call: _Call, agent: _Agent, now: float, out: _Out) -> None:
        queue = call.queue
        self._unindex_call(call)
        call.state = _OFFERED
        call.agent = agent
        queue.ringing += 1
        if call.first_offered_at is None:
            call.first_offered_at = now
        call.agents_offered.append(agent.agent_id)
        ring = queue.cfg.ring_timeout_s
        out.append(
            OfferCall(call.call_id, agent.agent_id, agent.device or "", ring, queue.queue_id)
        )
        out.append(CallOffered(call.call_id, agent.agent_id, queue.queue_id, now))
        self._set_state(agent, _RESERVED, now, out, None, call.call_id)
        agent.call = call
        self._arm(agent, now + ring + self._grace)

    # ================================================================== agent state

    def _set_state(
        self,
        agent: _Agent,
        new: AgentState,
        now: float,
        out: _Out,
        reason: str | None = None,
        call_id: str | None = None,
    ) -> None:
        old = agent.state
        if old is _READY:
            self._unindex_agent(agent)
        if old is not new:
            # Integer slots, not enum-keyed dicts: an enum's __hash__ is a Python call.
            oi = agent.si
            ni = _STATE_INDEX[new._value_]
            agent.si = ni
            for queue, _t in agent.links:
                cnt = queue.counts
                cnt[oi] -= 1
                cnt[ni] += 1
        agent.state = new
        agent.since = now
        agent.reason = reason
        # Entering READY does not index the agent: the caller routes it (_route_agent),
        # which indexes it only if no call is waiting for it.
        out.append(AgentStateChanged(agent.agent_id, new, now, reason, call_id, old))

    def _become_ready(
        self, agent: _Agent, now: float, out: _Out, reason: str | None = None
    ) -> None:
        """READY with the idle clock restarted, then look for a call."""
        agent.idle_since = now
        self._set_state(agent, _READY, now, out, reason)
        self._route_agent(agent, now, out)

    def _apply_pending_or_ready(self, agent: _Agent, now: float, out: _Out) -> None:
        pending = agent.pending
        agent.pending = None
        if pending is None:
            self._become_ready(agent, now, out)
            return
        kind, reason = pending
        if kind is Pending.PAUSE:
            self._set_state(agent, _PAUSED, now, out, reason)
        elif kind is Pending.LOGOUT:
            self._log_out(agent, now, out, reason)
        else:
            assert_never(kind)

    def _log_out(self, agent: _Agent, now: float, out: _Out, reason: str | None) -> None:
        self._set_state(agent, _LOGGED_OUT, now, out, reason)
        agent.device = None
        agent.call = None
        agent.pending = None
        self._disarm(agent)

    def _after_call(self, agent: _Agent, call: _Call, now: float, out: _Out) -> None:
        """The agent's leg of a connected call ended: logout, or wrap-up (then ready/pause)."""
        agent.call = None
        agent.last_call_id = call.call_id
        if agent.pending is not None and agent.pending[0] is Pending.LOGOUT:
            self._log_out(agent, now, out, agent.pending[1])
            return
        self._set_state(agent, _WRAP_UP, now, out, None, call.call_id)
        if agent.wrapup_s > 0:
            self._arm(agent, now + agent.wrapup_s)
        else:
            self._finish_wrapup(agent, now, out)

    def _finish_wrapup(self, agent: _Agent, now: float, out: _Out) -> None:
        self._disarm(agent)
        out.append(WrapUpEnded(agent.agent_id, agent.last_call_id, now))
        self._apply_pending_or_ready(agent, now, out)

    def _release_ringing(self, agent: _Agent, now: float, out: _Out, call_id: str) -> None:
        """The offer ended through no fault of the agent: READY, keeping its place."""
        self._disarm(agent)
        agent.call = None
        self._set_state(agent, _READY, now, out, None, call_id)
        self._route_agent(agent, now, out)

    def _miss(
        self, agent: _Agent, call: _Call, failure: OfferFailure, why: str, now: float, out: _Out
    ) -> None:
        """A missed offer: count it, free or auto-pause the agent, re-route the call."""
        self._disarm(agent)
        agent.call = None
        agent.missed += 1
        call.rona += 1
        if failure is OfferFailure.FAILED:
            self._back_off(call, now)
        else:
            call.fails = 0  # the offer reached the agent's phone: the call's channel works
        if agent.missed >= agent.cfg.max_missed:
            reason = "no-answer" if failure is OfferFailure.NOANSWER else str(failure)
            self._set_state(agent, _PAUSED, now, out, reason, call.call_id)
        else:
            # Back of the line: the call goes to another agent if there is one.
            agent.idle_since = now
            self._set_state(agent, _READY, now, out, why, call.call_id)
            self._index_agent(agent)  # visible to the re-queued call only if nobody else is
        self._requeue(call, now, out, why)
        self._route_agent(agent, now, out)

    def _offer_lost(
        self, agent: _Agent, call: _Call, why: str, now: float, out: _Out, *, backoff: bool
    ) -> None:
        """The offer ended through no fault of the agent (link failure, or any end while
        the call is suspended): READY keeping its place, no miss; the call re-queues."""
        self._disarm(agent)
        agent.call = None
        if backoff:
            self._back_off(call, now)
        self._set_state(agent, _READY, now, out, why, call.call_id)
        self._index_agent(agent)  # keeps its idle_since: its place in the line
        self._requeue(call, now, out, why)
        self._route_agent(agent, now, out)

    def _back_off(self, call: _Call, now: float) -> None:
        """One more consecutive failed offer: from the second on, hold the call out of
        routing for ``retry_base_s * 2**(n-2)`` (at most ``retry_max_s``)."""
        call.fails += 1
        if call.fails < 2:
            return  # the first failure is retried at once
        delay = min(self._retry_base * 2.0 ** min(call.fails - 2, 30), self._retry_max)
        r = call.retry
        if r is None:
            r = call.retry = _Retry(call)
        if call.indexed:
            self._unindex_call(call)
        call.held |= _HELD_BACKOFF
        self._arm(r, now + delay)

    def _retry_due(self, call: _Call, now: float, out: _Out) -> None:
        call.held &= _UNBACKOFF
        self._route_call(call, now, out)

    # ================================================================== call life

    def _effective_priority(self, call: _Call, cfg: QueueConfig) -> int:
        p = cfg.priority + call.boost
        if call.vip:
            p += cfg.vip_boost
        if call.entitled:
            p += cfg.entitled_boost
        return p

    def _enter_queue(self, call: _Call, queue: _Queue, now: float, out: _Out, why: str) -> None:
        call.visited.append(queue.queue_id)
        call.queue = queue
        cfg = queue.cfg
        if not cfg.is_open:
            self._overflow(call, queue, "closed", now, out)
            return
        if cfg.max_len is not None and len(queue.calls) >= cfg.max_len:
            self._overflow(call, queue, "queue-full", now, out)
            return
        call.queued_at = now
        call.level = 0
        call.widen = ()
        call.step = 0
        call.overflow_due = None
        call.prio = self._effective_priority(call, cfg)
        call.state = _WAITING
        queue.calls[call.call_id] = call
        self._push_oldest(queue, call)
        out.append(CallQueued(call.call_id, queue.queue_id, now, call.prio, why))
        if queue.schedule:
            self._escalate(call, now, out)
            if call.queue is not queue or call.call_id not in queue.calls:
                return  # a 0 s step overflowed it (already routed or ended)
        self._route_call(call, now, out)

    def _push_oldest(self, queue: _Queue, call: _Call) -> None:
        h = queue.oldest
        heappush(h, (call.arrived_at, call.call_id, call.qseq, call))
        if len(h) > 2 * len(queue.calls) + _COMPACT_SLACK:
            h[:] = [e for e in h if e[3].qseq == e[2]]
            heapify(h)

    def _leave_queue(self, call: _Call) -> None:
        """Remove ``call`` from its queue's unanswered set (waiting or ringing)."""
        queue = call.queue
        if call.state is _WAITING:
            self._unindex_call(call)
        elif call.state is _OFFERED:
            queue.ringing -= 1
        del queue.calls[call.call_id]
        call.qseq += 1

    def _requeue(self, call: _Call, now: float, out: _Out, why: str) -> None:
        """An offer ended without an answer: back to waiting (or a deferred overflow)."""
        call.agent = None
        if call.overflow_due is not None and not call.held & _HELD_SUSPENDED:
            reason = call.overflow_due
            call.overflow_due = None
            self._overflow(call, call.queue, reason, now, out)
            return
        queue = call.queue
        queue.ringing -= 1
        call.state = _WAITING
        out.append(CallQueued(call.call_id, queue.queue_id, now, call.prio, why))
        self._route_call(call, now, out)

    def _escalate(self, call: _Call, now: float, out: _Out) -> None:
        """Apply every schedule step that is due, arm the next one, re-route if relaxed."""
        queue = call.queue
        schedule = queue.schedule
        n = len(schedule)
        i = call.step
        level = call.level
        widen_ids: tuple[str, ...] | None = None
        overflow: str | None = None
        base = call.queued_at
        while i < n:
            after, tier, wids, action = schedule[i]
            if base + after > now:
                break
            i += 1
            level = tier
            widen_ids = wids
            if action is Step.MAX_WAIT:
                overflow = "max-wait"
                break
            if action is Step.OVERFLOW:
                if queue.cfg.overflow_target is not None:
                    overflow = "escalation"
                    break
            elif action is not Step.ESCALATE:
                assert_never(action)
        call.step = i
        changed = False
        if widen_ids is not None:
            widen = tuple(
                w
                for w in (self._queues.get(x) for x in widen_ids)
                if w is not None and w is not queue
            )
            if level != call.level or widen != call.widen:
                changed = True
                if call.indexed:
                    self._unindex_call(call)
                    call.level = level
                    call.widen = widen
                    self._index_call(call)
                else:
                    call.level = level
                    call.widen = widen
        if overflow is not None:
            if call.state is _WAITING and not call.held & _HELD_SUSPENDED:
                self._overflow(call, queue, overflow, now, out)
                return
            # Ringing: decide when the offer fails; suspended: when the call resumes.
            call.overflow_due = overflow
        elif i < n:
            self._arm(call, base + schedule[i][0])
        if changed:
            self._route_call(call, now, out)

    def _overflow(self, call: _Call, queue: _Queue, reason: str, now: float, out: _Out) -> None:
        if call.call_id in queue.calls:
            self._leave_queue(call)
        self._disarm(call)
        target = queue.cfg.overflow_target
        if target is None:
            out.append(HangupCall(call.call_id))
            self._end_call(call, CallResult.FAILED, now, out, reason)
        elif target.startswith("ext:"):
            call.overflow_target = target
            out.append(OverflowCall(call.call_id, target))
            self._end_call(call, CallResult.OVERFLOWED, now, out, reason)
        else:
            target_queue = self._queues.get(target)
            if target_queue is None or target in call.visited:
                out.append(HangupCall(call.call_id))
                why = "overflow-target-unknown" if target_queue is None else "overflow-loop"
                self._end_call(call, CallResult.FAILED, now, out, why)
            else:
                call.overflow_target = target
                self._enter_queue(call, target_queue, now, out, f"overflow:{queue.queue_id}")

    def _end_call(
        self, call: _Call, result: CallResult, now: float, out: _Out, reason: str | None = None
    ) -> None:
        if call.call_id in call.queue.calls:
            self._leave_queue(call)
        self._disarm(call)
        if call.retry is not None:
            self._disarm(call.retry)
        del self._calls[call.call_id]
        out.append(
            CallEnded(
                CallRecord(  # positional: keyword passing costs ~1 us per record
                    call.call_id,
                    call.queue.queue_id,
                    call.caller,
                    result,
                    call.arrived_at,
                    now,
                    call.first_offered_at,
                    call.answered_at,
                    call.answered_by,
                    tuple(call.agents_offered),
                    call.rona,
                    call.overflow_target,
                    call.vip,
                    call.entitled,
                    reason,
                )
            )
        )

    # ================================================================== handlers: config

    def _on_configure_queue(self, event: ConfigureQueue, now: float) -> _Out:
        cfg = event.queue
        _validate_queue(cfg)
        out: _Out = []
        queue = self._queues.get(cfg.queue_id)
        member_ids = self._members.get(cfg.queue_id, set())
        if queue is None:
            queue = _Queue(cfg)
            self._queues[cfg.queue_id] = queue
            for agent_id in sorted(member_ids):
                agent = self._agents[agent_id]
                self._relink(agent, now, out)
            return out
        # Re-tier everything that touches this queue (configuration: O(members + calls)).
        members = [self._agents[agent_id] for agent_id in sorted(member_ids)]
        for agent in members:
            if agent.state is _READY:
                self._unindex_agent(agent)
        waiting = [call for call in queue.calls.values() if call.state is _WAITING]
        for call in waiting:
            self._unindex_call(call)
        queue.configure(cfg)
        for agent in members:
            agent.links = [
                (linked_queue, linked_queue.tier_of(agent.skills) if linked_queue is queue else t)
                for linked_queue, t in agent.links
            ]
            self._link_heaps(agent)
            if agent.state is _READY:
                self._index_agent(agent)
        for call in queue.calls.values():
            self._disarm(call)
            call.prio = self._effective_priority(call, cfg)
            call.level = 0
            call.widen = ()
            call.step = 0
            call.overflow_due = None
        for call in waiting:
            if not call.held:
                self._index_call(call)
        for call in list(queue.calls.values()):
            if call.call_id in queue.calls and queue.schedule:
                self._escalate(call, now, out)
            if call.call_id in queue.calls:  # not overflowed away or ended
                self._route_call(call, now, out)
        for agent in members:
            self._route_agent(agent, now, out)
        return out

    def _on_remove_queue(self, event: RemoveQueue, now: float) -> _Out:
        queue = self._queue(event.queue_id)
        if queue.calls:
            raise QueueInUse(queue.queue_id, len(queue.calls))
        for agent_id in sorted(self._members.get(queue.queue_id, ())):
            agent = self._agents[agent_id]
            ready = agent.state is _READY
            if ready:
                self._unindex_agent(agent)
            self._count_agent(agent, -1)
            agent.links = [
                (linked_queue, t) for linked_queue, t in agent.links if linked_queue is not queue
            ]
            self._link_heaps(agent)
            self._count_agent(agent, +1)
            if ready:
                self._index_agent(agent)
        queue.alive = False
        queue.ready = [[]]
        queue.ready_live = [0]
        queue.widened = []
        del self._queues[queue.queue_id]
        return []

    def _on_configure_agent(self, event: ConfigureAgent, now: float) -> _Out:
        cfg = event.agent
        _validate_agent(cfg)
        out: _Out = []
        agent = self._agents.get(cfg.agent_id)
        if agent is None:
            agent = _Agent(cfg)
            self._agents[cfg.agent_id] = agent
            self._add_membership(agent)
            self._link_agent(agent)
            self._count_agent(agent, +1)
            return out
        self._remove_membership(agent)
        agent.cfg = cfg
        agent.skills = dict(cfg.skills)
        self._add_membership(agent)
        self._relink(agent, now, out)
        return out

    def _relink(self, agent: _Agent, now: float, out: _Out) -> None:
        ready = agent.state is _READY
        if ready:
            self._unindex_agent(agent)
        self._count_agent(agent, -1)
        self._link_agent(agent)
        self._count_agent(agent, +1)
        if ready:
            self._index_agent(agent)
            self._route_agent(agent, now, out)

    def _add_membership(self, agent: _Agent) -> None:
        for queue_id in agent.cfg.queues:
            self._members.setdefault(queue_id, set()).add(agent.agent_id)

    def _remove_membership(self, agent: _Agent) -> None:
        for queue_id in agent.cfg.queues:
            s = self._members.get(queue_id)
            if s is not None:
                s.discard(agent.agent_id)
                if not s:
                    del self._members[queue_id]

    def _on_remove_agent(self, event: RemoveAgent, now: float) -> _Out:
        agent = self._agent(event.agent_id)
        if agent.state is not _LOGGED_OUT:
            raise IllegalTransition(
                agent.agent_id, agent.state, "remove", "log the agent out first"
            )
        self._count_agent(agent, -1)
        self._remove_membership(agent)
        del self._agents[agent.agent_id]
        return []

    def _on_set_queue_open(self, event: SetQueueOpen, now: float) -> _Out:
        queue = self._queue(event.queue_id)
        if queue.cfg.is_open != event.is_open:
            # Only new arrivals look at is_open; no re-indexing needed.
            queue.cfg = _replace_open(queue.cfg, event.is_open)
        return []

    # ================================================================== handlers: agents

    def _agent(self, agent_id: str) -> _Agent:
        agent = self._agents.get(agent_id)
        if agent is None:
            raise UnknownAgent(agent_id)
        return agent

    def _on_login(self, event: AgentLogin, now: float) -> _Out:
        agent = self._agent(event.agent_id)
        if not event.device:
            raise IllegalTransition(agent.agent_id, agent.state, "login", "empty device")
        outcome = LOGIN[agent.state._value_]
        if outcome is Login.SAME_DEVICE:
            if agent.device == event.device:
                return []
            raise IllegalTransition(
                agent.agent_id, agent.state, "login", f"already logged in on {agent.device}"
            )
        if outcome is not Login.LOGIN:
            assert_never(outcome)
        out: _Out = []
        agent.device = event.device
        agent.missed = 0
        agent.pending = None
        self._set_state(agent, _PAUSED, now, out, "login")
        return out

    def _on_ready(self, event: AgentReady, now: float) -> _Out:
        agent = self._agent(event.agent_id)
        outcome = READY[agent.state._value_]
        out: _Out = []
        if outcome is Ready.END_WRAPUP:  # first: the common case
            agent.pending = None  # the agent's latest wish wins over a pending pause
            self._finish_wrapup(agent, now, out)
        elif outcome is Ready.READY:
            self._become_ready(agent, now, out)
        elif outcome is Ready.CLEAR:
            agent.pending = None
        elif outcome is Ready.ILLEGAL:
            raise IllegalTransition(agent.agent_id, agent.state, "ready")
        elif outcome is not Ready.NOOP:
            assert_never(outcome)
        return out

    def _on_pause(self, event: AgentPause, now: float) -> _Out:
        agent = self._agent(event.agent_id)
        return self._agent_leaves(agent, LeaveAction.PAUSE, event.reason or "pause", now)

    def _on_logout(self, event: AgentLogout, now: float) -> _Out:
        return self._agent_leaves(self._agent(event.agent_id), LeaveAction.LOGOUT, "logout", now)

    def _on_disconnected(self, event: AgentDisconnected, now: float) -> _Out:
        agent = self._agents.get(event.agent_id)
        if agent is None:
            return []  # a fact about an agent we do not know: nothing to do
        return self._agent_leaves(agent, LeaveAction.DISCONNECT, "disconnected", now)

    def _agent_leaves(self, agent: _Agent, action: LeaveAction, reason: str, now: float) -> _Out:
        """Pause / logout / disconnect, following ``routing.transitions.LEAVE``."""
        outcome = LEAVE[action][agent.state._value_]
        out: _Out = []
        kind = Pending.PAUSE if action is LeaveAction.PAUSE else Pending.LOGOUT
        call: _Call | None = None
        if outcome is Leave.ILLEGAL:
            raise IllegalTransition(agent.agent_id, agent.state, action.value)
        if outcome is Leave.NOOP:
            return out
        if outcome is Leave.DEFER:
            agent.pending = (kind, reason)  # latest wish wins
            return out
        if outcome is Leave.WRAPUP_APPLY:
            self._disarm(agent)
            out.append(WrapUpEnded(agent.agent_id, agent.last_call_id, now))
        elif outcome is Leave.WITHDRAW:
            call = agent.call
        elif outcome is not Leave.APPLY:
            assert_never(outcome)
        agent.pending = None
        if call is not None:
            self._disarm(agent)
            agent.call = None
            out.append(ReturnToHold(call.call_id, agent.agent_id))
        if kind is Pending.PAUSE:
            self._set_state(
                agent, _PAUSED, now, out, reason, call.call_id if call is not None else None
            )
        else:
            self._log_out(agent, now, out, reason)
        if call is not None:
            self._requeue(call, now, out, "withdrawn")
        return out

    # ================================================================== handlers: calls

    def _on_call_arrived(self, event: CallArrived, now: float) -> _Out:
        if event.call_id in self._calls:
            raise DuplicateCall(event.call_id)
        queue = self._queue(event.queue_id)
        out: _Out = []
        call = _Call(event, queue, now)
        if event.suspended:
            call.held = _HELD_SUSPENDED
        self._calls[call.call_id] = call
        self._enter_queue(call, queue, now, out, "arrived")
        return out

    def _on_calls_suspended(self, event: CallsSuspended, now: float) -> _Out:
        calls = self._calls
        for call_id in event.call_ids:
            call = calls.get(call_id)
            if call is None or call.state is _CONNECTED or call.held & _HELD_SUSPENDED:
                continue
            call.held |= _HELD_SUSPENDED
            if call.indexed:
                self._unindex_call(call)
        return []

    def _on_calls_resumed(self, event: CallsResumed, now: float) -> _Out:
        out: _Out = []
        waiting: list[_Call] = []
        calls = self._calls
        for call_id in event.call_ids:
            call = calls.get(call_id)
            if call is None or not call.held & _HELD_SUSPENDED:
                continue
            # Failures seen while the server was away say nothing about it now.
            call.held = 0
            call.fails = 0
            if call.retry is not None:
                self._disarm(call.retry)
            if call.state is _WAITING:
                waiting.append(call)
        # The calls that waited longest (and matter most) get the free agents first.
        waiting.sort(key=_routing_key)
        for call in waiting:
            if call.state is not _WAITING or call.call_id not in calls:
                continue
            due = call.overflow_due
            if due is not None:
                call.overflow_due = None
                self._overflow(call, call.queue, due, now, out)
            else:
                self._route_call(call, now, out)
        return out

    def _on_offer_answered(self, event: OfferAnswered, now: float) -> _Out:
        call = self._calls.get(event.call_id)
        if (
            call is None
            or call.state is not _OFFERED
            or call.agent is None
            or call.agent.agent_id != event.agent_id
        ):
            return []  # stale: the offer was withdrawn or already resolved
        agent = call.agent
        out: _Out = []
        self._leave_queue(call)
        self._disarm(call)
        call.state = _CONNECTED
        call.held = 0  # out of routing for good: suspension no longer applies
        call.fails = 0
        call.answered_at = now
        call.answered_by = agent.agent_id
        self._disarm(agent)
        agent.missed = 0
        agent.wrapup_s = call.queue.cfg.wrapup_s
        out.append(CallAnswered(call.call_id, agent.agent_id, call.queue.queue_id, now))
        self._set_state(agent, _ON_CALL, now, out, None, call.call_id)
        return out

    def _on_offer_failed(self, event: OfferFailed, now: float) -> _Out:
        call = self._calls.get(event.call_id)
        if (
            call is None
            or call.state is not _OFFERED
            or call.agent is None
            or call.agent.agent_id != event.agent_id
        ):
            return []  # stale: e.g. a late dial result after our own ReturnToHold
        out: _Out = []
        reason = event.reason
        if call.held & _HELD_SUSPENDED:
            # Reported by the resync of a server that was away: not the agent's doing.
            self._offer_lost(call.agent, call, str(reason), now, out, backoff=False)
        elif reason is OfferFailure.LINK:
            self._offer_lost(call.agent, call, str(reason), now, out, backoff=True)
        else:
            self._miss(call.agent, call, reason, str(reason), now, out)
        return out

    def _on_agent_hung_up(self, event: AgentHungUp, now: float) -> _Out:
        call = self._calls.get(event.call_id)
        agent = self._agents.get(event.agent_id)
        if call is None or agent is None or agent.state is not _ON_CALL or agent.call is not call:
            return []
        out: _Out = []
        self._after_call(agent, call, now, out)
        return out

    def _on_call_hung_up(self, event: CallHungUp, now: float) -> _Out:
        return self._call_fact(_ON_HANGUP, event.call_id, now, None)

    def _on_call_failed(self, event: CallFailed, now: float) -> _Out:
        return self._call_fact(_ON_FAILED, event.call_id, now, event.reason)

    def _on_call_transferred(self, event: CallTransferred, now: float) -> _Out:
        return self._call_fact(_ON_TRANSFERRED, event.call_id, now, event.target)

    def _call_fact(
        self, row: dict[str, CallEnd], call_id: str, now: float, detail: str | None
    ) -> _Out:
        """A fact ending a call, following its row of ``routing.transitions.CALL``."""
        call = self._calls.get(call_id)
        if call is None:
            return []  # unknown or already ended: a late fact
        outcome = row[call.state._value_]
        out: _Out = []
        agent = call.agent
        ringing = call.state is _OFFERED
        if outcome is CallEnd.END_ANSWERED:  # first: the common case
            self._end_call(call, CallResult.ANSWERED, now, out)
        elif outcome is CallEnd.ABANDON or outcome is CallEnd.ABANDON_RINGING:
            short = now - call.arrived_at < self._short_abandon
            result = CallResult.SHORT_ABANDONED if short else CallResult.ABANDONED
            self._end_call(call, result, now, out)
        elif outcome is CallEnd.FAIL:
            self._end_call(call, CallResult.FAILED, now, out, detail)
        elif outcome is CallEnd.LEFT:
            call.overflow_target = detail or None
            self._end_call(call, CallResult.OVERFLOWED, now, out, "transferred")
        elif outcome is CallEnd.END_TRANSFERRED:
            self._end_call(call, CallResult.ANSWERED, now, out, "transferred")
        else:
            assert_never(outcome)
        if agent is None:
            return out
        if ringing:
            self._release_ringing(agent, now, out, call.call_id)
        elif agent.state is _ON_CALL and agent.call is call:
            if outcome is CallEnd.FAIL:
                agent.call = None
                agent.last_call_id = call.call_id
                self._apply_pending_or_ready(agent, now, out)
            else:
                self._after_call(agent, call, now, out)
        return out

    # ================================================================== handlers: restart

    def _on_agent_restored(self, event: AgentRestored, now: float) -> _Out:
        agent = self._agent(event.agent_id)
        if agent.state is not _LOGGED_OUT:
            raise IllegalTransition(agent.agent_id, agent.state, "restore", "already logged in")
        if not event.device:
            raise IllegalTransition(agent.agent_id, agent.state, "restore", "empty device")
        state = _RESTORABLE.get(event.state)
        if state is None:
            raise IllegalTransition(
                agent.agent_id,
                agent.state,
                "restore",
                f"state {event.state!r} (only ready, paused, wrap_up)",
            )
        if state is _WRAP_UP and not event.call_id:
            raise IllegalTransition(
                agent.agent_id, agent.state, "restore", "wrap-up without its call id"
            )
        out: _Out = []
        agent.device = event.device
        agent.missed = max(0, event.missed_in_row)
        agent.pending = None
        since = now if event.since is None else event.since
        if state is _READY:
            # Keeps its place in the longest-idle order it had before the restart.
            agent.idle_since = since if event.idle_since is None else event.idle_since
            self._set_state(agent, _READY, now, out)
            agent.since = since
            self._route_agent(agent, now, out)
        elif state is _PAUSED:
            self._set_state(agent, _PAUSED, now, out, event.reason or "pause")
            agent.since = since
        else:
            agent.last_call_id = event.call_id
            self._set_state(agent, _WRAP_UP, now, out, None, event.call_id)
            agent.since = since
            self._arm(
                agent, now if event.until is None else event.until
            )  # a past deadline fires next
        return out

    def _on_call_adopted(self, event: CallAdopted, now: float) -> _Out:
        # Validate everything first: a refused adoption changes nothing.
        if event.call_id in self._calls:
            raise DuplicateCall(event.call_id)
        queue = self._queue(event.queue_id)
        connected = event.answered_at is not None
        agent: _Agent | None = None
        if event.agent_id is not None:
            agent = self._agent(event.agent_id)
            if agent.state is _RESERVED or agent.state is _ON_CALL:
                held = agent.call.call_id if agent.call is not None else None
                raise IllegalTransition(
                    agent.agent_id, agent.state, "adopt", f"already holds call {held!r}"
                )
            if agent.state is _LOGGED_OUT and not event.device:
                raise IllegalTransition(
                    agent.agent_id, agent.state, "adopt", "logged out and no device given"
                )
        elif connected:
            raise IllegalTransition("", "unknown", "adopt", "a connected call needs its agent")
        out: _Out = []
        call = _Call(event, queue, now)
        call.arrived_at = event.arrived_at
        call.queued_at = event.arrived_at if event.queued_at is None else event.queued_at
        call.first_offered_at = event.first_offered_at
        call.agents_offered = list(event.agents_offered)
        call.rona = max(0, event.rona_count)
        call.visited.append(queue.queue_id)
        call.prio = self._effective_priority(call, queue.cfg)
        if event.suspended and not connected:
            call.held = _HELD_SUSPENDED
        self._calls[call.call_id] = call
        if agent is not None and (
            not call.agents_offered or call.agents_offered[-1] != agent.agent_id
        ):
            call.agents_offered.append(agent.agent_id)
        # A ringing offer is kept only for an agent free to take it (READY, or logged out
        # and found ringing): a PAUSED / WRAP_UP agent's phone stops, the call waits.
        keep = agent is not None and (
            connected or agent.state is _READY or agent.state is _LOGGED_OUT
        )
        if agent is None or not keep:
            if agent is not None:
                out.append(ReturnToHold(call.call_id, agent.agent_id))
            self._adopt_waiting(call, queue, now, out)
            return out
        assert agent is not None
        if agent.state is _LOGGED_OUT:
            agent.device = event.device
            agent.missed = 0
            agent.pending = None
            if agent.idle_since is None:
                agent.idle_since = now  # its place in line if the offer ends without its fault
        elif agent.state is _WRAP_UP:
            self._disarm(agent)
            out.append(WrapUpEnded(agent.agent_id, agent.last_call_id, now))
        elif agent.state is _PAUSED:
            agent.pending = (
                Pending.PAUSE,
                agent.reason,
            )  # talking now; the pause resumes after the call
        if call.first_offered_at is None:
            call.first_offered_at = event.answered_at if connected else now
        call.agent = agent
        if connected:
            call.state = _CONNECTED
            call.answered_at = event.answered_at
            call.answered_by = agent.agent_id
            agent.wrapup_s = queue.cfg.wrapup_s
            agent.missed = 0
            self._set_state(agent, _ON_CALL, now, out, None, call.call_id)
            agent.call = call
            return out
        call.state = _OFFERED
        queue.calls[call.call_id] = call
        queue.ringing += 1
        self._push_oldest(queue, call)
        out.append(CallQueued(call.call_id, queue.queue_id, now, call.prio, "adopted"))
        self._set_state(agent, _RESERVED, now, out, None, call.call_id)
        agent.call = call
        # The dialplan's own ring timeout started before the restart; this bound is
        # conservative (measured from the adoption).
        self._arm(agent, now + queue.cfg.ring_timeout_s + self._grace)
        if queue.schedule:
            self._escalate(call, now, out)  # while ringing: level/widen only, overflow deferred
        return out

    def _adopt_waiting(self, call: _Call, queue: _Queue, now: float, out: _Out) -> None:
        """Like ``_enter_queue`` for a call already accepted before the restart: no
        open-hours or queue-length check; escalation counts from its ``queued_at``."""
        call.state = _WAITING
        queue.calls[call.call_id] = call
        self._push_oldest(queue, call)
        out.append(CallQueued(call.call_id, queue.queue_id, now, call.prio, "adopted"))
        if queue.schedule:
            self._escalate(call, now, out)
            if call.queue is not queue or call.call_id not in queue.calls:
                return  # overdue: overflowed or ended
        self._route_call(call, now, out)


def _routing_key(call: _Call) -> tuple[int, float, str]:
    return (-call.prio, call.arrived_at, call.call_id)


# ====================================================================== validation


def _validate_queue(cfg: QueueConfig) -> None:
    subject = f"queue {cfg.queue_id!r}"
    if not cfg.queue_id:
        raise InvalidConfig("queue", "empty queue_id")
    for s, lvl in cfg.skills:
        if not 1 <= lvl <= 5:
            raise InvalidConfig(subject, f"skill {s!r} level {lvl} not in 1..5")
    if len({s for s, _ in cfg.skills}) != len(cfg.skills):
        raise InvalidConfig(subject, "a skill is listed twice")
    if cfg.ring_timeout_s <= 0:
        raise InvalidConfig(subject, "ring_timeout_s must be > 0")
    if cfg.wrapup_s < 0:
        raise InvalidConfig(subject, "wrapup_s must be >= 0")
    if cfg.max_wait_s is not None and cfg.max_wait_s < 0:
        raise InvalidConfig(subject, "max_wait_s must be >= 0")
    if cfg.max_len is not None and cfg.max_len < 0:
        raise InvalidConfig(subject, "max_len must be >= 0")
    if cfg.overflow_target == cfg.queue_id:
        raise InvalidConfig(subject, "overflow_target is the queue itself")
    for st in cfg.escalation:
        if st.after_s < 0:
            raise InvalidConfig(subject, "escalation after_s must be >= 0")
        if st.min_level is not None and not 1 <= st.min_level <= 5:
            raise InvalidConfig(subject, f"escalation min_level {st.min_level} not in 1..5")


def _validate_agent(cfg: AgentConfig) -> None:
    subject = f"agent {cfg.agent_id!r}"
    if not cfg.agent_id:
        raise InvalidConfig("agent", "empty agent_id")
    for s, lvl in cfg.skills:
        if not 1 <= lvl <= 5:
            raise InvalidConfig(subject, f"skill {s!r} level {lvl} not in 1..5")
    if cfg.max_missed < 1:
        raise InvalidConfig(subject, "max_missed must be >= 1")


def _replace_open(cfg: QueueConfig, is_open: bool) -> QueueConfig:
    return replace(cfg, is_open=is_open)
