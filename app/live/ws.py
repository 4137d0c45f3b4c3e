"""Websocket channels: ``/ws/agents/{agent_id}`` and ``/ws/wallboard``.

The frames and close codes are ``app.live.protocol``'s, documented for clients in
``docs/websocket.md``.  Authentication: ``Sec-WebSocket-Protocol: bearer, <token>`` (the
pages) or ``?token=`` (other clients; redacted in the logs).

Invariants:
- The snapshot and the subscription are taken in one step (no await in between), so
  no delta is lost or duplicated between them.
- Each connection's pump is the only writer to its socket; publishing never awaits.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, WebSocket

from app.auth import (
    Role,
    authenticate_websocket,
    token_versions,
    websocket_subprotocol,
)
from app.errors import WebSocketClosed
from app.live import protocol
from app.live.callcenter import CallCenter
from app.live.hub import Subscriber, pump
from app.live.protocol import Close

logger = logging.getLogger(__name__)

router = APIRouter()


def _revoked(sub: Subscriber) -> None:
    # The pump sees the subscriber closed and closes the socket with this code.
    sub.close(Close.UNAUTHORIZED, "token revoked")


def _callcenter(websocket: WebSocket) -> CallCenter | None:
    callcenter = getattr(websocket.app.state, "callcenter", None)
    return callcenter if isinstance(callcenter, CallCenter) else None


@router.websocket("/ws/agents/{agent_id}")
async def agent_channel(websocket: WebSocket, agent_id: str) -> None:
    settings = websocket.app.state.settings
    principal = await authenticate_websocket(websocket, settings, role=Role.AGENT)
    if not principal.may_act_for_agent(agent_id):
        await websocket.accept(subprotocol=websocket_subprotocol(websocket))
        await websocket.close(code=Close.FORBIDDEN, reason="An agent may watch only itself.")
        raise WebSocketClosed(Close.FORBIDDEN, "An agent may watch only itself.")
    live = _callcenter(websocket)
    await websocket.accept(subprotocol=websocket_subprotocol(websocket))
    if live is None:
        await websocket.close(code=Close.TRY_AGAIN, reason="live call center not running")
        return
    if agent_id not in live.agents:
        await websocket.close(code=Close.UNKNOWN_AGENT, reason="unknown agent")
        return
    sub = live.agent_hub.subscribe(agent_id)
    sub.offer(protocol.encode(protocol.hello(agent_id, live.agent_view(agent_id))))
    logger.info("agent channel opened agent=%s by=%s", agent_id, principal.username)
    unwatch = token_versions(websocket.app.state).watch(principal, lambda: _revoked(sub))
    try:
        await pump(websocket, sub)
    finally:
        unwatch()
        live.agent_hub.unsubscribe(sub)
        logger.info("agent channel closed agent=%s code=%s", agent_id, sub.close_code)


@router.websocket("/ws/wallboard")
async def wallboard_channel(websocket: WebSocket) -> None:
    settings = websocket.app.state.settings
    principal = await authenticate_websocket(websocket, settings, role=Role.SUPERVISOR)
    live = _callcenter(websocket)
    await websocket.accept(subprotocol=websocket_subprotocol(websocket))
    if live is None:
        await websocket.close(code=Close.TRY_AGAIN, reason="live call center not running")
        return
    # Snapshot and subscription in one step: the next delta is relative to this snapshot.
    sub = live.wallboard_hub.subscribe("*")
    sub.offer(protocol.encode(live.wallboard_snapshot()))
    logger.info("wallboard opened by=%s", principal.username)
    unwatch = token_versions(websocket.app.state).watch(principal, lambda: _revoked(sub))
    try:
        await pump(websocket, sub)
    finally:
        unwatch()
        live.wallboard_hub.unsubscribe(sub)
