"""Child processes of the load test: start in their own session, always clean up.

Invariants:
- Every child is started with ``start_new_session=True`` so the whole process group
  (the child and anything it forks) can be signalled by its pgid, never by name.
- ``ProcessSet.close()`` is idempotent and runs on every exit path (normal end,
  exception, Ctrl-C, SIGTERM): SIGTERM to each group, a grace period, then SIGKILL.
- An ``atexit`` hook is the last resort if the event loop dies before ``close()``.
- Child stdout/stderr go to log files in the run's output directory unless the caller
  wants a pipe (the simulator workers speak JSON lines on stdin/stdout).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Child:
    name: str
    proc: asyncio.subprocess.Process
    log_path: Path | None
    _log_file: IO[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc.returncode is None

    def tail(self, lines: int = 30) -> str:
        """The last lines of the child's log (for error messages)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        data = self.log_path.read_bytes()[-20000:].decode("utf-8", errors="replace")
        return "\n".join(data.splitlines()[-lines:])


class ProcessSet:
    """The children of one load test run."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: list[Child] = []
        self._closed = False
        atexit.register(self._kill_all_sync)

    async def spawn(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        pipes: bool = False,
        cwd: Path | None = None,
        nice: int = 0,
    ) -> Child:
        """Start ``argv``; with ``pipes`` stdin/stdout are pipes and stderr goes to the log."""
        log_path = self.log_dir / f"{name}.log"
        log_file = log_path.open("ab")
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if pipes else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE if pipes else log_file,
                stderr=log_file,
                env=full_env,
                cwd=str(cwd) if cwd else None,
                start_new_session=True,
                limit=64 * 1024 * 1024,  # one JSON line may carry thousands of samples
                preexec_fn=(lambda: os.nice(nice)) if nice else None,
            )
        except BaseException:
            log_file.close()
            raise
        child = Child(name, proc, log_path, log_file)
        self.children.append(child)
        log.info("started %s pid %d (log %s)", name, proc.pid, log_path)
        return child

    async def close(self, grace_s: float = 10.0) -> None:
        """Terminate every child group (reverse start order), SIGKILL after ``grace_s``."""
        if self._closed:
            return
        self._closed = True
        for child in reversed(self.children):
            await self._stop(child, grace_s)
        atexit.unregister(self._kill_all_sync)

    async def _stop(self, child: Child, grace_s: float) -> None:
        if child.running:
            _signal_group(child.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(child.proc.wait(), grace_s)
            except TimeoutError:
                log.warning("%s did not stop in %.0fs: SIGKILL", child.name, grace_s)
                _signal_group(child.pid, signal.SIGKILL)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(child.proc.wait(), 5.0)
        else:
            # The leader is gone, but something it forked may still hold the group.
            _signal_group(child.pid, signal.SIGKILL)
        if child._log_file is not None:
            child._log_file.close()
            child._log_file = None

    def _kill_all_sync(self) -> None:
        """atexit fallback: the loop is gone, so no waiting, just SIGKILL the groups."""
        for child in self.children:
            _signal_group(child.pid, signal.SIGKILL)


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def python_argv(module: str, *args: str) -> list[str]:
    """Run a module with the same interpreter (the venv's) as the harness."""
    return [sys.executable, "-m", module, *args]


async def wait_for_port(host: str, port: int, timeout_s: float, child: Child | None = None) -> None:
    """Poll until a TCP connect succeeds; fail early (with its log) if the child died."""
    deadline = time.monotonic() + timeout_s
    while True:
        if child is not None and not child.running:
            raise RuntimeError(
                f"{child.name} exited with code {child.proc.returncode} before listening on "
                f"{host}:{port}:\n{child.tail()}"
            )
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout_s}s") from None
            await asyncio.sleep(0.2)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
