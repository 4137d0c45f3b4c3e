"""Helpers shared by the end-to-end test packages (``tests/live``, ``tests/browser``):
polling for a condition, and the real service on uvicorn on a loopback port.

Invariants:
- ``wait_for`` returns as soon as its predicate is truthy (a pass costs no sleep) and
  raises ``AssertionError`` naming ``what`` once ``timeout`` has passed.
- ``serve`` returns only once uvicorn listens (or re-raises what stopped it from
  starting); the caller owns the returned task and ends it with ``shut_down``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn


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


async def serve(
    app: Any,
    *,
    name: str,
    port: int = 0,
    start_timeout: float = 30.0,
    poll_interval: float = 0.02,
    **config: Any,
) -> tuple[uvicorn.Server, asyncio.Task[None], int]:
    """Start uvicorn (lifespan on) for ``app`` on 127.0.0.1:``port`` (0: any free port);
    return the server, the task serving it and the port it listens on.  ``config`` goes
    to ``uvicorn.Config`` as is."""
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            lifespan="on",
            log_level="warning",
            ws="websockets-sansio",
            **config,
        )
    )
    task = asyncio.create_task(server.serve(), name=name)
    await wait_for(
        lambda: server.started or task.done(),
        start_timeout,
        poll_interval,
        what="uvicorn start",
    )
    if task.done():
        task.result()  # raises what stopped it
    bound: int = server.servers[0].sockets[0].getsockname()[1]
    return server, task, bound


async def shut_down(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    """A clean stop: uvicorn exits, the app's lifespan with it."""
    server.should_exit = True
    await asyncio.wait_for(task, 30)
