"""The rows the outcome writer stores: one ``calls`` row per call (``CallOutcome``) and
its ``call_events`` (``CallEventRow``), built from the routing core's records."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from routing.commands import CallRecord, CallResult


def to_dt(epoch: float | None) -> datetime | None:
    """Epoch seconds (the routing core's clock) -> aware UTC datetime."""
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def _int_id(value: str | int | None) -> int | None:
    """Routing ids are strings of database ids; anything else has no row to refer to."""
    if value is None:
        return None
    if isinstance(value, int):
        return value
    return int(value) if value.isdigit() else None


def seconds_between(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return max(0.0, (later - earlier).total_seconds())


@dataclass(slots=True)
class CallOutcome:
    """One finished call, as stored in ``calls`` (durations are derived)."""

    call_id: str
    server: str
    uniqueid: str
    caller: str
    result: CallResult
    arrived_at: datetime
    ended_at: datetime | None
    linkedid: str | None = None
    dnis: str | None = None
    queue_id: int | None = None
    agents_offered: tuple[int, ...] = ()
    answered_by: int | None = None
    first_offered_at: datetime | None = None
    answered_at: datetime | None = None
    wrapup_ended_at: datetime | None = None
    rona_count: int = 0
    vip: bool = False
    entitled: bool = False
    overflow_target: str | None = None
    disposition_code: str | None = None
    notes: str | None = None
    reason: str | None = None

    @classmethod
    def from_record(
        cls,
        rec: CallRecord,
        *,
        server: str | None = None,
        uniqueid: str | None = None,
        linkedid: str | None = None,
        dnis: str | None = None,
    ) -> CallOutcome:
        """Build from the routing core's record; ``server``/``uniqueid`` default to the
        two halves of ``call_id`` ("<server>/<uniqueid>")."""
        default_server, _, default_uniqueid = rec.call_id.partition("/")
        return cls(
            call_id=rec.call_id,
            server=server if server is not None else default_server,
            uniqueid=uniqueid if uniqueid is not None else default_uniqueid,
            linkedid=linkedid,
            caller=rec.caller,
            dnis=dnis,
            queue_id=_int_id(rec.queue_id),
            agents_offered=tuple(
                a for a in (_int_id(x) for x in rec.agents_offered) if a is not None
            ),
            answered_by=_int_id(rec.answered_by),
            arrived_at=datetime.fromtimestamp(rec.arrived_at, UTC),
            first_offered_at=to_dt(rec.first_offered_at),
            answered_at=to_dt(rec.answered_at),
            ended_at=to_dt(rec.ended_at),
            result=CallResult(rec.result),
            rona_count=rec.rona_count,
            vip=rec.vip,
            entitled=rec.entitled,
            overflow_target=rec.overflow_target,
            reason=rec.reason,
        )

    def validate(self) -> None:
        if not self.call_id:
            raise ValueError("call outcome needs a call_id")
        CallResult(self.result)  # raises ValueError for an unknown result
        for name in ("arrived_at", "ended_at", "first_offered_at", "answered_at"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"call {self.call_id}: {name} must be timezone-aware")
        if self.rona_count < 0:
            raise ValueError(f"call {self.call_id}: rona_count must be >= 0")

    def to_row(self) -> dict[str, Any]:
        end_of_wait = self.answered_at or self.ended_at
        answered = self.answered_at is not None
        return {
            "call_id": self.call_id,
            "server": self.server,
            "uniqueid": self.uniqueid,
            "linkedid": self.linkedid,
            "caller": self.caller,
            "dnis": self.dnis,
            "queue_id": self.queue_id,
            "agents_offered": list(self.agents_offered),
            "answered_by": self.answered_by,
            "arrived_at": self.arrived_at,
            "first_offered_at": self.first_offered_at,
            "answered_at": self.answered_at,
            "ended_at": self.ended_at,
            "wrapup_ended_at": self.wrapup_ended_at,
            "wait_s": seconds_between(end_of_wait, self.arrived_at),
            "ring_s": seconds_between(self.answered_at, self.first_offered_at)
            if answered
            else None,
            "talk_s": seconds_between(self.ended_at, self.answered_at) if answered else None,
            "wrapup_s": seconds_between(self.wrapup_ended_at, self.ended_at),
            "result": CallResult(self.result).value,
            "rona_count": self.rona_count,
            "vip": self.vip,
            "entitled": self.entitled,
            "overflow_target": self.overflow_target,
            "disposition_code": self.disposition_code,
            "notes": self.notes,
            "reason": self.reason,
        }


@dataclass(slots=True)
class CallEventRow:
    """One lifecycle event of a call (``call_events``)."""

    call_id: str
    kind: str  # "queued", "offered", "rona", "answered", "ended", "overflowed", ...
    at: datetime
    agent_id: int | None = None
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def at_epoch(
        cls,
        call_id: str,
        kind: str,
        at: float,
        *,
        agent_id: str | int | None = None,
        data: dict[str, Any] | None = None,
    ) -> CallEventRow:
        return cls(call_id, kind, datetime.fromtimestamp(at, UTC), _int_id(agent_id), data or {})

    def validate(self) -> None:
        if not self.call_id or not self.kind:
            raise ValueError("call event needs a call_id and a kind")
        if self.at.tzinfo is None:
            raise ValueError(f"call {self.call_id}: event time must be timezone-aware")
        json.dumps(self.data)  # raises TypeError now rather than in the flusher

    def to_row(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "kind": self.kind,
            "at": self.at,
            "agent_id": self.agent_id,
            "data": self.data,
        }
