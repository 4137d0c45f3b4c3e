"""What a fenced process (several service processes, ``app.ha``) stops *hearing* and
*recording*, besides the AMI actions it may no longer send (``cti.ami``'s ``may_send``).

A leader resumed after a pause longer than its lease (SIGSTOP, a long stall) first runs
whatever waited for it: AMI events buffered in its socket, timers that came due.  Its
routing state is stale by then — another process has been routing those calls — so what
it would conclude (a call abandoned, an offer failed) is wrong and must not reach the
outcome log.  While ``may_send`` says no:

- ``fenced_sink``: link items are dropped before the call center sees them;
- ``FencedOutcomes``: outcome rows and call events are dropped, never written.

Rows recorded while this process still led are written as usual (facts it observed);
the new leader accounts for what happened since, from Asterisk and the saved state.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from app.live.contracts import OutcomeWriterLike
from app.outcomes import CallEventRow, CallOutcome, OutcomeStats
from cti.types import LinkItem

logger = logging.getLogger(__name__)


def fenced_sink(
    sink: Callable[[LinkItem], None], may_send: Callable[[], bool]
) -> Callable[[LinkItem], None]:
    """``sink``, except while this process may not act."""

    def gated(item: LinkItem) -> None:
        if may_send():
            sink(item)

    return gated


class FencedOutcomes:
    """An ``OutcomeWriterLike`` that drops what a fenced process records."""

    def __init__(self, writer: OutcomeWriterLike, may_send: Callable[[], bool]) -> None:
        self._writer = writer
        self._may_send = may_send
        self.dropped = 0

    async def start(self) -> None:
        await self._writer.start()

    async def close(self) -> None:
        if self.dropped:
            logger.warning("outcomes: %d records of a fenced process dropped", self.dropped)
        await self._writer.close()

    @property
    def stats(self) -> OutcomeStats:
        return self._writer.stats

    def _open(self) -> bool:
        if self._may_send():
            return True
        self.dropped += 1
        return False

    def record_call(self, row: CallOutcome) -> None:
        if self._open():
            self._writer.record_call(row)

    def record_event(self, ev: CallEventRow) -> None:
        if self._open():
            self._writer.record_event(ev)

    def record_wrapup(
        self,
        call_id: str,
        *,
        disposition_code: str | None,
        notes: str | None,
        wrapup_ended_at: datetime | None,
    ) -> None:
        if self._open():
            self._writer.record_wrapup(
                call_id,
                disposition_code=disposition_code,
                notes=notes,
                wrapup_ended_at=wrapup_ended_at,
            )
