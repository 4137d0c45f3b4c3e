"""The driver's inbox is bounded: a full inbox refuses loudly, never drops in silence.

A full inbox means the consumer has stalled for ``inbox_size`` items.  ``sink`` then
raises ``InboxFull`` (the link logs it with the item), counts ``inbox_full`` and logs
at CRITICAL; memory never grows without bound, and nothing is lost unseen.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.live.callcenter import CallCenter, InboxFull
from app.outcomes import CallEventRow, CallOutcome, OutcomeStats
from cti.types import ServerStatus
from routing.engine import RoutingEngine
from routing.events import CallHungUp


class _NoDatabase:
    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        raise AssertionError("the inbox never reads the database")


class _NoOutcomes:
    async def start(self) -> None: ...
    async def close(self) -> None: ...

    @property
    def stats(self) -> OutcomeStats:
        raise AssertionError("not read")

    def record_call(self, row: CallOutcome) -> None: ...
    def record_event(self, ev: CallEventRow) -> None: ...
    def record_wrapup(
        self,
        call_id: str,
        *,
        disposition_code: str | None,
        notes: str | None,
        wrapup_ended_at: datetime | None,
    ) -> None: ...


def _callcenter(inbox_size: int) -> CallCenter:
    return CallCenter(
        engine=RoutingEngine(),
        database=_NoDatabase(),
        outcomes=_NoOutcomes(),
        inbox_size=inbox_size,
    )


async def test_a_full_inbox_refuses_loudly(caplog: pytest.LogCaptureFixture) -> None:
    cc = _callcenter(inbox_size=2)  # not started: nothing consumes
    cc.sink(ServerStatus("pbx1", connected=True))
    cc.sink(CallHungUp("pbx1/1"))
    with pytest.raises(InboxFull):
        cc.sink(CallHungUp("pbx1/2"))
    with pytest.raises(InboxFull):
        cc.inject(CallHungUp("pbx1/3"))
    assert cc.counters["inbox_full"] == 2
    assert any(r.levelname == "CRITICAL" and "inbox full" in r.message for r in caplog.records)
