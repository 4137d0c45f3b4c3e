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
        tmp = f"{_PATH}.tmp"
        with open(tmp, "w") as f:
            json.dump(data, f)
        os.replace(tmp, _PATH)

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
