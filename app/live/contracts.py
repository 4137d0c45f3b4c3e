"""Typed contracts between the call center's parts and their collaborators.

The real classes live in ``cti/`` (the telephony link), ``app/outcomes.py`` (the outcome
writer), ``app/crm.py`` (the screen-pop look-up) and ``app/db.py``; test doubles
implement these ``Protocol``s structurally.  ``Driver`` is what the driver
(``app.live.callcenter``) offers the parts it delegates to (classification, actions,
restore): they change routing state only through it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.crm import ScreenPop
from app.live.tracking import Classified
from app.outcomes import CallEventRow, CallOutcome, OutcomeStats
from cti.types import CallEvent, ServerStatus
from routing.commands import Command
from routing.events import Event


class TelephonyLinkLike(Protocol):
    """The telephony link (``cti.link.TelephonyLink``)."""

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    def execute(self, cmd: Command) -> None: ...
    def status(self) -> list[ServerStatus]: ...


class OutcomeWriterLike(Protocol):
    """The outcome writer (``app.outcomes.OutcomeWriter``): queues, never awaits."""

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    @property
    def stats(self) -> OutcomeStats: ...
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


class DatabaseLike(Protocol):
    """What the call center reads from the database (configuration, dispositions)."""

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]: ...


Lookup = Callable[[str, float], Awaitable[ScreenPop | None]]
"""``lookup(phone, now)``: the caller's CRM screen pop, None for an unknown caller."""


class Driver(Protocol):
    """The driver as its parts see it: the one way into the routing core and the inbox."""

    @property
    def closing(self) -> bool: ...

    def handle(self, event: Event, received: float | None) -> None:
        """``engine.handle`` and dispatch of its commands (raises routing errors)."""

    def telephony_event(self, event: CallEvent, received: float) -> None:
        """A telephony event for the core (routing errors of late events are dropped)."""

    def inject(self, event: CallEvent) -> None:
        """Feed ``event`` through the inbox, ordered with the link's events (a full
        inbox is caught up first, never refused: ``app.live.inbox``)."""

    def enqueue(self, item: Classified, received: float) -> None:
        """Put a driver item (a look-up's result) into the inbox (as ``inject``)."""

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Start a task the call center owns (cancelled and awaited by ``close``)."""
