"""The skills-based ACD engine: events in, commands out, time passed in as ``now``.

Theory of operation
===================

State
-----
* **Queues** (``QueueConfig``) hold unanswered calls.  A queue's requirements form a
  short list of *tiers*: tier 0 is the queue's own ``skills``; every escalation step
  with ``min_level`` m relaxes each required level to ``min(own level, m)`` (cumulative,
  so tiers are nested: whoever qualifies at tier k qualifies at every k' > k; relaxing
  never tightens).  Each member agent gets its *tier* per queue: the lowest tier whose
  requirements it meets, or -1 (member, but never qualified).
* **Agents** are LOGGED_OUT, READY, RESERVED (an offer rings), ON_CALL, WRAP_UP or
  PAUSED(reason).  AgentLogin -> PAUSED("login").  One voice call at a time.
* **Calls** are WAITING, OFFERED (ringing exactly one agent) or CONNECTED.  A call has a
  *level* (the tier its queue's escalation reached) and a *widen* set (queues whose
  agents it also accepts after ``add_queues`` steps).

Eligibility (symmetric, used by both directions of matching)
-----------------------------------------------------------
Agent A may take call C in queue Q when A is READY and either A's tier in Q is
``0 <= tier <= C.level``, or A's tier is 0 in some queue W in ``C.widen`` (an agent
"serves" W at W's own requirements).

Routing order
-------------
* Agent choice (a call looks for an agent): the eligible READY agent with the smallest
  ``(idle_since, agent_id)``.  **Idle clock**: ``idle_since`` is set to ``now`` whenever
  the agent becomes READY after a call (end of wrap-up, or a failed connected call),
  after a pause (including the login pause), and after a *missed* offer (RONA, busy,
  unavailable, reservation timeout) - so an agent who just missed goes to the back of
  the line and the call goes to another agent; it is re-offered to the same agent only
  when that agent is the only eligible one (otherwise a call would wait while an
  eligible agent is READY).  An offer that ends through no fault of the agent (caller
  abandons while ringing, call failed while ringing) returns the agent to READY with its
  old ``idle_since``: it keeps its place.
* Call choice (an agent becomes READY): the eligible waiting call with the smallest
  ``(-effective priority, arrived_at, call_id)`` where effective priority = queue
  priority + ``priority_boost`` + ``vip_boost`` if VIP + ``entitled_boost`` if entitled.
  ``arrived_at`` is kept across re-queues and overflows into another queue.
  ``QueueConfig.weight`` is not used by the decision (reporting only).

Escalation, overflow, limits
----------------------------
Each queue has a schedule: its escalation steps sorted by ``after_s`` and, if
``max_wait_s`` is set, a final "max-wait" step.  Times are measured from ``queued_at``,
the moment the call entered its *current* queue (for the first queue that is its
arrival), so a call overflowed into another queue gets that queue's full schedule and
cannot bounce back at once.  A step relaxes (``min_level``), widens (``add_queues``) and/or
overflows.  Overflow sends the call to ``overflow_target``: another queue id (the call
moves and keeps ``arrived_at``) or ``"ext:<context>,<exten>"`` (``OverflowCall``, the call
ends OVERFLOWED).  Without a target, "max-wait", "queue-full" (``max_len`` unanswered calls
already in the queue) and "closed" (queue not open at arrival) end the call FAILED with a
``HangupCall``; an *escalation* overflow step without a target is a no-op (hanging up a
patient caller because of a configuration gap is worse than letting it wait).  An
overflow into an unknown queue, or into a queue the call already visited, fails the call
("overflow-target-unknown" / "overflow-loop").  A step that comes due while the call
rings only updates level/widen; an overflow is then deferred until the offer fails.
Closing a queue affects new arrivals only: calls already waiting are still served.

Offers
------
An offer emits ``OfferCall`` + ``CallOffered`` + ``AgentStateChanged(RESERVED)`` and arms a
reservation deadline ``ring_timeout_s + reservation_grace_s``.  OfferFailed with a dial
status (NOANSWER, BUSY, CONGESTION, CHANUNAVAIL, FAILED) or the deadline (``ReturnToHold``
first) counts a miss: ``rona_count`` + 1, the agent's ``missed_in_row`` + 1; at
``max_missed`` the agent is PAUSED ("no-answer" after a NOANSWER or timeout, else the dial
status word, e.g. "busy"), otherwise READY at the back of the line; the call re-queues and
is routed again.  OfferAnswered resets the misses.  ``OfferFailure.LINK`` (the telephony
link could not deliver the offer: Redirect refused, action timeout, server disconnected)
is a system failure, never a miss: the agent returns to READY keeping its place, no
``rona_count``.
Pause/logout/disconnect while RESERVED withdraws the offer (``ReturnToHold``, no miss);
while ON_CALL they are remembered (latest wins; AgentReady clears them) and applied when
the call ends: logout at once, pause after wrap-up.

Suspension and retry (an Asterisk server down must not spin the router)
-----------------------------------------------------------------------
A call is *routable* when it is WAITING and neither suspended nor backing off; only
routable calls are indexed, and only they are offered.

* ``CallsSuspended(call_ids)``: the calls' server is unreachable.  A WAITING call leaves
  the waiting heaps (O(log) each, lazily); an OFFERED call keeps its offer, but however
  the offer ends (answered excepted) - OfferFailed of any reason, reservation deadline
  (``ReturnToHold``), withdrawal - the agent returns to READY keeping its place, with no
  miss (what happened during the outage is not the agent's doing) and the call WAITs,
  suspended.  ``CallArrived`` / ``CallAdopted`` with ``suspended=True`` enter suspended.
* ``CallsResumed(call_ids)``: routable again (backoff cleared too: the server is back and
  reconciled); the resumed WAITING calls are routed in routing order (``-priority,
  arrived_at, call_id``): O(k log k) for k calls.
* Clocks while suspended: the caller really waits, so ``arrived_at`` / ``queued_at`` and
  the escalation schedule keep running; relax / widen steps apply when due (they only
  matter once routable).  An overflow or max-wait step that comes due while suspended
  needs the server (a Redirect / Hangup), so it is *deferred* and applied at once on
  resume, exactly like a step that comes due while the call rings.
* Backoff: every offer of a call that fails with ``LINK`` or ``FAILED`` counts a
  consecutive failure (any other outcome resets it).  The first one is retried at once
  (a single failure may be a race); the n-th (n >= 2) holds the call out of routing for
  ``min(retry_base_s * 2**(n-2), retry_max_s)`` on the deadline heap (``CallView.retry_at``),
  then it is routed again.  Escalation and overflow go on while it backs off (the server
  is reachable).  So a call whose offers fail at once costs O(log T) offers over T
  seconds, not one per ready agent.

Restart of the service (state brought back, calls adopted)
-----------------------------------------------------------
Two facts-not-requests events rebuild the state after the service restarts (the app
persists agent sessions and calls in progress; ``cti`` finds the calls on Asterisk):

* ``AgentRestored`` (agent LOGGED_OUT only): READY with its old ``idle_since`` (it keeps
  its place in the line, then is routed), PAUSED(reason) with its old ``since``, or
  WRAP_UP of ``call_id`` until ``until`` (a past deadline ends it at the next timer).
* ``CallAdopted`` keeps the call's ``arrived_at`` (routing order and records),
  ``queued_at`` (escalation clock: overdue steps apply at once), offers and misses.
  No open-hours / max-length check (the caller was accepted before the restart).
  - no agent: WAITING, then routed like an arrival;
  - ringing an agent (no ``answered_at``): **the offer is kept** when the agent is READY
    or LOGGED_OUT (then logged in on ``device``): agent RESERVED, a fresh reservation
    deadline (``ring_timeout_s + grace`` from now: the dialplan's own timeout started
    earlier, so this only bounds it); no ``OfferCall`` (it already rings).  A PAUSED or
    WRAP_UP agent cannot take an offer: ``ReturnToHold`` and the call WAITs (no miss);
  - connected (``answered_at``): agent ON_CALL with it (a READY agent leaves the line, a
    WRAP_UP ends first, a PAUSED agent's pause is applied after the call, a LOGGED_OUT
    agent is logged in on ``device``); then hang-up -> wrap-up -> READY as usual.
  Refused (raise, nothing changes): a known call id, an unknown queue or agent, an agent
  that is RESERVED / ON_CALL (it already holds a call), a LOGGED_OUT agent without a
  device, a connected call without an agent.

Invariants (checked by the hypothesis tests)
-------------------------------------------
1. An agent holds at most one offer or call; a call rings at most one agent.
2. After every ``handle``/``handle_timer``, no routable WAITING call has an eligible READY
   agent (suspended and backing-off calls are not routable).
3. Every ``CallArrived`` / ``CallAdopted`` gets exactly one ``CallEnded``.
4. No agent stays RESERVED past ``ring_timeout_s + reservation_grace_s`` once
   ``handle_timer`` ran.
5. A raising ``handle`` leaves the state unchanged (requests are validated first).

Data structures and complexity
------------------------------
n = agents, m = unanswered calls, q = queues per agent (small), k = tiers per queue
(1 + number of distinct relaxations, small), w = widen queues per call (small).

* per (queue, tier): a heap of READY agents keyed ``(idle_since, agent_id)``;
* per (queue, level): a heap of WAITING calls keyed ``(-priority, arrived_at, call_id)``;
  per queue a heap of calls widened into it; per queue a heap by ``arrived_at`` for the
  oldest-call statistic;
* one global deadline heap (reservation, wrap-up, next escalation step, retry of a call
  backing off).

All heaps use lazy deletion: an entry carries the owner's sequence number at push time
and is dropped when it reaches the head with a stale number.  Each heap tracks its live
count and is rebuilt when it holds more than twice that (plus a small constant), so
memory stays O(live) and the rebuild is amortised O(1) per push.  An agent that becomes
READY first looks for a call and is pushed into its ready heaps only if none is waiting
for it; a call likewise (``indexed`` flags): in a busy centre most matches happen at
once and leave no stale entries behind.  All entries one owner gets from one push are
the same tuple object, which makes comparing heads across heaps safe (no owner objects
are ever compared).

* call arrives / re-queues / escalates: O(k + w) heap heads + O(log n) pushes/pops;
* agent becomes READY: O(q * k) heap heads + O(log m);
* agent state change: O(q) counter updates (per-queue state counts are incremental);
* ``next_deadline``: O(1) amortised; ``handle_timer``: O(log T) per due timer;
* ``agent``, ``call``, ``queue_stats``: O(1) (amortised for the oldest-call heap);
  ``waiting_calls``: O(m_Q log m_Q) (a view, not a decision); configuration events are
  O(size of what they touch) (re-tiering a queue's members).

No decision scans all agents or all calls.
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
        "qid",
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
        self.qid = cfg.queue_id
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
        "aid",
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
        self.aid = cfg.agent_id
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
        "caller",
        "cid",
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

    def __init__(self, ev: CallArrived | CallAdopted, queue: _Queue, now: float) -> None:
        self.cid = ev.call_id
        self.caller = ev.caller
        self.vip = ev.vip
        self.entitled = ev.entitled
        self.boost = ev.priority_boost
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
    """Skills-based ACD.  See the module docstring for the rules and their costs."""

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
        a = self._agents.get(agent_id)
        return None if a is None else self._agent_view(a)

    def agents(self) -> Iterator[AgentView]:
        for a in list(self._agents.values()):
            yield self._agent_view(a)

    def call(self, call_id: str) -> CallView | None:
        c = self._calls.get(call_id)
        return None if c is None else self._call_view(c)

    def waiting_calls(self, queue_id: str | None = None) -> list[CallView]:
        """Unanswered calls (waiting and ringing) in routing order."""
        if queue_id is None:
            calls = [c for q in self._queues.values() for c in q.calls.values()]
        else:
            calls = list(self._queue(queue_id).calls.values())
        calls.sort(key=lambda c: (-c.prio, c.arrived_at, c.cid))
        return [self._call_view(c) for c in calls]

    def queue_stats(self, queue_id: str) -> QueueStats:
        q = self._queue(queue_id)
        h = q.oldest
        while h and h[0][3].qseq != h[0][2]:
            heappop(h)
        cnt = q.counts
        return QueueStats(
            queue_id=q.qid,
            is_open=q.cfg.is_open,
            waiting=len(q.calls),
            ringing=q.ringing,
            oldest_arrived_at=h[0][0] if h else None,
            members=q.members,
            logged_in=q.members - cnt[_STATE_INDEX[_LOGGED_OUT._value_]],
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
        q = self._queues.get(queue_id)
        if q is None:
            raise UnknownQueue(queue_id)
        return q

    def _agent_view(self, a: _Agent) -> AgentView:
        call_id = a.call.cid if a.call is not None else None
        if call_id is None and a.state is _WRAP_UP:
            call_id = a.last_call_id
        pending = None
        if a.pending is not None:
            kind, reason = a.pending
            pending = kind.value if reason is None else f"{kind.value}:{reason}"
        return AgentView(
            agent_id=a.aid,
            state=a.state,
            reason=a.reason,
            since=a.since,
            device=a.device,
            call_id=call_id,
            queues=a.cfg.queues,
            skills=a.cfg.skills,
            missed_in_row=a.missed,
            idle_since=a.idle_since,
            pending=pending,
            team=a.cfg.team,
            until=a.until if a.timer_seq else None,
        )

    @staticmethod
    def _call_view(c: _Call) -> CallView:
        return CallView(
            call_id=c.cid,
            queue_id=c.queue.qid,
            caller=c.caller,
            state=c.state,
            arrived_at=c.arrived_at,
            priority=c.prio,
            agent_id=c.agent.aid if c.agent is not None else None,
            rona_count=c.rona,
            vip=c.vip,
            entitled=c.entitled,
            queued_at=c.queued_at,
            first_offered_at=c.first_offered_at,
            answered_at=c.answered_at,
            agents_offered=tuple(c.agents_offered),
            suspended=bool(c.held & _HELD_SUSPENDED),
            retry_at=c.retry.until if c.held & _HELD_BACKOFF and c.retry is not None else None,
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

    def _on_agent_deadline(self, a: _Agent, now: float, out: _Out) -> None:
        if a.state is _RESERVED:
            c = a.call
            assert c is not None
            out.append(ReturnToHold(c.cid, a.aid))
            if c.held & _HELD_SUSPENDED:
                # The server is unreachable: whether it rang is unknown, not a miss.
                self._offer_lost(a, c, "reservation-timeout", now, out, backoff=False)
            else:
                self._miss(a, c, OfferFailure.NOANSWER, "reservation-timeout", now, out)
        elif a.state is _WRAP_UP:
            self._finish_wrapup(a, now, out)

    # ================================================================== indexes

    def _index_agent(self, a: _Agent) -> None:
        a.indexed = True
        idle = a.idle_since
        assert idle is not None  # set on every transition into READY
        entry = (idle, a.aid, a.ready_seq, a)
        for q, t in a.links:
            if t < 0:
                continue
            h = q.ready[t]
            heappush(h, entry)
            live = q.ready_live[t] + 1
            q.ready_live[t] = live
            if len(h) > 2 * live + _COMPACT_SLACK:
                h[:] = [e for e in h if e[3].ready_seq == e[2] and e[3].state is _READY]
                heapify(h)

    def _unindex_agent(self, a: _Agent) -> None:
        if not a.indexed:
            return
        a.indexed = False
        a.ready_seq += 1
        for q, t in a.links:
            if t >= 0:
                q.ready_live[t] -= 1

    def _index_call(self, c: _Call) -> None:
        c.indexed = True
        q = c.queue
        entry = (-c.prio, c.arrived_at, c.cid, c.seq, c)
        lvl = c.level
        h = q.waiting[lvl]
        heappush(h, entry)
        live = q.waiting_live[lvl] + 1
        q.waiting_live[lvl] = live
        if len(h) > 2 * live + _COMPACT_SLACK:
            h[:] = [e for e in h if e[4].seq == e[3]]
            heapify(h)
        for w in c.widen:
            h = w.widened
            heappush(h, entry)
            w.widened_live += 1
            if len(h) > 2 * w.widened_live + _COMPACT_SLACK:
                h[:] = [e for e in h if e[4].seq == e[3]]
                heapify(h)

    def _unindex_call(self, c: _Call) -> None:
        if not c.indexed:
            return
        c.indexed = False
        c.seq += 1
        c.queue.waiting_live[c.level] -= 1
        for w in c.widen:
            w.widened_live -= 1

    def _link_agent(self, a: _Agent) -> None:
        """Resolve the agent's queue memberships and tiers (not while indexed)."""
        links = []
        seen = set()
        for qid in a.cfg.queues:
            if qid in seen:
                continue
            seen.add(qid)
            q = self._queues.get(qid)
            if q is not None:
                links.append((q, q.tier_of(a.skills)))
        a.links = links
        self._link_heaps(a)

    @staticmethod
    def _link_heaps(a: _Agent) -> None:
        """Cache the waiting-call heaps the agent may take from (rebuilt with ``links``)."""
        heaps = []
        for q, t in a.links:
            if t >= 0:
                heaps.extend(q.waiting[t:])  # own queue, calls relaxed to tier >= t
                if t == 0:
                    heaps.append(q.widened)  # calls of other queues widened to this one
        a.call_heaps = heaps

    def _count_agent(self, a: _Agent, delta: int) -> None:
        for q, _t in a.links:
            q.counts[a.si] += delta
            q.members += delta

    # ================================================================== matching

    # Heap entries of one owner pushed by one index operation are the *same* tuple
    # object in every heap, so ``e < best`` never reaches the trailing owner object: equal
    # keys with different sequence numbers stop at the (distinct) ints, and the same
    # entry seen twice compares equal by identity.

    def _pick_agent(self, c: _Call) -> _Agent | None:
        """Best READY agent for ``c``: min (idle_since, agent_id) over eligible heaps."""
        best: tuple[float, str, int, _Agent] | None = None
        ready = c.queue.ready
        for t in range(c.level + 1):
            h = ready[t]
            while h:
                e = h[0]
                if e[3].ready_seq == e[2]:
                    if best is None or e < best:
                        best = e
                    break
                heappop(h)
        for w in c.widen:
            h = w.ready[0]
            while h:
                e = h[0]
                if e[3].ready_seq == e[2]:
                    if best is None or e < best:
                        best = e
                    break
                heappop(h)
        return None if best is None else best[3]

    def _pick_call(self, a: _Agent) -> _Call | None:
        """Best WAITING call for ``a``: min (-priority, arrived_at, call_id) over its heaps."""
        best: tuple[int, float, str, int, _Call] | None = None
        for h in a.call_heaps:
            while h:
                e = h[0]
                if e[4].seq == e[3]:
                    if best is None or e < best:
                        best = e
                    break
                heappop(h)
        return None if best is None else best[4]

    def _route_call(self, c: _Call, now: float, out: _Out) -> None:
        """A routable WAITING call takes the best agent, or (if none) joins the waiting
        heaps.  A suspended or backing-off call stays out of both (``held``)."""
        if c.state is _WAITING and not c.held:
            a = self._pick_agent(c)
            if a is not None:
                self._offer(c, a, now, out)
            elif not c.indexed:
                self._index_call(c)

    def _route_agent(self, a: _Agent, now: float, out: _Out) -> None:
        """A READY agent takes the best call, or (if none) joins the ready heaps.

        Trying the calls first saves pushing heap entries that would go stale at once:
        in a busy centre almost every agent that frees finds a call.
        """
        if a.state is _READY:
            c = self._pick_call(a)
            if c is not None:
                self._offer(c, a, now, out)
            elif not a.indexed:
                self._index_agent(a)

    def _offer(self, c: _Call, a: _Agent, now: float, out: _Out) -> None:
        q = c.queue
        self._unindex_call(c)
        c.state = _OFFERED
        c.agent = a
        q.ringing += 1
        if c.first_offered_at is None:
            c.first_offered_at = now
        c.agents_offered.append(a.aid)
        ring = q.cfg.ring_timeout_s
        out.append(OfferCall(c.cid, a.aid, a.device or "", ring, q.qid))
        out.append(CallOffered(c.cid, a.aid, q.qid, now))
        self._set_state(a, _RESERVED, now, out, None, c.cid)
        a.call = c
        self._arm(a, now + ring + self._grace)

    # ================================================================== agent state

    def _set_state(
        self,
        a: _Agent,
        new: AgentState,
        now: float,
        out: _Out,
        reason: str | None = None,
        call_id: str | None = None,
    ) -> None:
        old = a.state
        if old is _READY:
            self._unindex_agent(a)
        if old is not new:
            # Integer slots, not enum-keyed dicts: an enum's __hash__ is a Python call.
            oi = a.si
            ni = _STATE_INDEX[new._value_]
            a.si = ni
            for q, _t in a.links:
                cnt = q.counts
                cnt[oi] -= 1
                cnt[ni] += 1
        a.state = new
        a.since = now
        a.reason = reason
        # Entering READY does not index the agent: the caller routes it (_route_agent),
        # which indexes it only if no call is waiting for it.
        out.append(AgentStateChanged(a.aid, new, now, reason, call_id, old))

    def _become_ready(self, a: _Agent, now: float, out: _Out, reason: str | None = None) -> None:
        """READY with the idle clock restarted, then look for a call."""
        a.idle_since = now
        self._set_state(a, _READY, now, out, reason)
        self._route_agent(a, now, out)

    def _apply_pending_or_ready(self, a: _Agent, now: float, out: _Out) -> None:
        pending = a.pending
        a.pending = None
        if pending is None:
            self._become_ready(a, now, out)
            return
        kind, reason = pending
        if kind is Pending.PAUSE:
            self._set_state(a, _PAUSED, now, out, reason)
        elif kind is Pending.LOGOUT:
            self._log_out(a, now, out, reason)
        else:
            assert_never(kind)

    def _log_out(self, a: _Agent, now: float, out: _Out, reason: str | None) -> None:
        self._set_state(a, _LOGGED_OUT, now, out, reason)
        a.device = None
        a.call = None
        a.pending = None
        self._disarm(a)

    def _after_call(self, a: _Agent, c: _Call, now: float, out: _Out) -> None:
        """The agent's leg of a connected call ended: logout, or wrap-up (then ready/pause)."""
        a.call = None
        a.last_call_id = c.cid
        if a.pending is not None and a.pending[0] is Pending.LOGOUT:
            self._log_out(a, now, out, a.pending[1])
            return
        self._set_state(a, _WRAP_UP, now, out, None, c.cid)
        if a.wrapup_s > 0:
            self._arm(a, now + a.wrapup_s)
        else:
            self._finish_wrapup(a, now, out)

    def _finish_wrapup(self, a: _Agent, now: float, out: _Out) -> None:
        self._disarm(a)
        out.append(WrapUpEnded(a.aid, a.last_call_id, now))
        self._apply_pending_or_ready(a, now, out)

    def _release_ringing(self, a: _Agent, now: float, out: _Out, call_id: str) -> None:
        """The offer ended through no fault of the agent: READY, keeping its place."""
        self._disarm(a)
        a.call = None
        self._set_state(a, _READY, now, out, None, call_id)
        self._route_agent(a, now, out)

    def _miss(
        self, a: _Agent, c: _Call, failure: OfferFailure, why: str, now: float, out: _Out
    ) -> None:
        """A missed offer: count it, free or auto-pause the agent, re-route the call."""
        self._disarm(a)
        a.call = None
        a.missed += 1
        c.rona += 1
        if failure is OfferFailure.FAILED:
            self._back_off(c, now)
        else:
            c.fails = 0  # the offer reached the agent's phone: the call's channel works
        if a.missed >= a.cfg.max_missed:
            reason = "no-answer" if failure is OfferFailure.NOANSWER else str(failure)
            self._set_state(a, _PAUSED, now, out, reason, c.cid)
        else:
            # Back of the line: the call goes to another agent if there is one.
            a.idle_since = now
            self._set_state(a, _READY, now, out, why, c.cid)
            self._index_agent(a)  # visible to the re-queued call only if nobody else is
        self._requeue(c, now, out, why)
        self._route_agent(a, now, out)

    def _offer_lost(
        self, a: _Agent, c: _Call, why: str, now: float, out: _Out, *, backoff: bool
    ) -> None:
        """The offer ended through no fault of the agent (link failure, or any end while
        the call is suspended): READY keeping its place, no miss; the call re-queues."""
        self._disarm(a)
        a.call = None
        if backoff:
            self._back_off(c, now)
        self._set_state(a, _READY, now, out, why, c.cid)
        self._index_agent(a)  # keeps its idle_since: its place in the line
        self._requeue(c, now, out, why)
        self._route_agent(a, now, out)

    def _back_off(self, c: _Call, now: float) -> None:
        """One more consecutive failed offer: from the second on, hold the call out of
        routing for ``retry_base_s * 2**(n-2)`` (at most ``retry_max_s``)."""
        c.fails += 1
        if c.fails < 2:
            return  # the first failure is retried at once
        delay = min(self._retry_base * 2.0 ** min(c.fails - 2, 30), self._retry_max)
        r = c.retry
        if r is None:
            r = c.retry = _Retry(c)
        if c.indexed:
            self._unindex_call(c)
        c.held |= _HELD_BACKOFF
        self._arm(r, now + delay)

    def _retry_due(self, c: _Call, now: float, out: _Out) -> None:
        c.held &= _UNBACKOFF
        self._route_call(c, now, out)

    # ================================================================== call life

    def _effective_priority(self, c: _Call, cfg: QueueConfig) -> int:
        p = cfg.priority + c.boost
        if c.vip:
            p += cfg.vip_boost
        if c.entitled:
            p += cfg.entitled_boost
        return p

    def _enter_queue(self, c: _Call, q: _Queue, now: float, out: _Out, why: str) -> None:
        c.visited.append(q.qid)
        c.queue = q
        cfg = q.cfg
        if not cfg.is_open:
            self._overflow(c, q, "closed", now, out)
            return
        if cfg.max_len is not None and len(q.calls) >= cfg.max_len:
            self._overflow(c, q, "queue-full", now, out)
            return
        c.queued_at = now
        c.level = 0
        c.widen = ()
        c.step = 0
        c.overflow_due = None
        c.prio = self._effective_priority(c, cfg)
        c.state = _WAITING
        q.calls[c.cid] = c
        self._push_oldest(q, c)
        out.append(CallQueued(c.cid, q.qid, now, c.prio, why))
        if q.schedule:
            self._escalate(c, now, out)
            if c.queue is not q or c.cid not in q.calls:
                return  # a 0 s step overflowed it (already routed or ended)
        self._route_call(c, now, out)

    def _push_oldest(self, q: _Queue, c: _Call) -> None:
        h = q.oldest
        heappush(h, (c.arrived_at, c.cid, c.qseq, c))
        if len(h) > 2 * len(q.calls) + _COMPACT_SLACK:
            h[:] = [e for e in h if e[3].qseq == e[2]]
            heapify(h)

    def _leave_queue(self, c: _Call) -> None:
        """Remove ``c`` from its queue's unanswered set (waiting or ringing)."""
        q = c.queue
        if c.state is _WAITING:
            self._unindex_call(c)
        elif c.state is _OFFERED:
            q.ringing -= 1
        del q.calls[c.cid]
        c.qseq += 1

    def _requeue(self, c: _Call, now: float, out: _Out, why: str) -> None:
        """An offer ended without an answer: back to waiting (or a deferred overflow)."""
        c.agent = None
        if c.overflow_due is not None and not c.held & _HELD_SUSPENDED:
            reason = c.overflow_due
            c.overflow_due = None
            self._overflow(c, c.queue, reason, now, out)
            return
        q = c.queue
        q.ringing -= 1
        c.state = _WAITING
        out.append(CallQueued(c.cid, q.qid, now, c.prio, why))
        self._route_call(c, now, out)

    def _escalate(self, c: _Call, now: float, out: _Out) -> None:
        """Apply every schedule step that is due, arm the next one, re-route if relaxed."""
        q = c.queue
        schedule = q.schedule
        n = len(schedule)
        i = c.step
        level = c.level
        widen_ids: tuple[str, ...] | None = None
        overflow: str | None = None
        base = c.queued_at
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
                if q.cfg.overflow_target is not None:
                    overflow = "escalation"
                    break
            elif action is not Step.ESCALATE:
                assert_never(action)
        c.step = i
        changed = False
        if widen_ids is not None:
            widen = tuple(
                w for w in (self._queues.get(x) for x in widen_ids) if w is not None and w is not q
            )
            if level != c.level or widen != c.widen:
                changed = True
                if c.indexed:
                    self._unindex_call(c)
                    c.level = level
                    c.widen = widen
                    self._index_call(c)
                else:
                    c.level = level
                    c.widen = widen
        if overflow is not None:
            if c.state is _WAITING and not c.held & _HELD_SUSPENDED:
                self._overflow(c, q, overflow, now, out)
                return
            # Ringing: decide when the offer fails; suspended: when the call resumes.
            c.overflow_due = overflow
        elif i < n:
            self._arm(c, base + schedule[i][0])
        if changed:
            self._route_call(c, now, out)

    def _overflow(self, c: _Call, q: _Queue, reason: str, now: float, out: _Out) -> None:
        if c.cid in q.calls:
            self._leave_queue(c)
        self._disarm(c)
        target = q.cfg.overflow_target
        if target is None:
            out.append(HangupCall(c.cid))
            self._end_call(c, CallResult.FAILED, now, out, reason)
        elif target.startswith("ext:"):
            c.overflow_target = target
            out.append(OverflowCall(c.cid, target))
            self._end_call(c, CallResult.OVERFLOWED, now, out, reason)
        else:
            q2 = self._queues.get(target)
            if q2 is None or target in c.visited:
                out.append(HangupCall(c.cid))
                why = "overflow-target-unknown" if q2 is None else "overflow-loop"
                self._end_call(c, CallResult.FAILED, now, out, why)
            else:
                c.overflow_target = target
                self._enter_queue(c, q2, now, out, f"overflow:{q.qid}")

    def _end_call(
        self, c: _Call, result: CallResult, now: float, out: _Out, reason: str | None = None
    ) -> None:
        if c.cid in c.queue.calls:
            self._leave_queue(c)
        self._disarm(c)
        if c.retry is not None:
            self._disarm(c.retry)
        del self._calls[c.cid]
        out.append(
            CallEnded(
                CallRecord(  # positional: keyword passing costs ~1 us per record
                    c.cid,
                    c.queue.qid,
                    c.caller,
                    result,
                    c.arrived_at,
                    now,
                    c.first_offered_at,
                    c.answered_at,
                    c.answered_by,
                    tuple(c.agents_offered),
                    c.rona,
                    c.overflow_target,
                    c.vip,
                    c.entitled,
                    reason,
                )
            )
        )

    # ================================================================== handlers: config

    def _on_configure_queue(self, ev: ConfigureQueue, now: float) -> _Out:
        cfg = ev.queue
        _validate_queue(cfg)
        out: _Out = []
        q = self._queues.get(cfg.queue_id)
        member_ids = self._members.get(cfg.queue_id, set())
        if q is None:
            q = _Queue(cfg)
            self._queues[cfg.queue_id] = q
            for aid in sorted(member_ids):
                a = self._agents[aid]
                self._relink(a, now, out)
            return out
        # Re-tier everything that touches this queue (configuration: O(members + calls)).
        members = [self._agents[aid] for aid in sorted(member_ids)]
        for a in members:
            if a.state is _READY:
                self._unindex_agent(a)
        waiting = [c for c in q.calls.values() if c.state is _WAITING]
        for c in waiting:
            self._unindex_call(c)
        q.configure(cfg)
        for a in members:
            a.links = [(lq, lq.tier_of(a.skills) if lq is q else t) for lq, t in a.links]
            self._link_heaps(a)
            if a.state is _READY:
                self._index_agent(a)
        for c in q.calls.values():
            self._disarm(c)
            c.prio = self._effective_priority(c, cfg)
            c.level = 0
            c.widen = ()
            c.step = 0
            c.overflow_due = None
        for c in waiting:
            if not c.held:
                self._index_call(c)
        for c in list(q.calls.values()):
            if c.cid in q.calls and q.schedule:
                self._escalate(c, now, out)
            if c.cid in q.calls:  # not overflowed away or ended
                self._route_call(c, now, out)
        for a in members:
            self._route_agent(a, now, out)
        return out

    def _on_remove_queue(self, ev: RemoveQueue, now: float) -> _Out:
        q = self._queue(ev.queue_id)
        if q.calls:
            raise QueueInUse(q.qid, len(q.calls))
        for aid in sorted(self._members.get(q.qid, ())):
            a = self._agents[aid]
            ready = a.state is _READY
            if ready:
                self._unindex_agent(a)
            self._count_agent(a, -1)
            a.links = [(lq, t) for lq, t in a.links if lq is not q]
            self._link_heaps(a)
            self._count_agent(a, +1)
            if ready:
                self._index_agent(a)
        q.alive = False
        q.ready = [[]]
        q.ready_live = [0]
        q.widened = []
        del self._queues[q.qid]
        return []

    def _on_configure_agent(self, ev: ConfigureAgent, now: float) -> _Out:
        cfg = ev.agent
        _validate_agent(cfg)
        out: _Out = []
        a = self._agents.get(cfg.agent_id)
        if a is None:
            a = _Agent(cfg)
            self._agents[cfg.agent_id] = a
            self._add_membership(a)
            self._link_agent(a)
            self._count_agent(a, +1)
            return out
        self._remove_membership(a)
        a.cfg = cfg
        a.skills = dict(cfg.skills)
        self._add_membership(a)
        self._relink(a, now, out)
        return out

    def _relink(self, a: _Agent, now: float, out: _Out) -> None:
        ready = a.state is _READY
        if ready:
            self._unindex_agent(a)
        self._count_agent(a, -1)
        self._link_agent(a)
        self._count_agent(a, +1)
        if ready:
            self._index_agent(a)
            self._route_agent(a, now, out)

    def _add_membership(self, a: _Agent) -> None:
        for qid in a.cfg.queues:
            self._members.setdefault(qid, set()).add(a.aid)

    def _remove_membership(self, a: _Agent) -> None:
        for qid in a.cfg.queues:
            s = self._members.get(qid)
            if s is not None:
                s.discard(a.aid)
                if not s:
                    del self._members[qid]

    def _on_remove_agent(self, ev: RemoveAgent, now: float) -> _Out:
        a = self._agent(ev.agent_id)
        if a.state is not _LOGGED_OUT:
            raise IllegalTransition(a.aid, a.state, "remove", "log the agent out first")
        self._count_agent(a, -1)
        self._remove_membership(a)
        del self._agents[a.aid]
        return []

    def _on_set_queue_open(self, ev: SetQueueOpen, now: float) -> _Out:
        q = self._queue(ev.queue_id)
        if q.cfg.is_open != ev.is_open:
            # Only new arrivals look at is_open; no re-indexing needed.
            q.cfg = _replace_open(q.cfg, ev.is_open)
        return []

    # ================================================================== handlers: agents

    def _agent(self, agent_id: str) -> _Agent:
        a = self._agents.get(agent_id)
        if a is None:
            raise UnknownAgent(agent_id)
        return a

    def _on_login(self, ev: AgentLogin, now: float) -> _Out:
        a = self._agent(ev.agent_id)
        if not ev.device:
            raise IllegalTransition(a.aid, a.state, "login", "empty device")
        outcome = LOGIN[a.state._value_]
        if outcome is Login.SAME_DEVICE:
            if a.device == ev.device:
                return []
            raise IllegalTransition(a.aid, a.state, "login", f"already logged in on {a.device}")
        if outcome is not Login.LOGIN:
            assert_never(outcome)
        out: _Out = []
        a.device = ev.device
        a.missed = 0
        a.pending = None
        self._set_state(a, _PAUSED, now, out, "login")
        return out

    def _on_ready(self, ev: AgentReady, now: float) -> _Out:
        a = self._agent(ev.agent_id)
        outcome = READY[a.state._value_]
        out: _Out = []
        if outcome is Ready.END_WRAPUP:  # first: the common case
            a.pending = None  # the agent's latest wish wins over a pending pause
            self._finish_wrapup(a, now, out)
        elif outcome is Ready.READY:
            self._become_ready(a, now, out)
        elif outcome is Ready.CLEAR:
            a.pending = None
        elif outcome is Ready.ILLEGAL:
            raise IllegalTransition(a.aid, a.state, "ready")
        elif outcome is not Ready.NOOP:
            assert_never(outcome)
        return out

    def _on_pause(self, ev: AgentPause, now: float) -> _Out:
        a = self._agent(ev.agent_id)
        return self._agent_leaves(a, LeaveAction.PAUSE, ev.reason or "pause", now)

    def _on_logout(self, ev: AgentLogout, now: float) -> _Out:
        return self._agent_leaves(self._agent(ev.agent_id), LeaveAction.LOGOUT, "logout", now)

    def _on_disconnected(self, ev: AgentDisconnected, now: float) -> _Out:
        a = self._agents.get(ev.agent_id)
        if a is None:
            return []  # a fact about an agent we do not know: nothing to do
        return self._agent_leaves(a, LeaveAction.DISCONNECT, "disconnected", now)

    def _agent_leaves(self, a: _Agent, action: LeaveAction, reason: str, now: float) -> _Out:
        """Pause / logout / disconnect, following ``routing.transitions.LEAVE``."""
        outcome = LEAVE[action][a.state._value_]
        out: _Out = []
        kind = Pending.PAUSE if action is LeaveAction.PAUSE else Pending.LOGOUT
        c: _Call | None = None
        if outcome is Leave.ILLEGAL:
            raise IllegalTransition(a.aid, a.state, action.value)
        if outcome is Leave.NOOP:
            return out
        if outcome is Leave.DEFER:
            a.pending = (kind, reason)  # latest wish wins
            return out
        if outcome is Leave.WRAPUP_APPLY:
            self._disarm(a)
            out.append(WrapUpEnded(a.aid, a.last_call_id, now))
        elif outcome is Leave.WITHDRAW:
            c = a.call
        elif outcome is not Leave.APPLY:
            assert_never(outcome)
        a.pending = None
        if c is not None:
            self._disarm(a)
            a.call = None
            out.append(ReturnToHold(c.cid, a.aid))
        if kind is Pending.PAUSE:
            self._set_state(a, _PAUSED, now, out, reason, c.cid if c is not None else None)
        else:
            self._log_out(a, now, out, reason)
        if c is not None:
            self._requeue(c, now, out, "withdrawn")
        return out

    # ================================================================== handlers: calls

    def _on_call_arrived(self, ev: CallArrived, now: float) -> _Out:
        if ev.call_id in self._calls:
            raise DuplicateCall(ev.call_id)
        q = self._queue(ev.queue_id)
        out: _Out = []
        c = _Call(ev, q, now)
        if ev.suspended:
            c.held = _HELD_SUSPENDED
        self._calls[c.cid] = c
        self._enter_queue(c, q, now, out, "arrived")
        return out

    def _on_calls_suspended(self, ev: CallsSuspended, now: float) -> _Out:
        calls = self._calls
        for cid in ev.call_ids:
            c = calls.get(cid)
            if c is None or c.state is _CONNECTED or c.held & _HELD_SUSPENDED:
                continue
            c.held |= _HELD_SUSPENDED
            if c.indexed:
                self._unindex_call(c)
        return []

    def _on_calls_resumed(self, ev: CallsResumed, now: float) -> _Out:
        out: _Out = []
        waiting: list[_Call] = []
        calls = self._calls
        for cid in ev.call_ids:
            c = calls.get(cid)
            if c is None or not c.held & _HELD_SUSPENDED:
                continue
            # Failures seen while the server was away say nothing about it now.
            c.held = 0
            c.fails = 0
            if c.retry is not None:
                self._disarm(c.retry)
            if c.state is _WAITING:
                waiting.append(c)
        # The calls that waited longest (and matter most) get the free agents first.
        waiting.sort(key=_routing_key)
        for c in waiting:
            if c.state is not _WAITING or c.cid not in calls:
                continue
            due = c.overflow_due
            if due is not None:
                c.overflow_due = None
                self._overflow(c, c.queue, due, now, out)
            else:
                self._route_call(c, now, out)
        return out

    def _on_offer_answered(self, ev: OfferAnswered, now: float) -> _Out:
        c = self._calls.get(ev.call_id)
        if c is None or c.state is not _OFFERED or c.agent is None or c.agent.aid != ev.agent_id:
            return []  # stale: the offer was withdrawn or already resolved
        a = c.agent
        out: _Out = []
        self._leave_queue(c)
        self._disarm(c)
        c.state = _CONNECTED
        c.held = 0  # out of routing for good: suspension no longer applies
        c.fails = 0
        c.answered_at = now
        c.answered_by = a.aid
        self._disarm(a)
        a.missed = 0
        a.wrapup_s = c.queue.cfg.wrapup_s
        out.append(CallAnswered(c.cid, a.aid, c.queue.qid, now))
        self._set_state(a, _ON_CALL, now, out, None, c.cid)
        return out

    def _on_offer_failed(self, ev: OfferFailed, now: float) -> _Out:
        c = self._calls.get(ev.call_id)
        if c is None or c.state is not _OFFERED or c.agent is None or c.agent.aid != ev.agent_id:
            return []  # stale: e.g. a late dial result after our own ReturnToHold
        out: _Out = []
        reason = ev.reason
        if c.held & _HELD_SUSPENDED:
            # Reported by the resync of a server that was away: not the agent's doing.
            self._offer_lost(c.agent, c, str(reason), now, out, backoff=False)
        elif reason is OfferFailure.LINK:
            self._offer_lost(c.agent, c, str(reason), now, out, backoff=True)
        else:
            self._miss(c.agent, c, reason, str(reason), now, out)
        return out

    def _on_agent_hung_up(self, ev: AgentHungUp, now: float) -> _Out:
        c = self._calls.get(ev.call_id)
        a = self._agents.get(ev.agent_id)
        if c is None or a is None or a.state is not _ON_CALL or a.call is not c:
            return []
        out: _Out = []
        self._after_call(a, c, now, out)
        return out

    def _on_call_hung_up(self, ev: CallHungUp, now: float) -> _Out:
        return self._call_fact(_ON_HANGUP, ev.call_id, now, None)

    def _on_call_failed(self, ev: CallFailed, now: float) -> _Out:
        return self._call_fact(_ON_FAILED, ev.call_id, now, ev.reason)

    def _on_call_transferred(self, ev: CallTransferred, now: float) -> _Out:
        return self._call_fact(_ON_TRANSFERRED, ev.call_id, now, ev.target)

    def _call_fact(
        self, row: dict[str, CallEnd], call_id: str, now: float, detail: str | None
    ) -> _Out:
        """A fact ending a call, following its row of ``routing.transitions.CALL``."""
        c = self._calls.get(call_id)
        if c is None:
            return []  # unknown or already ended: a late fact
        outcome = row[c.state._value_]
        out: _Out = []
        a = c.agent
        ringing = c.state is _OFFERED
        if outcome is CallEnd.END_ANSWERED:  # first: the common case
            self._end_call(c, CallResult.ANSWERED, now, out)
        elif outcome is CallEnd.ABANDON or outcome is CallEnd.ABANDON_RINGING:
            short = now - c.arrived_at < self._short_abandon
            result = CallResult.SHORT_ABANDONED if short else CallResult.ABANDONED
            self._end_call(c, result, now, out)
        elif outcome is CallEnd.FAIL:
            self._end_call(c, CallResult.FAILED, now, out, detail)
        elif outcome is CallEnd.LEFT:
            c.overflow_target = detail or None
            self._end_call(c, CallResult.OVERFLOWED, now, out, "transferred")
        elif outcome is CallEnd.END_TRANSFERRED:
            self._end_call(c, CallResult.ANSWERED, now, out, "transferred")
        else:
            assert_never(outcome)
        if a is None:
            return out
        if ringing:
            self._release_ringing(a, now, out, c.cid)
        elif a.state is _ON_CALL and a.call is c:
            if outcome is CallEnd.FAIL:
                a.call = None
                a.last_call_id = c.cid
                self._apply_pending_or_ready(a, now, out)
            else:
                self._after_call(a, c, now, out)
        return out

    # ================================================================== handlers: restart

    def _on_agent_restored(self, ev: AgentRestored, now: float) -> _Out:
        a = self._agent(ev.agent_id)
        if a.state is not _LOGGED_OUT:
            raise IllegalTransition(a.aid, a.state, "restore", "already logged in")
        if not ev.device:
            raise IllegalTransition(a.aid, a.state, "restore", "empty device")
        state = _RESTORABLE.get(ev.state)
        if state is None:
            raise IllegalTransition(
                a.aid, a.state, "restore", f"state {ev.state!r} (only ready, paused, wrap_up)"
            )
        if state is _WRAP_UP and not ev.call_id:
            raise IllegalTransition(a.aid, a.state, "restore", "wrap-up without its call id")
        out: _Out = []
        a.device = ev.device
        a.missed = max(0, ev.missed_in_row)
        a.pending = None
        since = now if ev.since is None else ev.since
        if state is _READY:
            # Keeps its place in the longest-idle order it had before the restart.
            a.idle_since = since if ev.idle_since is None else ev.idle_since
            self._set_state(a, _READY, now, out)
            a.since = since
            self._route_agent(a, now, out)
        elif state is _PAUSED:
            self._set_state(a, _PAUSED, now, out, ev.reason or "pause")
            a.since = since
        else:
            a.last_call_id = ev.call_id
            self._set_state(a, _WRAP_UP, now, out, None, ev.call_id)
            a.since = since
            self._arm(a, now if ev.until is None else ev.until)  # a past deadline fires next
        return out

    def _on_call_adopted(self, ev: CallAdopted, now: float) -> _Out:
        # Validate everything first: a refused adoption changes nothing.
        if ev.call_id in self._calls:
            raise DuplicateCall(ev.call_id)
        q = self._queue(ev.queue_id)
        connected = ev.answered_at is not None
        a: _Agent | None = None
        if ev.agent_id is not None:
            a = self._agent(ev.agent_id)
            if a.state is _RESERVED or a.state is _ON_CALL:
                held = a.call.cid if a.call is not None else None
                raise IllegalTransition(a.aid, a.state, "adopt", f"already holds call {held!r}")
            if a.state is _LOGGED_OUT and not ev.device:
                raise IllegalTransition(a.aid, a.state, "adopt", "logged out and no device given")
        elif connected:
            raise IllegalTransition("", "unknown", "adopt", "a connected call needs its agent")
        out: _Out = []
        c = _Call(ev, q, now)
        c.arrived_at = ev.arrived_at
        c.queued_at = ev.arrived_at if ev.queued_at is None else ev.queued_at
        c.first_offered_at = ev.first_offered_at
        c.agents_offered = list(ev.agents_offered)
        c.rona = max(0, ev.rona_count)
        c.visited.append(q.qid)
        c.prio = self._effective_priority(c, q.cfg)
        if ev.suspended and not connected:
            c.held = _HELD_SUSPENDED
        self._calls[c.cid] = c
        if a is not None and (not c.agents_offered or c.agents_offered[-1] != a.aid):
            c.agents_offered.append(a.aid)
        # A ringing offer is kept only for an agent free to take it (READY, or logged out
        # and found ringing): a PAUSED / WRAP_UP agent's phone stops, the call waits.
        keep = a is not None and (connected or a.state is _READY or a.state is _LOGGED_OUT)
        if a is None or not keep:
            if a is not None:
                out.append(ReturnToHold(c.cid, a.aid))
            self._adopt_waiting(c, q, now, out)
            return out
        assert a is not None
        if a.state is _LOGGED_OUT:
            a.device = ev.device
            a.missed = 0
            a.pending = None
            if a.idle_since is None:
                a.idle_since = now  # its place in line if the offer ends without its fault
        elif a.state is _WRAP_UP:
            self._disarm(a)
            out.append(WrapUpEnded(a.aid, a.last_call_id, now))
        elif a.state is _PAUSED:
            a.pending = (Pending.PAUSE, a.reason)  # talking now; the pause resumes after the call
        if c.first_offered_at is None:
            c.first_offered_at = ev.answered_at if connected else now
        c.agent = a
        if connected:
            c.state = _CONNECTED
            c.answered_at = ev.answered_at
            c.answered_by = a.aid
            a.wrapup_s = q.cfg.wrapup_s
            a.missed = 0
            self._set_state(a, _ON_CALL, now, out, None, c.cid)
            a.call = c
            return out
        c.state = _OFFERED
        q.calls[c.cid] = c
        q.ringing += 1
        self._push_oldest(q, c)
        out.append(CallQueued(c.cid, q.qid, now, c.prio, "adopted"))
        self._set_state(a, _RESERVED, now, out, None, c.cid)
        a.call = c
        # The dialplan's own ring timeout started before the restart; this bound is
        # conservative (measured from the adoption).
        self._arm(a, now + q.cfg.ring_timeout_s + self._grace)
        if q.schedule:
            self._escalate(c, now, out)  # while ringing: level/widen only, overflow deferred
        return out

    def _adopt_waiting(self, c: _Call, q: _Queue, now: float, out: _Out) -> None:
        """Like ``_enter_queue`` for a call already accepted before the restart: no
        open-hours or queue-length check; escalation counts from its ``queued_at``."""
        c.state = _WAITING
        q.calls[c.cid] = c
        self._push_oldest(q, c)
        out.append(CallQueued(c.cid, q.qid, now, c.prio, "adopted"))
        if q.schedule:
            self._escalate(c, now, out)
            if c.queue is not q or c.cid not in q.calls:
                return  # overdue: overflowed or ended
        self._route_call(c, now, out)


def _routing_key(c: _Call) -> tuple[int, float, str]:
    return (-c.prio, c.arrived_at, c.cid)


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
