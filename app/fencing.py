"""What a fenced write is, shared by the writers and the leadership (``app.ha``).

A ``WriteFence`` runs inside a writer's transaction, last, right before the commit
(its lock is then held only for the commit, never across the writes): it raises
``Fenced`` unless this process still holds the lease the writer was started under (in
``app.ha`` a locking read of the lease row, so the write and a takeover are ordered by
the database).  A writer never retries a fenced write row by row and never counts it as
a data error: the rows belong to the next leader now.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession


class Fenced(Exception):
    """This process no longer holds the lease the write was started under."""


WriteFence = Callable[[AsyncSession], Awaitable[None]]
