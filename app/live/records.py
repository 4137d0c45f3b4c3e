"""Outcome records of the call center: call rows, lifecycle events and wrap-ups handed
to the outcome writer (queued, never awaited).  A row the writer refuses is logged with
its call id; routing goes on (the outcome writer's own failures are its business)."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from app.live.contracts import OutcomeWriterLike
from app.outcomes import CallEventRow, CallOutcome, to_dt
from cti.types import IncomingCall
from routing.commands import CallRecord

logger = logging.getLogger(__name__)


class Recorder:
    """The call center's side of the outcome writer."""

    def __init__(self, outcomes: OutcomeWriterLike) -> None:
        self.outcomes = outcomes

    def outcome(self, rec: CallRecord, incoming: IncomingCall | None) -> None:
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
        except Exception:  # the writer's failure must never stop routing (module docstring)
            logger.exception("call %s: outcome could not be queued", rec.call_id)

    def event(
        self, call_id: str, kind: str, at: float, agent_id: str | None, data: dict[str, Any]
    ) -> None:
        try:
            self.outcomes.record_event(
                CallEventRow.at_epoch(call_id, kind, at, agent_id=agent_id, data=data)
            )
        except Exception:  # as above: logged, routing goes on
            logger.exception("call %s: event %s could not be queued", call_id, kind)

    def wrapup(
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
        except Exception:  # as above: logged, routing goes on
            logger.exception("call %s: wrap-up could not be queued", call_id)
