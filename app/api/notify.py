"""Tell the live runtime that routing configuration changed in the database.

Invariants:
- Called only after the change is committed, with routing ids (``str(agents.id)``,
  ``str(queues.id)``), so the runtime re-reads what is now durable.
- A failure to apply the change live is logged, never turned into an error of the
  request that made the (already committed) change.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from fastapi import Request

from app.liveservice import live_service

logger = logging.getLogger(__name__)


def calls_in_queue(request: Request, queue_id: int) -> int:
    """Calls the routing core holds in ``queue_id`` now (0 without a live call center).

    The routing core refuses to remove a queue that holds calls; the REST layer asks
    first, so the database and the router never disagree about a deleted queue.
    """
    callcenter = live_service(request.app.state)
    return 0 if callcenter is None else callcenter.calls_in_queue(str(queue_id))


async def config_changed(
    request: Request, *, agent_ids: Iterable[int] = (), queue_ids: Iterable[int] = ()
) -> None:
    agents = sorted({str(a) for a in agent_ids})
    queues = sorted({str(q) for q in queue_ids})
    if not agents and not queues:
        return
    callcenter = live_service(request.app.state)
    if callcenter is None:
        return
    try:
        await callcenter.config_changed(agent_ids=agents, queue_ids=queues)
    except Exception:  # the change is committed; the runtime reloads it on its next sync
        logger.exception(
            "live runtime could not apply config change agents=%s queues=%s", agents, queues
        )
