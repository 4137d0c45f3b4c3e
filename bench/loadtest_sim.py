"""One AMI simulator for the load test, in its own process (``python -m bench.loadtest_sim``).

Controlled by the harness over JSON lines (``bench.loadtest_worker``): ``start``,
``callers``, ``traffic``, ``stop_traffic``, ``poll``, ``dump``, ``close``.

Routing latency is measured here, on the simulator's clock (docs/loadtest.md, "What is
measured, exactly": the AMI event that makes a call routable -> the Redirect handled):
``MeasuringSimulator`` records the wall time just before the ``ACDHold`` UserEvent is
written (every entry into the holding context, also after RONA/busy) and the time the
``Redirect`` of the caller channel into the connect context is handled (the last of the
pipelined Setvar/Setvar/Redirect).  The simulator itself does not keep these times;
the hooks it would need are described in docs/loadtest.md ("Hooks").

Invariants:
- The worker reports incrementally: every ``poll`` returns only what happened since the
  previous poll (holds, redirects, finished calls), so the harness never re-reads the
  whole call table while traffic runs; ``dump`` returns every placed inbound call once
  at the end for the lost-call check.
- The talk-time distribution reads ``talk_mean`` at dial time, so a sweep can change it
  between phases without touching device profiles.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sys
import time
from typing import Any

from bench.loadtest_worker import serve
from cti.simulator.engine import AsteriskSimulator
from cti.simulator.model import ROUTER_EVENTS, DeviceProfile, SimUser
from cti.simulator.world import Call

log = logging.getLogger(__name__)

# A few Chinese names so UTF-8 caller names cross the AMI link under load (panoramisk's
# defect 1, docs/ami-notes.md).
_NAMES = (
    "张伟",
    "王芳",
    "李娜",
    "刘洋",
    "陈静",
    "Customer",
    "杨磊",
    "赵敏",
    "Jérôme Martin",
    "黄丽",
)


class MeasuringSimulator(AsteriskSimulator):
    """The simulator plus the two timestamps the load test needs per routing decision."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hold_log: list[tuple[str, float]] = []  # (uniqueid, ACDHold written)
        self.redirect_log: list[tuple[str, float, float, str]] = []  # (uid, redirect, hold, exten)
        self.finished: list[Call] = []
        self.last_hold: dict[str, float] = {}
        # Every AMI action received, when asked for (``start`` with ``action_log``): the
        # failover test tells the service processes apart by their ActionIDs
        # ("sb<pid>-…", cti.ami) and orders their actions by these timestamps.
        self.action_log: list[tuple[float, str, str, str]] | None = None

    def handle_action(self, s: Any, msg: Any) -> None:
        log_ = self.action_log
        if log_ is not None:
            log_.append((time.time(), msg.get("Action"), msg.get("ActionID"), msg.get("Channel")))
        super().handle_action(s, msg)

    def _enter_hold(self, call: Call) -> None:
        now = time.time()
        super()._enter_hold(call)
        uid = call.trace.uniqueid
        self.last_hold[uid] = now
        self.hold_log.append((uid, now))

    def action_redirect(self, ch: Any, context: str, exten: str, priority: int) -> None:
        now = time.time()
        call = ch.call
        if call is not None and ch is call.caller and context == self.dp.connect_context:
            uid = call.trace.uniqueid
            self.redirect_log.append((uid, now, self.last_hold.get(uid, now), exten))
        super().action_redirect(ch, context, exten, priority)

    def _finish(self, call: Call) -> None:
        done_before = call.trace.result is not None
        super()._finish(call)
        if not done_before and call.trace.result is not None and call.trace.kind == "inbound":
            self.finished.append(call)
            self.last_hold.pop(call.trace.uniqueid, None)


class SimWorker:
    def __init__(self) -> None:
        self.sim: MeasuringSimulator | None = None
        self.talk_mean = 30.0
        self.ring = (1.0, 4.0)
        self.device_agent: dict[str, str] = {}
        self.wrapup_by_dnis: dict[str, float] = {}
        self._traffic_task: asyncio.Task[None] | None = None
        self.dnis: list[str] = []
        self.phones: dict[str, list[str]] = {}
        self.shares: dict[str, float] = {}
        self.patience_mean = 180.0
        self.impatient_share = 0.0
        self.greeting = 0.0

    def _talk(self, rng: random.Random) -> float:
        # Exponential, capped at 3x the mean so every call ends within a bounded drain.
        mean = self.talk_mean
        return min(rng.expovariate(1.0 / mean), 3.0 * mean)

    def _ring(self, rng: random.Random) -> float:
        return rng.uniform(*self.ring)

    async def start(self, req: dict[str, Any]) -> dict[str, Any]:
        users = {
            req["username"]: SimUser(
                req["secret"], eventfilter=ROUTER_EVENTS | {"BlindTransfer"}, writetimeout_ms=5000
            )
        }
        sim = MeasuringSimulator(
            name=req["name"],
            port=int(req.get("port", 0)),
            users=users,
            channel_style=req.get("channel_style", "pjsip"),
            seed=int(req.get("seed", 0)),
            unknown_devices="default",
            lab_profiles=False,
            # deploy/asterisk's inbound context: ACDArrive, the greeting, then hold.
            arrive_event=True,
            greeting_s=float(req.get("greeting", 0.0)),
        )
        self.ring = (float(req["ring"][0]), float(req["ring"][1]))
        sim.default_profile = DeviceProfile(
            ring_s=self._ring,
            answer_prob=1.0,
            talk_s=self._talk,
            agent_hangs_up_prob=float(req.get("agent_hangs_up", 0.5)),
        )
        profiles = req.get("profiles", {})
        for device in profiles.get("noanswer", ()):
            sim.set_device(device, DeviceProfile(ring_s=self._ring, answer_prob=0.0))
        for device in profiles.get("busy", ()):
            sim.set_device(device, DeviceProfile(busy=True))
        self.device_agent = {d: d.rsplit("/", 1)[-1] for d in req.get("devices", ())}
        self.device_agent.update(req.get("device_agent", {}))
        self.wrapup_by_dnis = {k: float(v) for k, v in req.get("wrapup_by_dnis", {}).items()}
        if req.get("action_log"):
            sim.action_log = []
        await sim.start()
        self.sim = sim
        return {"port": sim.port}

    async def actions(self, req: dict[str, Any]) -> dict[str, Any]:
        """The actions received since the last call (time, action, ActionID, channel)."""
        sim = self._sim()
        taken, sim.action_log = sim.action_log or [], [] if sim.action_log is not None else None
        return {"actions": taken}

    async def callers(self, req: dict[str, Any]) -> dict[str, Any]:
        self.dnis = list(req["dnis"])
        self.phones = {k: list(v) for k, v in req["phones"].items() if v}
        self.shares = dict(req.get("shares", {}))
        self.patience_mean = float(req.get("patience_mean", 180.0))
        self.impatient_share = float(req.get("impatient_share", 0.0))
        self.greeting = float(req.get("greeting", 0.0))
        self.greeting = float(req.get("greeting", 0.0))
        return {"categories": {k: len(v) for k, v in self.phones.items()}}

    def _caller(self, rng: random.Random) -> tuple[str, str]:
        r = rng.random()
        kind = "regular"
        acc = 0.0
        for name in ("vip", "entitled", "unknown"):
            acc += self.shares.get(name, 0.0)
            if r < acc:
                kind = name
                break
        pool = self.phones.get(kind) or self.phones.get("regular") or ["13800138000"]
        return pool[rng.randrange(len(pool))], _NAMES[rng.randrange(len(_NAMES))]

    def _patience(self, rng: random.Random) -> float:
        # Counted from the queue (ACDHold), as the KPIs are: the greeting is added, so a
        # caller never leaves during it (those callers never reach Switchboard).
        if rng.random() < self.impatient_share:
            return self.greeting + rng.uniform(1.0, 8.0)
        return self.greeting + rng.expovariate(1.0 / self.patience_mean)

    async def traffic(self, req: dict[str, Any]) -> dict[str, Any]:
        sim = self._sim()
        await self.stop_traffic({})
        self.talk_mean = float(req.get("talk_mean", self.talk_mean))
        self._traffic_task = sim.start_traffic(
            rate_per_s=float(req["rate"]),
            duration_s=float(req["duration"]),
            dnis=self.dnis,
            callers=self._caller,
            patience=self._patience,
        )
        return {"started_at": time.time()}

    async def stop_traffic(self, req: dict[str, Any]) -> dict[str, Any]:
        task, self._traffic_task = self._traffic_task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        return {}

    def _trace(self, call: Call) -> dict[str, Any]:
        tr = call.trace
        agent = self.device_agent.get(tr.answered_by or "") if tr.answered_by else None
        if tr.answered_by and agent is None:
            agent = tr.answered_by.rsplit("/", 1)[-1].split("-", 1)[0]
        return {
            "uniqueid": tr.uniqueid,
            "dnis": tr.dnis,
            "caller": tr.caller_num,
            "arrived": tr.arrived,
            "queued": tr.holds[0] if tr.holds else None,  # first ACDHold (after the greeting)
            "answered_at": tr.answered_at,
            "answered_by": tr.answered_by,
            "agent_id": agent,
            "ended": tr.ended,
            "ended_by": tr.ended_by,
            "result": tr.result,
            "offers": len(tr.offered),
            "dial_results": list(tr.dial_results),
            "wrapup_s": self.wrapup_by_dnis.get(tr.dnis, 0.0),
        }

    async def poll(self, req: dict[str, Any]) -> dict[str, Any]:
        sim = self._sim()
        holds, sim.hold_log = sim.hold_log, []
        redirects, sim.redirect_log = sim.redirect_log, []
        finished, sim.finished = sim.finished, []
        st = sim.stats
        waiting = sum(
            1
            for ch in sim.all_channels()
            if ch.role == "caller" and ch.call is not None and ch.call.phase == "hold"
        )
        return {
            "holds": holds,
            "redirects": redirects,
            "ended": [self._trace(c) for c in finished],
            "waiting": waiting,
            "traffic_running": self._traffic_task is not None and not self._traffic_task.done(),
            "stats": {
                "placed": st.placed,
                "answered": st.answered,
                "abandoned": st.abandoned,
                "overflowed": st.overflowed,
                "failed": st.failed,
                "lost": st.lost,
                "in_progress": st.in_progress,
                "events_sent": st.events_sent,
                "events_emitted": st.events_emitted,
                "actions_received": st.actions_received,
                "sessions": st.sessions,
                "sessions_cut_slow": st.sessions_cut_slow,
                "timer_lag_max_s": round(st.timer_lag_max_s, 4),
            },
        }

    async def dump(self, req: dict[str, Any]) -> dict[str, Any]:
        sim = self._sim()
        calls = []
        for tr in sim.calls.values():
            if tr.kind != "inbound":
                continue
            calls.append(self._trace(_TraceOnly(tr)))  # type: ignore[arg-type]
        return {"calls": calls}

    async def close(self, req: dict[str, Any]) -> dict[str, Any]:
        await self.stop_traffic({})
        if self.sim is not None:
            await self.sim.close()
        return {}

    def _sim(self) -> MeasuringSimulator:
        if self.sim is None:
            raise RuntimeError("simulator not started")
        return self.sim


class _TraceOnly:
    """Adapter so ``_trace`` reads a bare CallTrace from ``sim.calls`` like a Call."""

    __slots__ = ("trace",)

    def __init__(self, trace: Any) -> None:
        self.trace = trace


async def _main() -> None:
    w = SimWorker()
    await serve(
        {
            "start": w.start,
            "callers": w.callers,
            "traffic": w.traffic,
            "stop_traffic": w.stop_traffic,
            "poll": w.poll,
            "dump": w.dump,
            "actions": w.actions,
            "close": w.close,
        }
    )
    if w.sim is not None:
        await w.sim.close()


def main() -> None:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    asyncio.run(_main())


if __name__ == "__main__":
    main()
