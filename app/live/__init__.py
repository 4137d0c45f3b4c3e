"""Live call handling: the call-center driver, agent actions, websockets, wallboard.

Contract with ``app.main`` (placeholder until the live runtime lands):
- ``router``: an ``APIRouter`` with the agent-action, live-view and websocket routes.
- ``live_runtime(settings, database, **overrides)``: an async context manager that starts
  the routing engine, the telephony link (or the simulator in demo mode), the outcome
  writer and the websocket hubs, yields the ``CallCenter``, and stops them on exit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter

router = APIRouter()


@asynccontextmanager
async def live_runtime(settings: Any, database: Any, **overrides: Any) -> AsyncIterator[Any]:
    yield None
