"""Restart: the previous run's live state restored, its calls adopted or ended.

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
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

from app.live.actions import ActionRunner
from app.live.contracts import Driver
from app.live.persist import SavedCall, SavedSession, StateStore
from app.live.records import Recorder
from app.live.tracking import CallMeta, LastCall, LiveState, incoming_of
from app.outcomes import to_dt
from routing.commands import CallRecord, CallResult, ReturnToHold
from routing.errors import RoutingError
from routing.events import AgentLogout, AgentPause, AgentRestored, CallAdopted, Event

logger = logging.getLogger(__name__)


class Restorer:
    """Brings back what the previous run left, and adopts calls Asterisk still has."""

    def __init__(
        self,
        state: LiveState,
        driver: Driver,
        recorder: Recorder,
        actions: ActionRunner,
        *,
        restore_timeout_s: float,
        server_names: Callable[[], set[str]],
    ) -> None:
        self.state = state
        self.driver = driver
        self.recorder = recorder
        self.actions = actions
        self.restore_timeout_s = restore_timeout_s
        self.server_names = server_names

    @property
    def waiting(self) -> bool:
        """Agents or calls still wait for their server's first resync."""
        return bool(self.state.awaiting or self.state.restored)

    async def restore(self, store: StateStore) -> None:
        """Bring back the previous run's agents; keep its calls until Asterisk shows them."""
        state = self.state
        saved = await store.load()
        store.mark_calls(saved.already_ended)  # their outcome is written: drop the rows
        for session in saved.sessions:
            if session.agent_id not in state.agents or session.state == "logged_out":
                continue
            if session.state in ("reserved", "on_call") and session.call_id:
                # Decided by the call's server: adopted on the call, or freed.
                state.awaiting[session.agent_id] = session
            else:
                self.restore_agent(session)
        for call in saved.calls:
            state.restored[call.call_id] = saved.best_known(call)
        logger.info(
            "restored %d agent sessions; %d agents and %d calls wait for their server's resync",
            state.counters["restored_agents"],
            len(state.awaiting),
            len(state.restored),
        )

    def restore_agent(self, session: SavedSession, *, call_gone: bool = False) -> None:
        """READY / PAUSED / WRAP_UP as saved; an agent whose call is gone: READY, or the
        pause (or logout) it asked for during the call."""
        state = self.state
        agent_id, device = session.agent_id, session.device
        row = state.agents.get(agent_id)
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
            state.last_call[agent_id] = LastCall(session.call_id, session.since or state.clock())
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
        state.mark_agent(agent_id)
        if event is None:
            logger.info("agent %s: call gone while down; logged out as asked", agent_id)
            return
        try:
            self.driver.handle(event, time.perf_counter())
        except RoutingError as exc:
            logger.warning("agent %s could not be restored: %s", agent_id, exc)
            return
        state.counters["restored_agents"] += 1

    def resync_done(self, server: str) -> None:
        """First resync of ``server`` since start: what it did not show is gone."""
        state = self.state
        now = state.clock()
        for call_id, saved in list(state.restored.items()):
            if saved.server == server:
                del state.restored[call_id]
                self.ended_while_down(saved, now)
        for agent_id, session in list(state.awaiting.items()):
            if (session.call_id or "").partition("/")[0] == server:
                del state.awaiting[agent_id]
                self.restore_agent(session, call_gone=True)

    def timed_out(self) -> None:
        """``restore_timeout_s`` passed: no agent waits any longer for its server."""
        state = self.state
        servers = self.server_names()
        for agent_id, session in list(state.awaiting.items()):
            logger.warning(
                "agent %s: call %s not confirmed within %.0f s; freed",
                agent_id,
                session.call_id,
                self.restore_timeout_s,
            )
            del state.awaiting[agent_id]
            self.restore_agent(session, call_gone=True)
        now = state.clock()
        for call_id, saved in list(state.restored.items()):
            if saved.server not in servers:  # that server is no longer configured
                del state.restored[call_id]
                self.ended_while_down(saved, now)

    def ended_while_down(self, saved: SavedCall, now: float) -> None:
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
        self.state.counters["ended_while_down"] += 1
        self.recorder.outcome(record, incoming_of(saved, saved.arrived_at))
        self.recorder.event(
            saved.call_id,
            "ended",
            record.ended_at,
            record.answered_by,
            {"result": record.result.value, "queue_id": saved.queue_id, "reason": record.reason},
        )
        self.state.mark_call(saved.call_id)  # not in progress: its row goes

    # --- rows the state store saves ------------------------------------------------------

    def session_row(self, agent_id: str) -> dict[str, Any] | None:
        view = self.state.engine.agent(agent_id)
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

    def live_call_row(self, call_id: str) -> dict[str, Any] | None:
        meta = self.state.calls.get(call_id)
        if meta is None:
            return None  # ended (or refused): no longer in progress
        inc = meta.incoming
        view = self.state.engine.call(call_id) if meta.classified else None
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

    # --- adoption -------------------------------------------------------------------------

    def adoption(self, meta: CallMeta) -> CallAdopted:
        """``CallAdopted`` from what Asterisk shows now and what the previous run saved."""
        state = self.state
        call, saved = meta.incoming, meta.saved
        agent_id = call.agent_id or None
        device = None
        answered_at = None
        if agent_id is not None:
            waiting = state.awaiting.get(agent_id)
            row = state.agents.get(agent_id)
            device = (waiting.device if waiting else None) or (row.device if row else None)
            if call.answered:
                known = saved is not None and saved.answered_at and saved.agent_id == agent_id
                answered_at = saved.answered_at if known and saved else state.clock()
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

    def adopted(self, event: CallAdopted) -> None:
        state = self.state
        state.counters["adopted_calls"] += 1
        logger.info(
            "call %s adopted (agent=%s answered=%s) queue=%s",
            event.call_id,
            event.agent_id,
            event.answered_at is not None,
            event.queue_id,
        )
        if event.agent_id is None:
            return
        session = state.awaiting.pop(event.agent_id, None)
        if session is not None:
            state.mark_agent(event.agent_id)
        if session is None or event.answered_at is None or not session.pending:
            return
        # What the agent asked for during the call still applies after it.
        pending = session.pending
        follow: Event = (
            AgentLogout(event.agent_id)
            if pending == "logout"
            else AgentPause(event.agent_id, pending.partition(":")[2] or "pause")
        )
        with contextlib.suppress(RoutingError):  # the core may have decided otherwise
            self.driver.handle(follow, time.perf_counter())

    def adoption_refused(self, meta: CallMeta, event: CallAdopted, exc: RoutingError) -> bool:
        """The agent Asterisk shows cannot take the call (it holds another one).

        Ringing: the call goes back to hold and waits like any other.  Connected: the
        caller is being served by that agent outside our control; its outcome is written
        now (answered, "adopted-untracked").  True when handled.
        """
        agent_id = event.agent_id
        assert agent_id is not None
        logger.error("call %s: adoption with agent %s refused: %s", event.call_id, agent_id, exc)
        if event.answered_at is None:
            self.actions.run(ReturnToHold(event.call_id, agent_id), None)
            waiting = dataclasses.replace(event, agent_id=None, device=None)
            try:
                self.driver.handle(waiting, meta.received)
            except RoutingError:
                return False
            self.adopted(waiting)
            return True
        self.state.untrack(event.call_id)
        self.state.mark_call(event.call_id)
        record = CallRecord(
            call_id=event.call_id,
            queue_id=event.queue_id,
            caller=event.caller,
            result=CallResult.ANSWERED,
            arrived_at=event.arrived_at,
            ended_at=self.state.clock(),
            first_offered_at=event.first_offered_at,
            answered_at=event.answered_at,
            answered_by=agent_id,
            agents_offered=event.agents_offered,
            rona_count=event.rona_count,
            vip=event.vip,
            entitled=event.entitled,
            reason="adopted-untracked",
        )
        self.recorder.outcome(record, meta.incoming)
        return True
