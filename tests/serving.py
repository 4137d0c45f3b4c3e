"""The real service on uvicorn on a loopback port, for the end-to-end test packages
(``tests/live``, ``tests/browser``).

Invariant:
- ``serve`` returns only once uvicorn listens (or re-raises what stopped it from
  starting); the caller owns the returned task and ends it with ``shut_down``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn

from tests.polling import wait_for


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
