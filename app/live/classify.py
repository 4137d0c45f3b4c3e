"""Arrival and classification: the CRM screen pop, its prefetch, and held events.

Ordering of a call's events while its CRM lookup runs: an ``IncomingCall`` starts the
screen-pop lookup (bounded by ``lookup_timeout_s``) as an owned task; until it
completes, later events of that call (an early hangup, a failure) are *held* in that
call's own list, and other calls flow on.  When the lookup completes (or times out) a
``Classified`` item re-enters the inbox; the driver then feeds ``CallArrived`` (with VIP
/ entitlement from the pop) and the held events, in order.  A caller hanging up during
the lookup cancels it: the call is delivered unclassified and ends at once (an abandon
is never delayed by the CRM).

Prefetch: with the production dialplan (``deploy/asterisk``) the caller's channel fires
``UserEvent: ACDArrive`` before Answer and the greeting; its ``CallerArriving`` starts
the same lookup then, so by ``ACDHold`` the pop is usually known and the call is routed
at once.  A prefetch not claimed within ``prefetch_ttl_s`` (the caller left in the IVR)
is dropped; at most ``prefetch_max`` are kept.  A caller who hangs up before hold
(``CallerLeftEarly``) drops its prefetch at once and gets its own outcome row
(``abandoned_in_ivr``): offered to the contact center, never to the queue.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time

from app.crm import ScreenPop
from app.jsonable import jsonable
from app.live.actions import ActionRunner
from app.live.contracts import Driver, Lookup
from app.live.protocol import encode_pop
from app.live.records import Recorder
from app.live.restore import Restorer
from app.live.tracking import CallMeta, Classified, LiveState, Prefetch, incoming_of
from cti.types import CallerArriving, CallerLeftEarly, CallEvent, IncomingCall
from routing.commands import CallRecord, CallResult, HangupCall
from routing.errors import RoutingError
from routing.events import CallAdopted, CallArrived, CallFailed, CallHungUp, Event

logger = logging.getLogger(__name__)


def classify(call_id: str, pop: ScreenPop | None, latency: float | None) -> Classified:
    """The lookup's result as the call keeps it: the pop serialised once (the model tree
    dies young instead of living, and being scanned by the GC, for the whole call)."""
    if pop is None:
        return Classified(call_id, None, False, False, latency)
    return Classified(call_id, encode_pop(jsonable(pop)), pop.customer.vip, pop.entitled, latency)


class Classifier:
    """Takes calls in: queue by DNIS, screen pop (prefetched or awaited), then the core."""

    def __init__(
        self,
        state: LiveState,
        driver: Driver,
        recorder: Recorder,
        actions: ActionRunner,
        restorer: Restorer,
        *,
        lookup: Lookup | None,
        lookup_timeout_s: float,
        prefetch_ttl_s: float,
        prefetch_max: int,
        default_queue_id: str | None,
    ) -> None:
        self.state = state
        self.driver = driver
        self.recorder = recorder
        self.actions = actions
        self.restorer = restorer
        self.lookup = lookup
        self.lookup_timeout_s = lookup_timeout_s
        self.prefetch_ttl_s = prefetch_ttl_s
        self.prefetch_max = prefetch_max
        self.default_queue_id = default_queue_id

    def incoming(self, call: IncomingCall, received: float) -> None:
        state = self.state
        if call.call_id in state.calls or call.call_id in state.pending:
            return  # seen again (resync after a reconnect)
        saved = state.restored.pop(call.call_id, None)
        if saved is not None:
            # Left in progress by the previous run: its original arrival and classification.
            call = dataclasses.replace(
                incoming_of(saved, saved.arrived_at),
                channel=call.channel or saved.channel or "",
                agent_id=call.agent_id,
                answered=call.answered,
                adopted=call.adopted,
            )
        else:
            state.counters["incoming"] += 1
        queue_id = state.dnis.get(call.dnis) or self.default_queue_id
        if saved is not None and saved.queue_id in state.queues:
            queue_id = saved.queue_id
        if queue_id is None or queue_id not in state.queues:
            state.counters["unknown_dnis"] += 1
            logger.warning(
                "call server=%s uniqueid=%s: no queue for DNIS %r; hanging up",
                call.server,
                call.uniqueid,
                call.dnis,
            )
            self._reject(call)
            return
        meta = CallMeta(incoming=call, queue_id=queue_id, received=received, saved=saved)
        if saved is not None:
            meta.vip, meta.entitled = saved.vip, saved.entitled
        state.track(meta)
        state.mark_call(call.call_id)
        pf = state.prefetched.pop(call.call_id, None)
        if pf is not None and pf.result is not None:
            # Prefetched while the caller heard the greeting: routable at once.
            state.counters["prefetch_ready"] += 1
            self._apply_pop(meta, pf.result)
            self.arrive(meta)
            return
        if self.lookup is None or not call.caller_num or call.agent_id:
            # A call found ringing or talking has its agent already: no pop to wait for.
            if pf is not None and pf.task is not None:
                pf.task.cancel()
            self.arrive(meta)
            return
        state.pending[call.call_id] = meta
        if pf is not None and pf.task is not None:
            state.counters["prefetch_waited"] += 1
            pf.claimed = True  # its result now comes through the inbox as ``Classified``
            meta.lookup = pf.task
            return
        meta.lookup = self.driver.spawn(
            self._run_lookup(call.call_id, call.caller_num, None), f"lookup-{call.call_id}"
        )

    def prefetch(self, item: CallerArriving) -> None:
        """Start the screen-pop lookup while the caller is still in the greeting / IVR."""
        state = self.state
        call_id = item.call_id
        if (
            self.lookup is None
            or not item.caller_num
            or self.driver.closing
            or call_id in state.calls
            or call_id in state.pending
            or call_id in state.prefetched
        ):
            return
        now = time.perf_counter()
        prefetched = state.prefetched
        while prefetched:  # oldest first: expire, and keep the size bounded
            first = next(iter(prefetched.values()))
            if first.expires > now and len(prefetched) < self.prefetch_max:
                break
            _, old = prefetched.popitem(last=False)
            state.counters["prefetch_dropped"] += 1
            if old.task is not None:
                old.task.cancel()
        pf = Prefetch(expires=now + self.prefetch_ttl_s)
        prefetched[call_id] = pf
        state.counters["prefetch_started"] += 1
        pf.task = self.driver.spawn(
            self._run_lookup(call_id, item.caller_num, pf), f"prefetch-{call_id}"
        )

    def left_early(self, item: CallerLeftEarly) -> None:
        """A caller hung up in the greeting / IVR: its prefetch goes, its row is written."""
        state = self.state
        call_id = item.call_id
        pf = state.prefetched.pop(call_id, None)
        if pf is not None:
            state.counters["prefetch_dropped"] += 1
            if pf.task is not None:
                pf.task.cancel()
        if call_id in state.calls or call_id in state.pending:
            return  # in the queue already: its own Hangup ends it (one row per call)
        state.counters["left_before_hold"] += 1
        queue_id = state.dnis.get(item.dnis) or self.default_queue_id or ""
        record = CallRecord(
            call_id=call_id,
            queue_id=queue_id if queue_id in state.queues else "",
            caller=item.caller_num,
            result=CallResult.ABANDONED_IN_IVR,
            arrived_at=item.arrived_at,
            ended_at=item.at,
        )
        incoming = IncomingCall(
            call_id=call_id,
            server=item.server,
            uniqueid=item.uniqueid,
            linkedid=item.linkedid,
            channel="",
            caller_num=item.caller_num,
            caller_name="",
            dnis=item.dnis,
            at=item.arrived_at,
        )
        self.recorder.outcome(record, incoming)

    def _reject(self, call: IncomingCall) -> None:
        record = CallRecord(
            call_id=call.call_id,
            queue_id="",
            caller=call.caller_num,
            result=CallResult.FAILED,
            arrived_at=call.at,
            ended_at=self.state.clock(),
            reason="unknown-dnis",
        )
        self.recorder.outcome(record, call)
        self.actions.run(HangupCall(call.call_id, cause=1), None)  # 1: unallocated number

    async def _run_lookup(self, call_id: str, phone: str, pf: Prefetch | None) -> None:
        """The CRM lookup of one call, bounded by ``lookup_timeout_s``.  Its result enters
        the inbox as ``Classified`` (the call waits in ``pending``), or is kept in ``pf``
        when it was prefetched and its call has not reached hold yet."""
        lookup = self.lookup
        assert lookup is not None
        counters = self.state.counters
        started = time.perf_counter()
        pop: ScreenPop | None = None
        latency: float | None = None
        try:
            async with asyncio.timeout(self.lookup_timeout_s):
                pop = await lookup(phone, self.state.clock())
            latency = time.perf_counter() - started
        except TimeoutError:
            counters["lookup_timeouts"] += 1
            logger.warning(
                "call %s: screen pop lookup timed out after %.3fs", call_id, self.lookup_timeout_s
            )
        except asyncio.CancelledError:
            if self.driver.closing:
                raise
        except ValueError as exc:  # app.crm.InvalidPhoneNumber: anonymous / odd caller ids
            logger.debug("call %s: no screen pop for %r: %s", call_id, phone, exc)
        except Exception as exc:  # noqa: BLE001 — any CRM failure: routed without its pop
            counters["lookup_errors"] += 1
            logger.warning("call %s: screen pop lookup failed: %s", call_id, exc)
        item = classify(call_id, pop, latency)
        if pf is not None:
            pf.task = None
            if not pf.claimed:
                pf.result = item
                return
        self.driver.enqueue(item, started)

    def _apply_pop(self, meta: CallMeta, item: Classified) -> None:
        if item.pop_latency_s is not None:
            self.state.pop_latency.append(item.pop_latency_s)
        if item.pop is not None:
            meta.pop = item.pop
            meta.vip = item.vip
            meta.entitled = item.entitled

    def hold(self, event: CallEvent, received: float) -> bool:
        """Hold ``event`` if its call's lookup is still running (True: held)."""
        call_id = event.call_id
        meta = self.state.pending.get(call_id)
        if meta is None:
            return False
        meta.held.append((event, received))
        if isinstance(event, CallHungUp | CallFailed):
            # The caller is gone: do not wait for the CRM to record the abandon.
            # Delivered here, not by the lookup task: a task cancelled before its
            # first step never runs its body (under a backlog the arrival and the
            # hangup are processed in one burst), and the call would stay pending
            # for ever, with no outcome row.  A late result is ignored.
            if meta.lookup is not None:
                meta.lookup.cancel()
            self.classified(Classified(call_id, None, False, False, None))
        return True

    def classified(self, item: Classified) -> None:
        meta = self.state.pending.pop(item.call_id, None)
        if meta is None:
            return
        meta.lookup = None
        self._apply_pop(meta, item)
        self.arrive(meta)
        for event, received in meta.held:
            self.driver.telephony_event(event, received)
        meta.held.clear()

    def arrive(self, meta: CallMeta) -> None:
        state = self.state
        meta.classified = True
        call = meta.incoming
        down = call.server in state.down  # not routable until the server is resynced
        event: Event
        if call.adopted or meta.saved is not None:
            event = dataclasses.replace(self.restorer.adoption(meta), suspended=down)
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
            self.driver.handle(event, meta.received)
            if isinstance(event, CallAdopted):
                self.restorer.adopted(event)
        except RoutingError as exc:
            if (
                isinstance(event, CallAdopted)
                and event.agent_id is not None
                and self.restorer.adoption_refused(meta, event, exc)
            ):
                return
            state.untrack(call.call_id)
            state.mark_call(call.call_id)
            logger.warning("call %s refused by the routing core: %s", call.call_id, exc)
            record = CallRecord(
                call_id=call.call_id,
                queue_id=meta.queue_id,
                caller=call.caller_num,
                result=CallResult.FAILED,
                arrived_at=call.at,
                ended_at=state.clock(),
                reason=str(exc)[:200],
            )
            self.recorder.outcome(record, call)
            self.actions.run(HangupCall(call.call_id), None)
        except Exception:  # a bug: the call leaves the books, then the error goes on
            state.untrack(call.call_id)
            state.mark_call(call.call_id)
            raise
