"""Simulator capacity: calls/s the AMI simulator sustains with 20,000 simulated agents.

``python -m bench.sim_bench [--quick] [--rate R] [--duration S] [--agents N]`` prints ONE
JSON object.  The simulator runs in this process (PJSIP style, Poisson arrivals); an
auto-router client runs in a subprocess (so it does not share the simulator's core): it
logs in as the filtered user and answers every ``UserEvent ACDHold`` with
Setvar/Setvar/Redirect to a free agent, freeing the agent on the caller's Hangup.

Sustained means: every placed call was answered and ended, the simulator's CPU use
stayed below one core, and its timer heap never fell more than 100 ms behind.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import subprocess
import sys
import time
from collections import deque

from cti.simulator import ROUTER_EVENTS, AsteriskSimulator, DeviceProfile, SimUser
from cti.wire import AmiParser, encode


# ---------------------------------------------------------------- the auto-router client
async def client_main(port: int, agents: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    parser = AmiParser(expect_banner=True)
    writer.write(encode([("Action", "Login"), ("Username", "router"), ("Secret", "s")]))
    free: deque[str] = deque(str(10000 + i) for i in range(agents))
    busy: dict[str, str] = {}  # caller channel -> agent
    routed = holds = 0
    n = 0
    while True:
        try:
            data = await reader.read(1 << 16)
        except ConnectionError:
            break  # the bench resets the session when it is done
        if not data:
            break
        out: list[bytes] = []
        for m in parser.feed(data):
            if m.kind != "event":
                continue
            name = m.name
            if name == "UserEvent" and m.get("UserEvent") == "ACDHold":
                holds += 1
                ch = m.get("Channel")
                old = busy.pop(ch, None)
                if old is not None:
                    free.append(old)
                if not free:
                    continue
                agent = free.popleft()
                busy[ch] = agent
                n += 1
                out.append(
                    encode(
                        [
                            ("Action", "Setvar"),
                            ("ActionID", f"a{n}"),
                            ("Channel", ch),
                            ("Variable", "ACD_AGENT_DEVICE"),
                            ("Value", f"PJSIP/{agent}"),
                        ]
                    )
                    + encode(
                        [
                            ("Action", "Setvar"),
                            ("ActionID", f"b{n}"),
                            ("Channel", ch),
                            ("Variable", "ACD_RING_TIMEOUT"),
                            ("Value", "15"),
                        ]
                    )
                    + encode(
                        [
                            ("Action", "Redirect"),
                            ("ActionID", f"c{n}"),
                            ("Channel", ch),
                            ("Context", "acd-connect"),
                            ("Exten", agent),
                            ("Priority", "1"),
                        ]
                    )
                )
                routed += 1
            elif name == "Hangup":
                freed = busy.pop(m.get("Channel"), None)
                if freed is not None:
                    free.append(freed)
        if out:
            writer.write(b"".join(out))
    print(json.dumps({"holds": holds, "routed": routed}), flush=True)


# ---------------------------------------------------------------- the measurement
async def run(rate: float, duration: float, agents: int) -> dict[str, object]:
    sim = AsteriskSimulator(
        users={"router": SimUser("s", eventfilter=ROUTER_EVENTS, writetimeout_ms=5000)},
        channel_style="pjsip",
        seed=1,
    )
    sim.default_profile = DeviceProfile(
        ring_s=lambda r: r.uniform(0.2, 0.8), talk_s=lambda r: r.uniform(2.0, 6.0)
    )
    await sim.start()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.sim_bench",
        "--client",
        str(sim.port),
        "--agents",
        str(agents),
        stdout=subprocess.PIPE,
    )
    try:
        while sim.stats.sessions < 1:
            await asyncio.sleep(0.05)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await sim.run_traffic(
            rate_per_s=rate,
            duration_s=duration,
            dnis=["5000", "5001", "5002"],
            callers=lambda r: (f"138{r.randrange(10**8):08d}", "Customer"),
            patience=None,
        )
        traffic_wall = time.perf_counter() - wall0
        traffic_cpu = time.process_time() - cpu0
        deadline = time.perf_counter() + 30
        while sim.stats.in_progress and time.perf_counter() < deadline:
            await asyncio.sleep(0.1)
        drain_wall = time.perf_counter() - wall0
        st = dataclasses.replace(sim.stats)  # snapshot: close() marks leftovers lost
    finally:
        sim.drop_connections()
        out, _ = await proc.communicate()
        await sim.close()
    client = json.loads(out.decode().strip().splitlines()[-1]) if out.strip() else {}
    events_per_s = st.events_sent / drain_wall if drain_wall else 0.0
    cpu_util = traffic_cpu / traffic_wall if traffic_wall else 0.0
    sustained = (
        st.answered == st.placed
        and st.in_progress == 0
        and cpu_util < 1.0
        and st.timer_lag_max_s < 0.1
    )
    return {
        "agents": agents,
        "offered_rate_per_s": rate,
        "duration_s": duration,
        "placed": st.placed,
        "answered": st.answered,
        "not_finished": st.in_progress,
        "arrivals_per_s": round(st.placed / traffic_wall, 1),
        "calls_per_s_sustained": round(st.placed / traffic_wall, 1) if sustained else 0.0,
        "sustained": sustained,
        "sim_cpu_util_during_traffic": round(cpu_util, 3),
        "sim_cpu_ms_per_call": round(1000 * traffic_cpu / max(1, st.placed), 3),
        "timer_lag_max_ms": round(1000 * st.timer_lag_max_s, 1),
        "events_sent": st.events_sent,
        "events_per_s": round(events_per_s, 1),
        "actions_received": st.actions_received,
        "client": client,
        "target_calls_per_s": 500,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.sim_bench")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--rate", type=float, default=None)
    p.add_argument("--duration", type=float, default=None)
    p.add_argument("--agents", type=int, default=20000)
    p.add_argument("--client", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.client is not None:
        asyncio.run(client_main(args.client, args.agents))
        return 0
    rate = args.rate or 500.0
    duration = args.duration or (5.0 if args.quick else 20.0)
    print(json.dumps(asyncio.run(run(rate, duration, args.agents))), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
