"""The call center's inbox is bounded and never drops: a full inbox makes whoever puts
the next item process the oldest ones first, in order (app/live/inbox.py)."""

from __future__ import annotations

import functools
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.live.callcenter import CallCenter
from app.outcomes import CallEventRow, CallOutcome, OutcomeStats
from routing.commands import Command
from routing.engine import RoutingEngine
from routing.events import CallHungUp, Event


class NoDatabase:
    """The inbox needs no database: reading one is a test bug."""

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        raise AssertionError("no database in this test")


class Outcomes:
    """Outcome writer double: keeps what it is given."""

    def __init__(self) -> None:
        self.calls: list[CallOutcome] = []

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    @property
    def stats(self) -> OutcomeStats:
        raise AssertionError("not read in this test")

    def record_call(self, row: CallOutcome) -> None:
        self.calls.append(row)

    def record_event(self, ev: CallEventRow) -> None:
        return None

    def record_wrapup(
        self,
        call_id: str,
        *,
        disposition_code: str | None,
        notes: str | None,
        wrapup_ended_at: datetime | None,
    ) -> None:
        return None


class RecordingEngine(RoutingEngine):
    """The real routing core, remembering the events it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Event] = []

    def handle(self, event: Event, now: float) -> list[Command]:
        self.seen.append(event)
        return super().handle(event, now)


def call_center(inbox_size: int) -> CallCenter:
    """Not started: nothing consumes the inbox but the puts themselves."""
    return CallCenter(
        engine=RecordingEngine(),
        database=NoDatabase(),
        outcomes=Outcomes(),
        inbox_size=inbox_size,
    )


async def test_a_full_inbox_processes_its_oldest_item_before_taking_the_next() -> None:
    cc = call_center(3)
    ran: list[int] = []
    for n in range(3):
        cc.inject_callable(functools.partial(ran.append, n))
    assert ran == [] and cc.inbox_backlog == 3
    cc.inject_callable(lambda: ran.append(3))
    assert ran == [0]  # the oldest, by the putter, before the new one is queued
    assert cc.inbox_backlog == 3
    assert cc.counters["inbox_full"] == 1
    for n in range(4, 7):
        cc.inject_callable(functools.partial(ran.append, n))
    assert ran == [0, 1, 2, 3]  # in order, nothing skipped


async def test_telephony_events_in_a_full_inbox_are_processed_never_dropped() -> None:
    engine = RecordingEngine()
    cc = CallCenter(engine=engine, database=NoDatabase(), outcomes=Outcomes(), inbox_size=2)
    ran: list[str] = []
    cc.inject_callable(lambda: ran.append("first"))
    cc.sink(CallHungUp("pbx1/1.1"))
    cc.sink(CallHungUp("pbx1/1.2"))
    assert ran == ["first"] and engine.seen == []
    cc.sink(CallHungUp("pbx1/1.3"))
    assert engine.seen == [CallHungUp("pbx1/1.1")]  # reached the core, after "first"
    assert cc.inbox_backlog == 2


async def test_an_item_put_while_one_is_processed_waits_its_turn() -> None:
    # A link that fails an action at once reports it through the sink while the driver is
    # still processing: that item is queued (over the bound), never processed nested.
    cc = call_center(1)
    ran: list[str] = []

    def outer() -> None:
        ran.append("outer begins")
        cc.inject_callable(lambda: ran.append("inner"))
        ran.append("outer ends")

    cc.inject_callable(outer)
    cc.inject_callable(lambda: ran.append("next"))  # full: outer runs now, then inner
    assert ran == ["outer begins", "outer ends", "inner"]
    assert cc.inbox_backlog == 1
    cc.inject_callable(lambda: ran.append("last"))
    assert ran == ["outer begins", "outer ends", "inner", "next"]
