"""The call center's inbox: one FIFO of the link's items and the driver's own.

Bounded like the hub's send queues, but a telephony event is never dropped (a lost
hangup strands a call) and the link is never paused (past Asterisk's writetimeout the
AMI session is cut and its events are lost at the source).  So when the inbox holds
``maxsize`` items, whoever puts the next one first does a slice of the consumer's work
itself: the oldest items are processed, in order, until there is room (see
``CallCenter._put``).  The only items that may exceed the bound are those put while an
item is being processed (a link that fails an action at once reports it through the
sink): at most what one item's processing emits.
"""

from __future__ import annotations

import asyncio
from collections import deque

from app.live.tracking import InboxItem


class Inbox:
    """FIFO of ``(item, received)``; ``received`` is ``time.perf_counter()`` at entry."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("the inbox holds at least one item")
        self.maxsize = maxsize
        self._items: deque[tuple[InboxItem, float]] = deque()
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def full(self) -> bool:
        return len(self._items) >= self.maxsize

    def put(self, item: InboxItem, received: float) -> None:
        """Append (never refuses: the caller keeps the bound, see the module docstring)."""
        self._items.append((item, received))
        self._ready.set()

    def pop(self) -> tuple[InboxItem, float] | None:
        """The oldest item, or None if empty (never waits)."""
        return self._items.popleft() if self._items else None

    async def get(self) -> tuple[InboxItem, float]:
        """The oldest item, waiting for one."""
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()
