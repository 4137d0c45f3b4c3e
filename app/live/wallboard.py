"""Wallboard metrics: incremental per-queue and overall KPIs over rolling windows.

Invariants:
- Fed only with routing notifications (``routing.commands``) and agent-config changes;
  no I/O, no clock of its own: every method takes ``now`` (epoch seconds).
- O(1) work per event: each counter lands in the current minute bucket of its queue and
  of the overall scope, and in running sums for the 15-minute and 60-minute windows;
  buckets that leave a window are subtracted once when the minute advances.  "Today"
  is a plain accumulator reset at local midnight.
- Definitions (per scope and window):
  offered = calls that arrived in the queue; answered; abandoned = caller hung up while
  waiting or ringing after ``short_abandon_s`` (5 s) or more; short_abandoned = sooner
  (excluded from the abandon rate, as the industry does);
  answered_in_sl = answered within the threshold of the call's own queue
  (``set_queue(q, sl_target_s=...)``; ``sl_threshold_s`` for a queue never configured);
  service_level = answered_in_sl / the denominator of the configured ``app.kpi.SlFormula``;
  asa = mean wait of answered calls; aht = mean (talk + wrap-up) of handled calls,
  counted when the wrap-up ends; abandon_rate = abandoned / (answered + abandoned).
  A call is counted in the window of the minute it *ended* (answered calls: the minute
  they were answered), so every call counts once.
- calls waiting = callers not yet connected (queued or ringing an agent); the longest
  wait is measured from arrival, not from the last re-queue after a RONA.
- ``publish_async(clock)`` returns the delta against the previously published state with a
  sequence number one higher; ``snapshot()`` returns that published state, so a new
  subscriber's snapshot plus the following deltas always reproduce the current state.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from app.kpi import DEFAULT_SHORT_ABANDON_S, DEFAULT_SL_TARGET_S, SlFormula, service_level
from app.live import protocol
from app.live.protocol import DeltaFrame, Kpis, ScopeFigures, SnapshotFrame, WallboardState
from routing.commands import (
    AgentState,
    AgentStateChanged,
    CallAnswered,
    CallEnded,
    CallOffered,
    CallQueued,
    CallResult,
    Command,
    WrapUpEnded,
)

OVERALL = "*"

# Counter slots (a list per bucket keeps the per-event work to a few index adds).
_OFFERED, _ANSWERED, _ANSWERED_SL, _ABANDONED, _SHORT, _OVERFLOWED, _FAILED = range(7)
_WAIT_SUM, _HANDLED, _HANDLE_SUM = 7, 8, 9
_N = 10

WINDOWS = (("15m", 15), ("60m", 60))
HISTORY_MINUTES = 60  # the last-hour chart: one point per minute
_KEEP_MINUTES = HISTORY_MINUTES + 15  # the hour's first point needs 15 minutes before it

# Counter names as ``seed`` takes them (the rebuild from the database at start).
SLOTS = {
    "offered": _OFFERED,
    "answered": _ANSWERED,
    "answered_in_sl": _ANSWERED_SL,
    "abandoned": _ABANDONED,
    "short_abandoned": _SHORT,
    "overflowed": _OVERFLOWED,
    "failed": _FAILED,
    "wait_sum": _WAIT_SUM,
    "handled": _HANDLED,
    "handle_sum": _HANDLE_SUM,
}


def _local_day(t: float) -> int:
    """An ordinal of the local calendar day of epoch ``t`` ("today" resets at midnight)."""
    lt = time.localtime(t)
    return lt.tm_year * 1000 + lt.tm_yday


@dataclass(slots=True)
class _Scope:
    """Counters of one queue (or of all queues, ``OVERALL``)."""

    buckets: dict[int, list[float]] = field(default_factory=dict)  # minute -> counters
    sums: dict[str, list[float]] = field(
        default_factory=lambda: {name: [0.0] * _N for name, _ in WINDOWS}
    )
    today: list[float] = field(default_factory=lambda: [0.0] * _N)
    waiting: dict[str, float] = field(default_factory=dict)  # call_id -> arrived_at
    sl_target_s: float | None = None  # the queue's own threshold (None: the default)
    agents: dict[str, int] = field(default_factory=lambda: {s.value: 0 for s in AgentState})


@dataclass(slots=True)
class _Call:
    queue_id: str
    arrived_at: float
    talk_s: float = 0.0
    ended_at: float = 0.0


class Wallboard:
    """Incremental wallboard state; see the module docstring for the definitions."""

    def __init__(
        self,
        *,
        sl_threshold_s: float = DEFAULT_SL_TARGET_S,
        short_abandon_s: float = DEFAULT_SHORT_ABANDON_S,
        sl_formula: SlFormula = SlFormula.EXCLUDE_SHORT_ABANDONS,
        now: float | None = None,
    ) -> None:
        self.sl_threshold_s = sl_threshold_s
        self.short_abandon_s = short_abandon_s
        self.sl_formula = sl_formula
        self._scopes: dict[str, _Scope] = {OVERALL: _Scope()}
        self._calls: dict[str, _Call] = {}  # arrived and not yet ended
        self._wrapping: dict[str, _Call] = {}  # answered + ended, waiting for wrap-up end
        self._agent_state: dict[str, str] = {}
        self._agent_queues: dict[str, tuple[str, ...]] = {}
        start = time.time() if now is None else now
        self._minute = int(start // 60)
        self._day = _local_day(start)
        self.seq = 0
        self._published: WallboardState | None = None
        self._waiting_peak: dict[int, int] = {}  # minute -> most callers waiting (overall)

    # --- configuration ----------------------------------------------------------------

    def _scope(self, queue_id: str) -> _Scope:
        scope = self._scopes.get(queue_id)
        if scope is None:
            scope = self._scopes[queue_id] = _Scope()
        return scope

    def set_queues(self, queue_ids: Iterable[str]) -> None:
        """Make sure every configured queue shows up, even with no traffic yet."""
        for q in queue_ids:
            self._scope(q)

    def set_queue(self, queue_id: str, *, sl_target_s: float) -> None:
        """A configured queue and its own service-level threshold (seconds)."""
        self._scope(queue_id).sl_target_s = sl_target_s

    def remove_queue(self, queue_id: str) -> None:
        if queue_id != OVERALL:
            self._scopes.pop(queue_id, None)

    def set_agent_queues(self, agent_id: str, queues: Iterable[str]) -> None:
        """An agent's queue membership changed: move its state count between queues."""
        state = self._agent_state.get(agent_id)
        old = self._agent_queues.get(agent_id, ())
        new = tuple(queues)
        if state is not None:
            for q in old:
                self._scope(q).agents[state] -= 1
            for q in new:
                self._scope(q).agents[state] += 1
        self._agent_queues[agent_id] = new

    def remove_agent(self, agent_id: str) -> None:
        self._set_agent_state(agent_id, None)
        self._agent_queues.pop(agent_id, None)

    # --- events -------------------------------------------------------------------------

    def _set_agent_state(self, agent_id: str, state: str | None) -> None:
        old = self._agent_state.get(agent_id)
        if old == state:
            return
        scopes = [self._scopes[OVERALL]] + [
            self._scope(q) for q in self._agent_queues.get(agent_id, ())
        ]
        for scope in scopes:
            if old is not None:
                scope.agents[old] -= 1
            if state is not None:
                scope.agents[state] += 1
        if state is None:
            self._agent_state.pop(agent_id, None)
        else:
            self._agent_state[agent_id] = state

    def _count(self, queue_id: str, now: float, slot: int, value: float = 1.0) -> None:
        self._advance(now)
        minute = self._minute
        for scope in (self._scope(queue_id), self._scopes[OVERALL]):
            bucket = scope.buckets.get(minute)
            if bucket is None:
                bucket = scope.buckets[minute] = [0.0] * _N
            bucket[slot] += value
            for sums in scope.sums.values():
                sums[slot] += value
            scope.today[slot] += value

    def _advance(self, now: float) -> None:
        minute = int(now // 60)
        if minute <= self._minute:
            return
        day = _local_day(now)
        for scope in self._scopes.values():
            for name, span in WINDOWS:
                sums = scope.sums[name]
                # Subtract the buckets that fall out of this window.
                for m in range(self._minute - span + 1, min(self._minute, minute - span) + 1):
                    bucket = scope.buckets.get(m)
                    if bucket is not None:
                        for i in range(_N):
                            sums[i] -= bucket[i]
            for m in [m for m in scope.buckets if m <= minute - _KEEP_MINUTES]:
                del scope.buckets[m]
            if day != self._day:
                scope.today = [0.0] * _N
        for m in [m for m in self._waiting_peak if m <= minute - HISTORY_MINUTES]:
            del self._waiting_peak[m]
        self._minute = minute
        self._day = day

    def _sample_waiting(self) -> None:
        waiting = len(self._scopes[OVERALL].waiting)
        if waiting > self._waiting_peak.get(self._minute, -1):
            self._waiting_peak[self._minute] = waiting

    # --- rebuilt from the database at start -------------------------------------------

    def seed(self, queue_id: str | None, minute: int, name: str, value: float, now: float) -> None:
        """Add ``value`` to counter ``name`` of ``minute`` (epoch minutes) as if counted live.

        For the rebuild at start (``app.live.boardhistory``): a queue that is not configured
        counts in the overall scope only; a minute outside every window is ignored.
        """
        self._advance(now)
        today = _local_day(minute * 60) == self._day
        if minute > self._minute or (minute <= self._minute - _KEEP_MINUTES and not today):
            return
        slot = SLOTS[name]
        scopes = [self._scopes[OVERALL]]
        if queue_id is not None and queue_id != OVERALL and queue_id in self._scopes:
            scopes.append(self._scopes[queue_id])
        for scope in scopes:
            if minute > self._minute - _KEEP_MINUTES:
                bucket = scope.buckets.get(minute)
                if bucket is None:
                    bucket = scope.buckets[minute] = [0.0] * _N
                bucket[slot] += value
            for window, span in WINDOWS:
                if minute > self._minute - span:
                    scope.sums[window][slot] += value
            if today:
                scope.today[slot] += value

    def seed_waiting(self, minute: int, waiting: int) -> None:
        """How many callers waited (overall) at the end of ``minute`` (the chart's line)."""
        if self._minute - HISTORY_MINUTES < minute <= self._minute:
            self._waiting_peak[minute] = max(self._waiting_peak.get(minute, 0), waiting)

    def history(self, now: float) -> list[protocol.HistoryPoint]:
        """The last hour, one point a minute (oldest first): the overall 15-minute service
        level at the end of that minute and the most callers waiting during it (``None``
        where the service was not running and the database could not tell)."""
        self._advance(now)
        self._sample_waiting()
        buckets = self._scopes[OVERALL].buckets
        points: list[protocol.HistoryPoint] = []
        for m in range(self._minute - HISTORY_MINUTES + 1, self._minute + 1):
            c = [0.0] * _N
            for k in range(m - 14, m + 1):
                bucket = buckets.get(k)
                if bucket is not None:
                    for i in (_ANSWERED, _ANSWERED_SL, _ABANDONED, _SHORT):
                        c[i] += bucket[i]
            sl = service_level(
                self.sl_formula,
                answered_in_sl=c[_ANSWERED_SL],
                answered=c[_ANSWERED],
                abandoned=c[_ABANDONED],
                short_abandoned=c[_SHORT],
            )
            t = min(now, (m + 1) * 60.0)
            points.append(protocol.HistoryPoint(t=t, sl=sl, w=self._waiting_peak.get(m)))
        return points

    def apply(self, cmd: Command, now: float) -> None:
        """Account one routing notification (telephony actions are ignored)."""
        if isinstance(cmd, AgentStateChanged):
            state = None if cmd.state is AgentState.LOGGED_OUT else cmd.state.value
            self._set_agent_state(cmd.agent_id, state)
        elif isinstance(cmd, CallQueued):
            call = self._calls.get(cmd.call_id)
            if call is None:
                self._calls[cmd.call_id] = _Call(cmd.queue_id, cmd.at)
                self._scope(cmd.queue_id).waiting[cmd.call_id] = cmd.at
                self._scopes[OVERALL].waiting[cmd.call_id] = cmd.at
                self._count(cmd.queue_id, now, _OFFERED)
                self._sample_waiting()
            elif call.queue_id != cmd.queue_id:
                # Escalated into another queue: it keeps its arrival time.
                self._scope(call.queue_id).waiting.pop(cmd.call_id, None)
                call.queue_id = cmd.queue_id
                self._scope(cmd.queue_id).waiting[cmd.call_id] = call.arrived_at
        elif isinstance(cmd, CallOffered):
            pass  # still waiting from the caller's point of view
        elif isinstance(cmd, CallAnswered):
            call = self._calls.get(cmd.call_id)
            if call is None:
                return
            self._unwait(cmd.call_id, call)
            wait = max(0.0, cmd.at - call.arrived_at)
            self._count(call.queue_id, now, _ANSWERED)
            self._count(call.queue_id, now, _WAIT_SUM, wait)
            target = self._scope(call.queue_id).sl_target_s
            if wait <= (self.sl_threshold_s if target is None else target):
                self._count(call.queue_id, now, _ANSWERED_SL)
        elif isinstance(cmd, CallEnded):
            self._call_ended(cmd, now)
        elif isinstance(cmd, WrapUpEnded):
            if cmd.call_id is None:
                return
            wrapped = self._wrapping.pop(cmd.call_id, None)
            if wrapped is not None:
                self._count(wrapped.queue_id, now, _HANDLED)
                wrap = max(0.0, cmd.at - wrapped.ended_at)
                self._count(wrapped.queue_id, now, _HANDLE_SUM, wrapped.talk_s + wrap)

    def _unwait(self, call_id: str, call: _Call) -> None:
        self._scope(call.queue_id).waiting.pop(call_id, None)
        self._scopes[OVERALL].waiting.pop(call_id, None)

    def _call_ended(self, cmd: CallEnded, now: float) -> None:
        rec = cmd.record
        call = self._calls.pop(rec.call_id, None)
        if call is None:
            # Arrived before we started watching: count it in its record's queue.
            call = _Call(rec.queue_id, rec.arrived_at)
            self._count(rec.queue_id, now, _OFFERED)
        self._unwait(rec.call_id, call)
        queue = call.queue_id
        if rec.result is CallResult.ANSWERED:
            talk = rec.ended_at - (rec.answered_at or rec.ended_at)
            call.talk_s = max(0.0, talk)
            call.ended_at = rec.ended_at
            # Handle time = talk + wrap-up; it is complete when the wrap-up ends.
            self._wrapping[rec.call_id] = call
            if len(self._wrapping) > 100_000:  # a wrap-up end that never came
                self._wrapping.pop(next(iter(self._wrapping)))
        elif rec.result is CallResult.ABANDONED:
            if rec.ended_at - rec.arrived_at < self.short_abandon_s:
                self._count(queue, now, _SHORT)
            else:
                self._count(queue, now, _ABANDONED)
        elif rec.result is CallResult.SHORT_ABANDONED:
            self._count(queue, now, _SHORT)
        elif rec.result is CallResult.OVERFLOWED:
            self._count(queue, now, _OVERFLOWED)
        else:
            self._count(queue, now, _FAILED)

    # --- output ---------------------------------------------------------------------------

    def _kpis(self, c: list[float]) -> Kpis:
        answered, abandoned = c[_ANSWERED], c[_ABANDONED]
        denominator = answered + abandoned
        return Kpis(
            offered=int(c[_OFFERED]),
            answered=int(answered),
            answered_in_sl=int(c[_ANSWERED_SL]),
            abandoned=int(abandoned),
            short_abandoned=int(c[_SHORT]),
            overflowed=int(c[_OVERFLOWED]),
            failed=int(c[_FAILED]),
            service_level=service_level(
                self.sl_formula,
                answered_in_sl=c[_ANSWERED_SL],
                answered=answered,
                abandoned=abandoned,
                short_abandoned=c[_SHORT],
            ),
            abandon_rate=round(abandoned / denominator, 4) if denominator else None,
            asa_s=round(c[_WAIT_SUM] / answered, 1) if answered else None,
            aht_s=round(c[_HANDLE_SUM] / c[_HANDLED], 1) if c[_HANDLED] else None,
        )

    def _item(self, scope: _Scope, now: float) -> ScopeFigures:
        longest = now - min(scope.waiting.values()) if scope.waiting else 0.0
        return ScopeFigures(
            waiting=len(scope.waiting),
            longest_wait_s=round(max(0.0, longest), 0),
            agents=dict(scope.agents),
            windows={
                **{name: self._kpis(scope.sums[name]) for name, _ in WINDOWS},
                "today": self._kpis(scope.today),
            },
        )

    def state(self, now: float) -> WallboardState:
        """The full current state: ``{"overall": {...}, "queues": {queue_id: {...}}}``."""
        self._advance(now)
        queues: dict[str, ScopeFigures] = {}
        for queue_id, scope in self._scopes.items():
            if queue_id != OVERALL:
                queues[queue_id] = self._item(scope, now)
        return WallboardState(overall=self._item(self._scopes[OVERALL], now), queues=queues)

    def snapshot(self, now: float) -> SnapshotFrame:
        """The last published state (what the following deltas are relative to)."""
        if self._published is None:
            self._published = self.state(now)
        return protocol.snapshot(self.seq, self._published, self.history(now))

    async def publish_async(self, clock: Callable[[], float], chunk: int = 16) -> DeltaFrame | None:
        """Advance to the current state; return the delta (only what changed) or None.

        The service's 1 Hz tick: computed and diffed ``chunk`` queues at a time, yielding to the event loop in between: a centre with hundreds of queues
        never stalls routing for a whole tick (each queue's figures are taken at its own
        instant, within milliseconds of the others)."""
        # The first tick diffs against nothing: its delta is the whole state.
        previous = self._published
        prev_overall: dict[str, Any] = dict(previous["overall"]) if previous else {}
        prev_queues: dict[str, ScopeFigures] = previous["queues"] if previous else {}
        current_overall: ScopeFigures | None = None
        current_queues: dict[str, ScopeFigures] = {}
        overall: dict[str, Any] = {}
        queues: dict[str, dict[str, Any]] = {}
        ids = list(self._scopes)
        for i in range(0, len(ids), chunk):
            now = clock()
            self._advance(now)
            self._sample_waiting()
            for queue_id in ids[i : i + chunk]:
                scope = self._scopes.get(queue_id)
                if scope is None:
                    continue  # removed meanwhile
                item = self._item(scope, now)
                if queue_id == OVERALL:
                    current_overall = item
                    overall = _diff(prev_overall, dict(item))
                else:
                    current_queues[queue_id] = item
                    before = prev_queues.get(queue_id)
                    changed = _diff(dict(before) if before else {}, dict(item))
                    if changed:
                        queues[queue_id] = changed
            await asyncio.sleep(0)
        removed = [q for q in prev_queues if q not in current_queues]
        if current_overall is None:  # the overall scope is never removed
            current_overall = self._item(self._scopes[OVERALL], clock())
        self._published = WallboardState(overall=current_overall, queues=current_queues)
        if not (overall or queues or removed):
            return None
        self.seq += 1
        return protocol.delta(
            self.seq, clock(), overall=overall, queues=queues, removed_queues=removed
        )


def _diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Keys of ``new`` whose value differs from ``old`` (nested dicts diffed recursively)."""
    out: dict[str, Any] = {}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            sub = _diff(before, value)
            if sub:
                out[key] = sub
        elif before != value or key not in old:
            out[key] = value
    return out


def apply_delta(state: dict[str, Any], delta: dict[str, Any]) -> None:
    """Merge a delta into a client-side copy of the state (used by tests and pages)."""
    for key, value in delta.items():
        if key in ("type", "seq", "at"):
            continue
        if key == "removed_queues":
            for q in value:
                state.get("queues", {}).pop(q, None)
            continue
        if isinstance(value, dict) and isinstance(state.get(key), dict):
            apply_delta(state[key], value)
        else:
            state[key] = value
