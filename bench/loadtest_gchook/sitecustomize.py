"""Garbage-collector pauses of the service, measured from outside its code.

``python -m bench.loadtest --gc-stats`` puts this directory first on the service's
PYTHONPATH, so Python imports this module at start-up (``sitecustomize``) — the service
itself is not changed.  With ``LOADTEST_GC_STATS=<file>`` set, every collection's
generation, pause and objects collected are recorded and written to that file as JSON
every 5 s and at exit; without it, this module does nothing.  With
``LOADTEST_GC_FREEZE_ON_USR1=1`` as well, SIGUSR1 makes the service run ``gc.collect()``
and ``gc.freeze()`` (the ``--gc-freeze`` experiment: the harness sends it once every
agent is logged in; the frozen object count is recorded as a generation -1 entry).

Why: a service holding ~700 MB of Python objects (20,000 agents, their heaps and
indexes) pays for each full (generation 2) collection with a pause of the event loop,
which shows up as a routing-latency tail no profiler of Python frames attributes.
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import threading
import time

_PATH = os.environ.get("LOADTEST_GC_STATS")

if _PATH:
    _path: str = _PATH
    _started: list[float] = [0.0]
    _pauses: list[tuple[float, int, float, int]] = []  # (epoch end, generation, s, collected)
    _lock = threading.Lock()

    def _callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            _started[0] = time.perf_counter()
            return
        pause = time.perf_counter() - _started[0]
        with _lock:
            _pauses.append(
                (time.time(), info.get("generation", -1), pause, info.get("collected", 0))
            )

    def _dump() -> None:
        with _lock:
            data = list(_pauses)
        tmp = f"{_path}.tmp"
        with open(tmp, "w") as f:
            json.dump(data, f)
        os.replace(tmp, _path)

    def _loop() -> None:
        while True:
            time.sleep(5.0)
            try:
                _dump()
            except OSError:
                pass

    def _freeze(signum: int, frame: object) -> None:
        # Experiment for the load test (--gc-freeze): what gc.freeze() after start-up buys.
        gc.collect()
        gc.freeze()
        with _lock:
            _pauses.append((time.time(), -1, 0.0, gc.get_freeze_count()))

    if os.environ.get("LOADTEST_GC_FREEZE_ON_USR1"):
        import signal

        signal.signal(signal.SIGUSR1, _freeze)

    gc.callbacks.append(_callback)
    atexit.register(_dump)
    threading.Thread(target=_loop, name="gc-stats", daemon=True).start()


# --- event-loop stalls ----------------------------------------------------------------
# With ``LOADTEST_SLOW_CALLBACKS=<file>``: every asyncio callback (a task step, an I/O
# callback, a timer) that ran longer than ``LOADTEST_SLOW_CALLBACK_MS`` (default 4) is
# recorded as (epoch end, seconds, what ran) and written to that file like the GC pauses.
# A callback that runs long stalls every other call's routing by as much: this names it.
_SLOW_PATH = os.environ.get("LOADTEST_SLOW_CALLBACKS")

if _SLOW_PATH:
    _slow_path: str = _SLOW_PATH
    import asyncio
    import asyncio.events

    _slow_s = float(os.environ.get("LOADTEST_SLOW_CALLBACK_MS", "4")) / 1000.0
    _slow: list[tuple[float, float, str]] = []
    _slow_lock = threading.Lock()
    _orig_run = asyncio.events.Handle._run

    def _describe(handle: asyncio.events.Handle) -> str:
        cb = handle._callback  # type: ignore[attr-defined]
        owner = getattr(cb, "__self__", None)
        if isinstance(owner, asyncio.Task):
            coro = owner.get_coro()
            name = getattr(coro, "__qualname__", None) or type(coro).__name__
            frame = getattr(coro, "cr_frame", None)
            where = f" line {frame.f_lineno}" if frame is not None else ""
            return f"task {name}{where}"
        name = getattr(cb, "__qualname__", None) or repr(cb)
        return f"callback {name}"

    def _timed_run(self: asyncio.events.Handle) -> None:
        t0 = time.perf_counter()
        try:
            _orig_run(self)
        finally:
            took = time.perf_counter() - t0
            if took >= _slow_s:
                what = _describe(self)
                with _slow_lock:
                    _slow.append((time.time(), took, what))

    asyncio.events.Handle._run = _timed_run  # type: ignore[method-assign]

    def _slow_dump() -> None:
        with _slow_lock:
            data = list(_slow)
        tmp = f"{_slow_path}.tmp"
        with open(tmp, "w") as f:
            json.dump(data, f)
        os.replace(tmp, _slow_path)

    def _slow_loop() -> None:
        while True:
            time.sleep(5.0)
            try:
                _slow_dump()
            except OSError:
                pass

    atexit.register(_slow_dump)
    threading.Thread(target=_slow_loop, name="slow-callbacks", daemon=True).start()
