"""A tiny JSON-lines control protocol between the harness and its worker processes.

Invariants:
- The harness writes one JSON object per line on the worker's stdin
  (``{"id": n, "cmd": "...", ...}``); the worker answers each with exactly one line on
  stdout (``{"id": n, "ok": true, ...}`` or ``{"id": n, "ok": false, "error": "..."}``),
  in any order, so a long command (drain) does not block a quick one (poll).
- Workers never print anything else on stdout (logging goes to stderr → their log file).
- EOF on stdin means the harness is gone: the worker shuts down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from bench.loadtest_procs import Child

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class WorkerError(RuntimeError):
    pass


class WorkerClient:
    """Harness side: send commands to one worker child and await their replies."""

    def __init__(self, child: Child) -> None:
        self.child = child
        self._next = 0
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.create_task(self._read(), name=f"{child.name}-reader")

    async def call(self, cmd: str, timeout_s: float = 60.0, **args: Any) -> dict[str, Any]:
        stdin = self.child.proc.stdin
        if stdin is None or not self.child.running:
            raise WorkerError(f"{self.child.name} is not running:\n{self.child.tail()}")
        self._next += 1
        rid = self._next
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        stdin.write(json.dumps({"id": rid, "cmd": cmd, **args}).encode() + b"\n")
        try:
            await stdin.drain()
            reply = await asyncio.wait_for(fut, timeout_s)
        except TimeoutError:
            raise WorkerError(f"{self.child.name}: {cmd} timed out after {timeout_s}s") from None
        finally:
            self._pending.pop(rid, None)
        if not reply.get("ok"):
            raise WorkerError(f"{self.child.name}: {cmd} failed: {reply.get('error')}")
        return reply

    async def _read(self) -> None:
        stdout = self.child.proc.stdout
        assert stdout is not None
        try:
            while True:
                line = await stdout.readline()
                if not line:
                    break
                try:
                    reply = json.loads(line)
                except ValueError:
                    log.warning("%s wrote a non-JSON line: %r", self.child.name, line[:200])
                    continue
                fut = self._pending.get(reply.get("id"))
                if fut is not None and not fut.done():
                    fut.set_result(reply)
        finally:
            error = WorkerError(
                f"{self.child.name} exited (code {self.child.proc.returncode}):\n{self.child.tail()}"
            )
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(error)

    async def close(self) -> None:
        stdin = self.child.proc.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader


async def serve(handlers: dict[str, Handler]) -> None:
    """Worker side: read commands from stdin until EOF or a ``close`` command."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    out = sys.stdout.buffer
    tasks: set[asyncio.Task[None]] = set()
    done = asyncio.Event()

    async def run(request: dict[str, Any]) -> None:
        rid = request.get("id")
        cmd = request.get("cmd", "")
        try:
            handler = handlers[cmd]
        except KeyError:
            reply: dict[str, Any] = {"ok": False, "error": f"unknown command {cmd!r}"}
        else:
            try:
                reply = {"ok": True, **await handler(request)}
            except Exception as exc:
                log.exception("command %s failed", cmd)
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        out.write(json.dumps({"id": rid, **reply}, separators=(",", ":")).encode() + b"\n")
        out.flush()
        if cmd == "close":
            done.set()

    async def read_loop() -> None:
        while True:
            line = await reader.readline()
            if not line:
                break
            request = json.loads(line)
            task = asyncio.create_task(run(request))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        done.set()

    reading = asyncio.create_task(read_loop())
    await done.wait()
    reading.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reading
    for task in list(tasks):
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5.0)
