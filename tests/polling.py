"""The one polling helper of the test suite: wait until a condition holds.

Invariant: ``wait_for`` returns as soon as its predicate is truthy (a pass costs no
sleep) and raises ``AssertionError`` naming ``what`` once ``timeout`` has passed.
Use it for "this eventually happens"; never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def wait_for(
    predicate: Callable[[], Awaitable[Any]] | Callable[[], Any],
    timeout: float = 30.0,  # generous: CI shares 2 cores; a pass returns at once
    interval: float = 0.02,
    what: str = "condition",
) -> Any:
    """Poll until ``predicate()`` is truthy (awaiting it if it is a coroutine)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)
