"""A small AMI client for the simulator tests, built on ``cti.wire`` only (not cti.ami)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

from cti.wire import AmiParser, Message, encode

_ids = itertools.count(1)


class TestClient:
    __test__ = False  # not a pytest class

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.parser = AmiParser(expect_banner=True)
        self.messages: list[Message] = []  # everything received, in order
        self.banner = ""
        self.eof = asyncio.Event()
        self._changed = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def connect(cls, port: int, host: str = "127.0.0.1") -> TestClient:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def _read(self) -> None:
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    break
                for m in self.parser.feed(data):
                    if m.kind == "banner":
                        self.banner = m.name
                    else:
                        self.messages.append(m)
                self._changed.set()
        except (ConnectionError, OSError):
            pass
        finally:
            self.eof.set()
            self._changed.set()

    async def wait_for(self, pred: Callable[[], bool], timeout: float = 5.0) -> None:
        async def loop() -> None:
            while not pred():
                if self.eof.is_set():
                    if pred():
                        return
                    raise ConnectionError("connection closed while waiting")
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(loop(), timeout)

    def send(
        self,
        action: str,
        headers: list[tuple[str, str]] | None = None,
        action_id: str | None = None,
    ) -> str:
        aid = action_id or f"t-{next(_ids)}"
        self.writer.write(encode([("Action", action), ("ActionID", aid), *(headers or [])]))
        return aid

    def response(self, aid: str) -> Message | None:
        for m in self.messages:
            if m.kind == "response" and m.get("ActionID") == aid:
                return m
        return None

    async def action(
        self,
        action: str,
        headers: list[tuple[str, str]] | None = None,
        timeout: float = 5.0,
        action_id: str | None = None,
    ) -> Message:
        aid = self.send(action, headers, action_id)
        await self.wait_for(lambda: self.response(aid) is not None, timeout)
        r = self.response(aid)
        assert r is not None
        return r

    async def login(
        self,
        user: str = "acd",
        secret: str = "acdsecret",  # noqa: S107 (the lab's documented secret)
        events: str | None = None,
    ) -> Message:
        headers = [("Username", user), ("Secret", secret)]
        if events is not None:
            headers.append(("Events", events))
        r = await self.action("Login", headers)
        await asyncio.sleep(0)
        return r

    def events(self, name: str | None = None) -> list[Message]:
        return [m for m in self.messages if m.kind == "event" and (name is None or m.name == name)]

    def items(self, aid: str) -> list[Message]:
        return [m for m in self.messages if m.kind == "event" and m.get("ActionID") == aid]

    async def wait_event(self, pred: Callable[[Message], bool], timeout: float = 5.0) -> Message:
        found: list[Message] = []

        def check() -> bool:
            for m in self.messages:
                if m.kind == "event" and pred(m):
                    found.append(m)
                    return True
            return False

        await self.wait_for(check, timeout)
        return found[0]

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
