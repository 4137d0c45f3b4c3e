"""Telephony actions of the call center: per-call chains around ``link.execute``.

Actions for the same call are chained (each waits for the previous one), so a
``ReturnToHold`` can never overtake the ``OfferCall`` it cancels; actions of different
calls run concurrently, so one slow Asterisk never delays another.  An offer is pushed
to the agent's socket (with its screen pop) first; the ``OfferCall`` waits, at most
``offer_push_timeout_s``, for the websocket pump to confirm the write.  A failed
``OfferCall`` comes back through the inbox as ``OfferFailed(reason=LINK)``.

Routing latency (the routable event received -> ``link.execute(OfferCall)`` returned)
is sampled here, per executed offer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from app.live import protocol
from app.live.contracts import Driver, TelephonyLinkLike
from app.live.hub import Hub
from app.live.tracking import LiveState
from routing.commands import HangupCall, OfferCall, OverflowCall, ReturnToHold
from routing.events import OfferFailed, OfferFailure

logger = logging.getLogger(__name__)

TelephonyAction = OfferCall | ReturnToHold | OverflowCall | HangupCall
TELEPHONY_ACTIONS = (OfferCall, ReturnToHold, OverflowCall, HangupCall)


class ActionRunner:
    """Runs the core's telephony actions through the link, in order per call."""

    def __init__(
        self,
        state: LiveState,
        driver: Driver,
        agent_hub: Hub,
        *,
        offer_push_timeout_s: float,
    ) -> None:
        self.state = state
        self.driver = driver
        self.agent_hub = agent_hub
        self.offer_push_timeout_s = offer_push_timeout_s
        self.link: TelephonyLinkLike | None = None
        self.chains: dict[str, asyncio.Task[None]] = {}  # call_id -> last action task

    def offer(self, cmd: OfferCall, received: float | None) -> None:
        """Push the offer (with its screen pop) to the agent, then ring the agent."""
        state = self.state
        meta = state.calls.get(cmd.call_id)
        if meta is None:  # adopted without its arrival (restart): no details
            call = protocol.OfferedCall(call_id=cmd.call_id, queue_id=cmd.queue_id)
        else:
            inc = meta.incoming
            call = protocol.OfferedCall(
                call_id=cmd.call_id,
                queue_id=cmd.queue_id,
                server=inc.server,
                uniqueid=inc.uniqueid,
                caller=inc.caller_num,
                caller_name=inc.caller_name,
                dnis=inc.dnis,
                arrived_at=inc.at,
                vip=meta.vip,
                entitled=meta.entitled,
            )
        queue = state.queues.get(cmd.queue_id)
        if queue is not None:
            call["queue_name"] = queue.name
        head = protocol.offer_head(
            cmd.agent_id, call, ring_timeout_s=cmd.ring_timeout_s, sent_at=state.clock()
        )
        pop = meta.pop if meta is not None else None
        delivered = self.agent_hub.publish_text(
            cmd.agent_id, protocol.encode_offer(head, pop), want_delivery=True
        )
        self.run(cmd, received, delivered)

    def run(
        self,
        cmd: TelephonyAction,
        received: float | None,
        delivered: Sequence[asyncio.Future[bool]] = (),
    ) -> None:
        """Execute now, or (behind this call's earlier actions / the offer push) in a task."""
        call_id = cmd.call_id
        previous = self.chains.get(call_id)
        if previous is None and not any(not f.done() for f in delivered):
            self._execute_now(cmd, received)  # the common case: no task, no delay
            return
        task = self.driver.spawn(
            self._execute_later(cmd, received, previous, delivered),
            f"action-{type(cmd).__name__}",
        )
        self.chains[call_id] = task

        def _unchain(t: asyncio.Task[None]) -> None:
            if self.chains.get(call_id) is t:
                del self.chains[call_id]

        task.add_done_callback(_unchain)

    async def _execute_later(
        self,
        cmd: TelephonyAction,
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

    def _execute_now(self, cmd: TelephonyAction, received: float | None) -> None:
        """``link.execute`` writes the actions at once; failures return through the sink."""
        state = self.state
        link = self.link
        if isinstance(cmd, OfferCall):
            state.counters["offers"] += 1
        failure: Exception | None = None
        if link is None:
            failure = RuntimeError("no telephony link attached")
        else:
            try:
                link.execute(cmd)
            except Exception as exc:  # noqa: BLE001 — any link failure: counted, offer re-queued
                failure = exc
        if failure is not None:
            state.counters["action_failures"] += 1
            logger.warning("action %s failed: %s", cmd, failure)
            if isinstance(cmd, OfferCall):
                self.driver.inject(OfferFailed(cmd.call_id, cmd.agent_id, OfferFailure.LINK))
            return
        if isinstance(cmd, OfferCall) and received is not None:
            latency = time.perf_counter() - received
            state.routing_latency.append(latency)
            state.per_call_latency.append((cmd.call_id, latency, state.clock()))
