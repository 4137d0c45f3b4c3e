"""Slow-header connections are closed; the entry point uses the protocol that does it."""

from __future__ import annotations

import asyncio
import time

import pytest
from fastapi import FastAPI

from app.slowheaders import header_timeout_protocol
from tests.serving import serve, shut_down

LIMIT_S = 0.5


def tiny_app() -> FastAPI:
    app = FastAPI()

    @app.get("/")
    async def root() -> dict[str, str]:
        return {"ok": "yes"}

    return app


async def _trickle_until_closed(port: int, give_up_s: float) -> float | None:
    """Send a request a byte every 50 ms; seconds until the server closed, or None."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    start = time.monotonic()
    request = b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 1000
    try:
        for byte in request:
            try:
                data = await asyncio.wait_for(reader.read(1024), 0.05)
            except TimeoutError:
                data = None
            if data == b"":
                return time.monotonic() - start
            if time.monotonic() - start > give_up_s:
                return None
            try:
                writer.write(bytes([byte]))
                await writer.drain()
            except ConnectionError:
                return time.monotonic() - start
        return None
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except ConnectionError:
            pass


async def test_a_request_trickled_byte_by_byte_is_cut_off() -> None:
    server, task, port = await serve(
        tiny_app(), name="slow-headers", http=header_timeout_protocol(LIMIT_S)
    )
    try:
        closed_after = await _trickle_until_closed(port, give_up_s=5.0)
    finally:
        await shut_down(server, task)
    assert closed_after is not None, "the server kept a slow-header connection open"
    assert LIMIT_S * 0.8 <= closed_after < LIMIT_S + 1.5


async def test_complete_requests_and_keep_alive_pauses_are_not_cut() -> None:
    server, task, port = await serve(
        tiny_app(), name="slow-headers-ok", http=header_timeout_protocol(LIMIT_S)
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for _ in range(2):
            writer.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200"), head
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            # Idle between requests belongs to the keep-alive timeout (5 s), not this one.
            await asyncio.sleep(LIMIT_S * 2)
    finally:
        writer.close()
        await writer.wait_closed()
        await shut_down(server, task)


def test_the_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        header_timeout_protocol(0)
