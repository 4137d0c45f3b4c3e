"""Websocket load worker: agent desktops on ``/ws/agents/{id}`` and wallboards on ``/ws/wallboard``.

Runs in its own process (``python -m bench.loadtest_ws``) so the harness's bookkeeping
never delays a receive and inflates the measured screen-pop latency.

Invariants:
- Screen-pop latency = receipt time on this machine - the server timestamp carried in the
  offer message (same machine, same wall clock).  The first timestamp field found is used
  (``sent_at``, ``ts``, ``at``, then the call's ``offered_at``); an offer without one is
  counted in ``offers_without_ts`` instead of being given a made-up latency.
- Wallboard messages must come as one ``snapshot`` then ``delta``s with ``seq``
  increasing by one; any gap or regression is counted in ``wallboard_seq_errors``.
- A socket that closes is counted by close code and NOT reconnected: a dropped client
  during a load test is a finding, not something to paper over.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from collections import Counter
from typing import Any

import websockets

from bench.loadtest_worker import serve

log = logging.getLogger(__name__)

_TS_KEYS = ("sent_at", "ts", "at", "server_ts")


def offer_timestamp(msg: dict[str, Any]) -> float | None:
    """The server's send time of an offer message in epoch seconds, if it carries one."""
    for key in _TS_KEYS:
        value = msg.get(key)
        if isinstance(value, int | float):
            return float(value) / (1000.0 if value > 1e11 else 1.0)
    call = msg.get("call")
    if isinstance(call, dict):
        for key in ("offered_at", *_TS_KEYS):
            value = call.get(key)
            if isinstance(value, int | float):
                return float(value) / (1000.0 if value > 1e11 else 1.0)
    return None


class WsLoad:
    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[None]] = []
        self.samples: list[tuple[float, float]] = []  # (received_at, latency_s), since last poll
        self.counts: Counter[str] = Counter()
        self.close_codes: Counter[str] = Counter()
        self.connected_agents = 0
        self.connected_wallboards = 0
        self.last_wallboard: dict[str, Any] | None = None
        self.offer_call_ids: list[tuple[float, str]] = []  # (received_at, call_id)
        # Wallboard deltas come about once a second; a longer gap means the service's
        # event loop stalled (only the first wallboard client records, to avoid repeats).
        self.wallboard_gaps: list[tuple[float, float]] = []  # (received_at, gap s)

    async def agent(self, url: str, agent_id: str, ready: asyncio.Event) -> None:
        try:
            async with websockets.connect(url, max_size=None, open_timeout=30) as ws:
                self.connected_agents += 1
                ready.set()
                async for raw in ws:
                    now = time.time()
                    msg = json.loads(raw)
                    kind = msg.get("type", "?")
                    self.counts[f"agent_{kind}"] += 1
                    if kind != "offer":
                        continue
                    if msg.get("pop"):
                        self.counts["offers_with_pop"] += 1
                    call = msg.get("call") or {}
                    call_id = call.get("call_id") if isinstance(call, dict) else None
                    if call_id:
                        self.offer_call_ids.append((now, str(call_id)))
                    sent = offer_timestamp(msg)
                    if sent is None:
                        self.counts["offers_without_ts"] += 1
                    else:
                        self.samples.append((now, now - sent))
        except websockets.ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else "none"
            self.close_codes[f"agent:{code}"] += 1
            log.info("agent %s socket closed by the service: code %s", agent_id, code)
        except Exception as exc:  # noqa: BLE001 — counted and reported; one socket must not crash the worker
            self.close_codes[f"agent:{type(exc).__name__}"] += 1
            log.warning("agent %s socket failed: %s", agent_id, exc)
        finally:
            ready.set()

    async def wallboard(self, url: str, ready: asyncio.Event, index: int) -> None:
        seq: int | None = None
        last: float | None = None
        try:
            async with websockets.connect(url, max_size=None, open_timeout=30) as ws:
                self.connected_wallboards += 1
                ready.set()
                async for raw in ws:
                    now = time.time()
                    if index == 0 and last is not None and now - last > 2.0:
                        self.wallboard_gaps.append((now, now - last))
                    last = now
                    msg = json.loads(raw)
                    kind = msg.get("type", "?")
                    self.counts[f"wallboard_{kind}"] += 1
                    new_seq = msg.get("seq")
                    if kind == "snapshot":
                        seq = new_seq if isinstance(new_seq, int) else None
                        self.last_wallboard = msg
                    elif kind == "delta":
                        if seq is None or not isinstance(new_seq, int) or new_seq != seq + 1:
                            self.counts["wallboard_seq_errors"] += 1
                        seq = new_seq if isinstance(new_seq, int) else seq
        except websockets.ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else "none"
            self.close_codes[f"wallboard:{code}"] += 1
            log.info("wallboard socket closed by the service: code %s", code)
        except Exception as exc:  # noqa: BLE001 — counted and reported; one socket must not crash the worker
            self.close_codes[f"wallboard:{type(exc).__name__}"] += 1
            log.warning("wallboard socket failed: %s", exc)
        finally:
            ready.set()

    async def start(self, req: dict[str, Any]) -> dict[str, Any]:
        base = req["base_url"].rstrip("/")
        token = req["token"]
        events: list[asyncio.Event] = []
        for agent_id in req["agent_ids"]:
            ev = asyncio.Event()
            events.append(ev)
            url = f"{base}/ws/agents/{agent_id}?token={token}"
            self.tasks.append(asyncio.create_task(self.agent(url, str(agent_id), ev)))
        for i in range(int(req.get("wallboards", 0))):
            ev = asyncio.Event()
            events.append(ev)
            self.tasks.append(
                asyncio.create_task(self.wallboard(f"{base}/ws/wallboard?token={token}", ev, i))
            )
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), 60)
        return {
            "agents_connected": self.connected_agents,
            "wallboards_connected": self.connected_wallboards,
            "close_codes": dict(self.close_codes),
        }

    async def poll(self, req: dict[str, Any]) -> dict[str, Any]:
        samples, self.samples = self.samples, []
        call_ids, self.offer_call_ids = self.offer_call_ids, []
        gaps, self.wallboard_gaps = self.wallboard_gaps, []
        return {
            "samples": samples,
            "offer_call_ids": call_ids,
            "wallboard_gaps": gaps,
            "counts": dict(self.counts),
            "close_codes": dict(self.close_codes),
            "agents_connected": self.connected_agents,
            "wallboards_connected": self.connected_wallboards,
            "last_wallboard": self.last_wallboard if req.get("with_wallboard") else None,
        }

    async def close(self, req: dict[str, Any]) -> dict[str, Any]:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        return {"counts": dict(self.counts)}


async def _main() -> None:
    load = WsLoad()
    await serve({"start": load.start, "poll": load.poll, "close": load.close})


def main() -> None:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    asyncio.run(_main())


if __name__ == "__main__":
    main()
