"""The core of the two background database writers (call outcomes, live state).

Both collect rows on the routing path without I/O and own one flusher task that writes
them in the background; what they do alike lives here:

- ``Flusher``: that task's life cycle.  Started once; ``wake`` ends a ``wait`` early
  (a full batch); ``stop`` lets the task end by itself within a time limit, then
  cancels it.
- ``execute_in_slices``: a many-row statement executed ``SLICE_ROWS`` rows at a time in
  one transaction, so building its parameters never stalls the event loop for long.
- ``is_transient``: whether a failed write is worth retrying as is (the server or the
  connection failed) or failed for its data.

Invariant: a writer's rows leave its memory only after their transaction committed; what
a failed or cancelled write held stays (or is put back) for the next attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

import sqlalchemy as sa

# Rows per statement: SQLAlchemy builds each statement's parameters in Python on the
# event loop, so a 500-row statement stalls routing for ~10 ms; slices of this size keep
# every stall near a millisecond (the awaits between them let the loop run).
SLICE_ROWS = 64


async def execute_in_slices(
    session: Any, statement: Any, rows: list[dict[str, Any]], size: int = SLICE_ROWS
) -> None:
    """``session.execute(statement, rows)`` in slices of ``size`` rows, one transaction."""
    for i in range(0, len(rows), size):
        await session.execute(statement, rows[i : i + size])


def is_transient(exc: BaseException) -> bool:
    """Worth retrying as is: the server or the connection failed, not the data."""
    if isinstance(exc, (OSError, TimeoutError, ConnectionError)):
        return True
    if isinstance(exc, sa.exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        # 22: data exception, 23: integrity constraint violation, 42: syntax/undefined.
        return not (isinstance(sqlstate, str) and sqlstate[:2] in {"22", "23", "42"})
    if isinstance(exc, sa.exc.StatementError):
        return isinstance(exc.orig, (OSError, TimeoutError, ConnectionError))
    # SQLAlchemy / asyncpg interface errors (pool closed, connection lost) are transient.
    return isinstance(exc, sa.exc.SQLAlchemyError) or "asyncpg" in type(exc).__module__


class Flusher:
    """The one background task of a writer: start, wake, wait, stop."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def started(self) -> bool:
        return self._task is not None

    def start(self, run: Coroutine[Any, Any, None]) -> None:
        """Run ``run`` as the task (once per flusher)."""
        if self._task is not None:
            run.close()
            raise RuntimeError(f"{self.name} already started")
        self._task = asyncio.create_task(run, name=self.name)

    def wake(self) -> None:
        """End the task's current (or next) ``wait`` now."""
        self._wake.set()

    async def wait(self, timeout_s: float) -> None:
        """Inside the task: sleep until ``wake`` or ``timeout_s``, whichever comes first."""
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout_s)

    async def stop(self, finish_within_s: float | None = None) -> None:
        """Cancel the task; with ``finish_within_s``, first give it that long to end.

        Raises ``TimeoutError`` (after cancelling) when it did not end in time.
        """
        task = self._task
        if task is None:
            return
        try:
            if finish_within_s is not None:
                await asyncio.wait_for(asyncio.shield(task), finish_within_s)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
