"""Fan-out of websocket frames (``app.live.protocol``) to subscribers with bounded queues.

Invariants:
- Publishing never awaits: a frame is serialised once (``protocol.encode``) and put on every matching
  subscriber's bounded queue with ``put_nowait``.  Routing never waits for a socket.
- A subscriber whose queue is full (a slow or dead client) is dropped at once: it is
  marked closed with ``Close.TOO_SLOW`` and its websocket pump closes the socket; the other
  subscribers are not affected.
- A message may carry a ``delivered`` future, resolved by the pump once the message has
  been written to the socket (the agent's offer + screen pop is written before the
  phone rings); it is resolved with ``False`` when the subscriber goes away instead.
- The hub owns no tasks; each websocket endpoint runs its own pump (``pump``) and
  unsubscribes in ``finally``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from app.live.protocol import Close, Frame, encode

logger = logging.getLogger(__name__)


class Subscriber:
    """One websocket client of a hub (``key``: the agent id, or ``"*"`` for all)."""

    __slots__ = ("close_code", "close_reason", "closed", "dropped", "key", "queue", "sent")

    def __init__(self, key: str, maxsize: int) -> None:
        self.key = key
        self.queue: asyncio.Queue[tuple[str, asyncio.Future[bool] | None]] = asyncio.Queue(maxsize)
        self.closed = asyncio.Event()
        self.close_code = Close.NORMAL
        self.close_reason = ""
        self.sent = 0
        self.dropped = False

    def offer(self, text: str, delivered: asyncio.Future[bool] | None = None) -> bool:
        """Queue a message without waiting; drop this subscriber if its queue is full."""
        if self.closed.is_set():
            if delivered is not None and not delivered.done():
                delivered.set_result(False)
            return False
        try:
            self.queue.put_nowait((text, delivered))
        except asyncio.QueueFull:
            self.close(Close.TOO_SLOW, "client too slow: send queue full")
            self.dropped = True
            if delivered is not None and not delivered.done():
                delivered.set_result(False)
            return False
        return True

    def close(self, code: Close, reason: str) -> None:
        if self.closed.is_set():
            return
        self.close_code = code
        self.close_reason = reason
        self.closed.set()
        # Whoever waits for a delivery must not wait for a client that is gone.
        while not self.queue.empty():
            _, fut = self.queue.get_nowait()
            if fut is not None and not fut.done():
                fut.set_result(False)


class Hub:
    """Subscribers by key; ``publish`` to one key (plus the ``"*"`` watchers) or all."""

    def __init__(self, name: str, *, queue_size: int = 256) -> None:
        self.name = name
        self.queue_size = queue_size
        self._subs: dict[str, set[Subscriber]] = {}
        self.dropped_total = 0

    def subscribe(self, key: str, *, queue_size: int | None = None) -> Subscriber:
        sub = Subscriber(key, queue_size or self.queue_size)
        self._subs.setdefault(key, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        subs = self._subs.get(sub.key)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.key]
        sub.close(Close.GOING_AWAY, "unsubscribed")

    def subscribers(self, key: str | None = None) -> list[Subscriber]:
        if key is None:
            return [s for subs in self._subs.values() for s in subs]
        return list(self._subs.get(key, ()))

    def publish(
        self, key: str, frame: Frame, *, want_delivery: bool = False
    ) -> list[asyncio.Future[bool]]:
        """Send to the subscribers of ``key`` and of ``"*"``; returns delivery futures."""
        targets: list[Subscriber] = list(self._subs.get(key, ()))
        if key != "*":
            targets.extend(self._subs.get("*", ()))
        return self._send(targets, frame, want_delivery)

    def publish_text(
        self, key: str, text: str, *, want_delivery: bool = False
    ) -> list[asyncio.Future[bool]]:
        """``publish`` for a frame already serialised by ``app.live.protocol``."""
        targets: list[Subscriber] = list(self._subs.get(key, ()))
        if key != "*":
            targets.extend(self._subs.get("*", ()))
        return self._send_text(targets, text, want_delivery)

    def broadcast(self, frame: Frame) -> None:
        self._send(self.subscribers(), frame, False)

    def _send(
        self, targets: list[Subscriber], frame: Frame, want_delivery: bool
    ) -> list[asyncio.Future[bool]]:
        if not targets:
            return []
        return self._send_text(targets, encode(frame), want_delivery)

    def _send_text(
        self, targets: list[Subscriber], text: str, want_delivery: bool
    ) -> list[asyncio.Future[bool]]:
        if not targets:
            return []
        futures: list[asyncio.Future[bool]] = []
        loop = asyncio.get_running_loop() if want_delivery else None
        for sub in targets:
            fut: asyncio.Future[bool] | None = None
            if loop is not None:
                fut = loop.create_future()
                futures.append(fut)
            if not sub.offer(text, fut) and sub.dropped:
                self.dropped_total += 1
                logger.warning(
                    "%s hub: dropped slow client key=%s after %d messages",
                    self.name,
                    sub.key,
                    sub.sent,
                )
                self.unsubscribe(sub)
        return futures


async def pump(websocket: WebSocket, sub: Subscriber, *, send_timeout_s: float = 5.0) -> None:
    """Write the subscriber's queue to the socket until either side goes away.

    Reads (and ignores) what the client sends so a disconnect is noticed promptly.  A send
    that takes longer than ``send_timeout_s`` drops the client with ``Close.TOO_SLOW``.
    """

    async def reader() -> None:
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
        except (WebSocketDisconnect, RuntimeError):
            pass
        sub.close(Close.GOING_AWAY, "client went away")

    read_task = asyncio.create_task(reader(), name=f"ws-reader-{sub.key}")
    closed_wait = asyncio.create_task(sub.closed.wait(), name=f"ws-closed-{sub.key}")
    try:
        while not sub.closed.is_set():
            get = asyncio.ensure_future(sub.queue.get())
            done, _ = await asyncio.wait({get, closed_wait}, return_when=asyncio.FIRST_COMPLETED)
            if get not in done:
                get.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await get
                break  # closed: whatever is still queued is moot
            text, delivered = get.result()
            try:
                await asyncio.wait_for(websocket.send_text(text), send_timeout_s)
            except TimeoutError:
                sub.dropped = True
                sub.close(Close.TOO_SLOW, "client too slow: send timed out")
                if delivered is not None and not delivered.done():
                    delivered.set_result(False)
                break
            except (WebSocketDisconnect, RuntimeError, OSError):
                sub.close(Close.GOING_AWAY, "client went away")
                if delivered is not None and not delivered.done():
                    delivered.set_result(False)
                break
            sub.sent += 1
            if delivered is not None and not delivered.done():
                delivered.set_result(True)
    finally:
        read_task.cancel()
        closed_wait.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await read_task
        with contextlib.suppress(asyncio.CancelledError):
            await closed_wait
        if websocket.application_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    websocket.close(code=sub.close_code, reason=sub.close_reason[:120]), 1.0
                )
